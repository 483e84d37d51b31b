#!/usr/bin/env bash
# Configures and builds wan-native (Release) into build/. Safe to re-run: only changed files rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
# Under CI (CI set, as CI services do) warnings in our own code are errors.
WERROR=OFF
if [ -n "${CI:-}" ]; then WERROR=ON; fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWAN_WERROR="$WERROR" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
