#!/usr/bin/env bash
# The sanitizer leg (run by .ci/run after scripts/test.sh): builds the parser, graph and media test
# binaries with AddressSanitizer and UndefinedBehaviorSanitizer into build-asan/ (git-ignored) and
# runs them. Any report fails.
#   WAN_ASAN_BUILD   build folder (default build-asan)
#   WAN_JOBS         parallel compile jobs (default: all cores)
#   WAN_BUILD_LOCK   a lock file: the build step runs under flock on it (for shared machines)
#   WAN_ASAN_OPT     optimisation and debug-info flags (default "-O0 -g1", see below)
#   WAN_ASAN_FILTER  gtest filter for the three binaries (default: all but the one timing test
#                    below; "*" runs every test)
set -euo pipefail
cd "$(dirname "$0")/.."

build=${WAN_ASAN_BUILD:-build-asan}
jobs=${WAN_JOBS:-$(nproc)}
targets=(io_tests graph_tests media_tests)

# -fsanitize=address,undefined     heap/stack/global overflows, use after free; UB (signed
#                                  overflow, bad shifts, misaligned or null accesses, bad casts).
# -fno-sanitize-recover=undefined  a UBSan finding stops the process (non-zero exit), as ASan does.
# -fno-omit-frame-pointer          ASan's fast unwinder needs frame pointers: stacks in reports.
# -O0                              the cheapest compile: native/graph/validator.cpp with the
#                                  sanitizers (gcc 12) takes 42 s of CPU at -O2 -g, 21 s at -O1,
#                                  13 s at -O0. The tests run here take 4 s at -O0, and no
#                                  optimisation hides a bad access from ASan; the Release suite
#                                  runs the optimised code.
# -g1                              line tables only: file:line in reports, at no measurable compile
#                                  cost over -g0 (validator.cpp's object: 7 MB at -O1 -g0, 11 MB
#                                  at -O1 -g1, 25 MB at -O2 -g).
# -DNDEBUG                         as in the Release build the other tests run: same code paths.
opt=${WAN_ASAN_OPT:-"-O0 -g1"}
cxx_flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
link_flags="-fsanitize=address,undefined"
# The flags live in the build type's variable so that CMake's own -O2 -g is not appended after
# them. Warnings are not errors here: gcc warns differently on instrumented unoptimised code
# (the main build's -Werror under CI covers our code).
config=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
        "-DCMAKE_CXX_FLAGS=$cxx_flags" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$opt -DNDEBUG"
        "-DCMAKE_EXE_LINKER_FLAGS=$link_flags" -DWAN_WERROR=OFF
        -DWAN_BUILD_PYTHON=OFF -DWAN_BUILD_BENCHMARKS=OFF -DWAN_BUILD_FUZZERS=OFF)
# Configure when the folder is new or was configured with other flags (an older build-asan/).
stamp="$build/sanitize-config.txt"
if [ ! -f "$build/build.ninja" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${config[*]}" ]; then
  cmake -S . -B "$build" "${config[@]}"
  printf '%s' "${config[*]}" >"$stamp"
fi
build_cmd=(cmake --build "$build" --target "${targets[@]}" -j"$jobs")
if [ -n "${WAN_BUILD_LOCK:-}" ]; then
  flock "$WAN_BUILD_LOCK" "${build_cmd[@]}"
else
  "${build_cmd[@]}"
fi

# torch's libraries are not instrumented: new/delete pairs cross the boundary and it keeps
# allocations until exit, so those two checks would only report torch itself. abort_on_error and
# halt_on_error: the first report ends the binary with a failing status.
export ASAN_OPTIONS=${ASAN_OPTIONS:-alloc_dealloc_mismatch=0:detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# ValidatorRules.LongChainsValidateAndRunWithoutDeepRecursion validates and runs a 200,000-node
# chain against a 60 s bound: 12 s in the Release suite, 64 s here at -O1 on a loaded machine
# (nearly all of this leg's test time, and a timing failure waiting to happen). It runs in the
# main suite; the same validator and executor code runs here on the small graphs of the others.
long_chain_test=ValidatorRules.LongChainsValidateAndRunWithoutDeepRecursion
filter=${WAN_ASAN_FILTER:-"-$long_chain_test"}
status=0
for t in "${targets[@]}"; do
  echo "== $t (ASan+UBSan)"
  "$build/tests/$t" --gtest_brief=1 "--gtest_filter=$filter" || status=1
done
exit $status
