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
(cd build-test && ctest --output-on-failure --timeout 900)

echo "== build (ASan + UBSan)"
# -O1 -g1 keeps sanitizer builds and links fast enough for CI while keeping line numbers.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DTURNOUT_SANITIZE=ON \
  -DTURNOUT_WERROR=ON -DTURNOUT_BENCH=OFF >/dev/null
cmake --build build-asan -j "$jobs"
echo "== tests under ASan + UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure --timeout 1800)

if [[ -x fuzz/run.sh ]]; then
  echo "== fuzz (short run)"
  fuzz/run.sh 45
fi
