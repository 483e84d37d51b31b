#!/usr/bin/env bash
# Installs the dependencies, builds everything, and runs the whole test suite (CTest, then the
# Python shim's pytest when its module was built). Exits non-zero on any failure. Prints how long
# each phase took, so CI logs show where the time goes.
set -euo pipefail
cd "$(dirname "$0")/.."
phase() { echo "== $1: $(( SECONDS - start )) s"; start=$SECONDS; }
start=$SECONDS
bash scripts/install_deps.sh
phase "dependencies"
bash scripts/build.sh
phase "build"
BUILD_DIR=${BUILD_DIR:-build}
(cd "$BUILD_DIR" && ctest --output-on-failure -j "$(nproc)" --timeout 900)
phase "ctest"
if [ -d python_shim/tests ] && ls "$BUILD_DIR"/python_shim/_wan_native*.so >/dev/null 2>&1; then
  WAN_NATIVE_BUILD_DIR="$PWD/$BUILD_DIR" .venv/bin/python -m pytest -q python_shim/tests
  phase "pytest"
fi
