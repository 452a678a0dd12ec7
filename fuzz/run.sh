#!/bin/sh
# Builds the libFuzzer targets with clang and runs each briefly (the CI smoke run).
#   fuzz/run.sh [SECONDS] [TARGET...]   (default 45 s in all, split evenly between targets)
# Seed corpora: slices of the tokenizer's golden corpus, fuzz/seeds/<target>/ (cases from
# the unit and integration tests), the example configs. Findings are left in
# build-fuzz/crashes/<target>/; minimise one with
#   build-fuzz/fuzz/<target> -minimize_crash=1 -runs=10000 <crash file>
# and add it as a regression unit test.
set -eu
seconds=${1:-45}
[ $# -gt 0 ] && shift
targets=${*:-"tokenizer_fuzz http_request_fuzz chat_request_fuzz sse_fuzz upstream_response_fuzz config_fuzz"}
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${TURNOUT_FUZZ_BUILD_DIR:-$repo/build-fuzz}
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DTURNOUT_FUZZ=ON -DTURNOUT_TESTS=OFF -DTURNOUT_BENCH=OFF \
  -DTURNOUT_WERROR=ON >/dev/null
# shellcheck disable=SC2086
ninja -C "$build" $targets

seeds="$build/fuzz-seeds"
mkdir -p "$seeds/tokenizer_fuzz" "$seeds/config_fuzz"
for file in "$repo"/tests/golden/corpus/*.txt; do
  name=$(basename "$file" .txt)
  for offset in 0 4096 16384 65536 131072; do
    dd if="$file" of="$seeds/tokenizer_fuzz/$name-$offset" bs=1 skip="$offset" count=300 2>/dev/null
  done
done
cp "$repo"/examples/*.yaml "$seeds/config_fuzz/"

count=0
for target in $targets; do count=$((count + 1)); done
per_target=$((seconds / count))
[ "$per_target" -lt 3 ] && per_target=3
for target in $targets; do
  name=${target%_fuzz}
  corpus="$build/fuzz-corpus/$target"
  crashes="$build/crashes/$target"
  mkdir -p "$corpus" "$crashes"
  seed_dirs=""
  [ -d "$seeds/$target" ] && seed_dirs="$seeds/$target"
  [ -d "$repo/fuzz/seeds/$name" ] && seed_dirs="$seed_dirs $repo/fuzz/seeds/$name"
  max_len=4096
  [ "$target" = tokenizer_fuzz ] && max_len=1024  # its naive reference merge is quadratic
  echo "== $target ($per_target s)"
  # shellcheck disable=SC2086
  "$build/fuzz/$target" -max_total_time="$per_target" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$crashes/" -print_final_stats=1 "$corpus" $seed_dirs
done
