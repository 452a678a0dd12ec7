#!/usr/bin/env bash
# Builds and runs every test: unit (GoogleTest), integration and end-to-end (node's test
# runner against the real binary), then the same under ASan/UBSan, then a short fuzz run.
# Warnings are errors in every build.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== build (RelWithDebInfo, -Werror)"
cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTURNOUT_WERROR=ON >/dev/null
cmake --build build-test -j "$jobs"
echo "== tests"
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
(cd build-test && ctest --output-on-failure --timeout 900) | tee -a "$summary"

echo "== build (ASan + UBSan)"
# -O1 -g1 keeps sanitizer builds and links fast enough for CI while keeping line numbers.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DTURNOUT_SANITIZE=ON \
  -DTURNOUT_WERROR=ON -DTURNOUT_BENCH=OFF >/dev/null
cmake --build build-asan -j "$jobs"
echo "== tests under ASan + UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure --timeout 1800) | tee -a "$summary"

if [[ -x fuzz/run.sh ]]; then
  echo "== fuzz (short run)"
  fuzz/run.sh 45
fi

# One closing line over both ctest runs (plain and sanitized).
total=$(awk '/tests passed, .* tests failed out of/ {n += $NF} END {print n + 0}' "$summary")
failed=$(awk '/tests passed, .* tests failed out of/ {f += $4} END {print f + 0}' "$summary")
echo "suites: $((total - failed)) passed, $failed failed"
