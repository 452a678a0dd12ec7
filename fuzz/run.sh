#!/bin/sh
# Builds the tokenizer fuzz target with clang and runs it briefly (CI smoke run).
#   fuzz/run.sh [SECONDS]   (default 45)
# The seed corpus is slices of the golden corpus; findings are left in build-fuzz/crashes.
set -eu
seconds=${1:-45}
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${TURNOUT_FUZZ_BUILD_DIR:-$repo/build-fuzz}
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DTURNOUT_FUZZ=ON -DTURNOUT_TESTS=OFF -DTURNOUT_BENCH=OFF \
  -DTURNOUT_WERROR=ON >/dev/null
ninja -C "$build" tokenizer_fuzz
seeds="$build/fuzz-seeds"
mkdir -p "$seeds" "$build/fuzz-corpus" "$build/crashes"
for file in "$repo"/tests/golden/corpus/*.txt; do
  name=$(basename "$file" .txt)
  for offset in 0 4096 16384 65536 131072; do
    dd if="$file" of="$seeds/$name-$offset" bs=1 skip="$offset" count=300 2>/dev/null
  done
done
"$build/fuzz/tokenizer_fuzz" -max_total_time="$seconds" -max_len=1024 -timeout=10 \
  -artifact_prefix="$build/crashes/" -print_final_stats=1 "$build/fuzz-corpus" "$seeds"
