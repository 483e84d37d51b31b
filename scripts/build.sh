#!/usr/bin/env bash
# Configures and builds wan-native (Release) into build/. Safe to re-run: only changed files rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
# WAN_WERROR=ON makes warnings in our own code errors; CI sets it (.ci/run), so a new warning fails
# CI. Off by default elsewhere: another compiler may warn where this one does not.
WERROR=${WAN_WERROR:-OFF}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWAN_WERROR="$WERROR" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
