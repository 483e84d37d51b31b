#!/usr/bin/env bash
# The sanitizer leg: builds the parser, graph and media test binaries with AddressSanitizer and
# UndefinedBehaviorSanitizer into build-asan/ (git-ignored) and runs them. Any report fails.
#   WAN_ASAN_BUILD   build folder (default build-asan)
#   WAN_JOBS         parallel compile jobs (default: all cores)
#   WAN_BUILD_LOCK   a lock file: the build step runs under flock on it (for shared machines)
set -euo pipefail
cd "$(dirname "$0")/.."

build=${WAN_ASAN_BUILD:-build-asan}
jobs=${WAN_JOBS:-$(nproc)}
targets=(io_tests graph_tests media_tests)

if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DWAN_BUILD_PYTHON=OFF -DWAN_BUILD_BENCHMARKS=OFF -DWAN_BUILD_FUZZERS=OFF
fi
build_cmd=(cmake --build "$build" --target "${targets[@]}" -j"$jobs")
if [ -n "${WAN_BUILD_LOCK:-}" ]; then
  flock "$WAN_BUILD_LOCK" "${build_cmd[@]}"
else
  "${build_cmd[@]}"
fi

# torch's libraries are not instrumented: new/delete pairs cross the boundary and it keeps
# allocations until exit, so those two checks would only report torch itself.
export ASAN_OPTIONS=${ASAN_OPTIONS:-alloc_dealloc_mismatch=0:detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  echo "== $t (ASan+UBSan)"
  "$build/tests/$t" --gtest_brief=1 || status=1
done
exit $status
