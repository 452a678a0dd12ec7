#!/usr/bin/env bash
# Turnout's token count through the CLI (`turnout tokens`, the whole process: start-up,
# vocabulary load, reading the file, counting) against the npm `tiktoken` WASM build of
# OpenAI's tiktoken (the reference; its encode() call alone, the file already in memory),
# on the same files, in rounds that run both a few seconds apart; prints the median CPU
# time of each and the median per-round ratio (reference / Turnout). Issue 22 asks for
# >= 10x per category on inputs of >= 12 MB (scripts/tokenizer-corpora.mjs OUT 12582912).
#
#   (cd scripts/tokenizer-ref && npm ci)
#   scripts/tokenizer-wasm-ratio.sh [-r ROUNDS] [-e ENCODING] TURNOUT_BIN FILE...
#
# Both counts must agree (the reference decodes invalid UTF-8 with replacement, as Turnout
# does), or the script stops. Pinned to one CPU (AB_CPU, default the last) when taskset exists.
set -euo pipefail
rounds=3 encodings="cl100k_base o200k_base"
while getopts "r:e:" option; do
  case $option in
    r) rounds=$OPTARG ;;
    e) encodings=$OPTARG ;;
    *) sed -n '2,13p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ $# -ge 2 ]] || { sed -n '2,13p' "$0" >&2; exit 2; }
bin=$1
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
pin=()
command -v taskset > /dev/null && pin=(taskset -c "${AB_CPU:-$(($(nproc) - 1))}")

# reference ENCODING FILE: prints "<count> <cpu seconds>" for one encode() call.
reference() {
  "${pin[@]}" node -e '
    const { get_encoding } = require(process.argv[1] + "/scripts/tokenizer-ref/node_modules/tiktoken");
    const text = require("fs").readFileSync(process.argv[3]).toString("utf8");
    const encoding = get_encoding(process.argv[2]);
    const before = process.cpuUsage();
    const count = encoding.encode(text).length;
    const used = process.cpuUsage(before);
    console.log(count, (used.user + used.system) / 1e6);
  ' "$repo" "$1" "$2"
}

# turnout ENCODING FILE: prints "<count> <cpu seconds>" for the whole `turnout tokens` process.
turnout() {
  local out
  out=$({ /usr/bin/time -f "%U %S" "${pin[@]}" "$bin" tokens --encoding "$1" "$2"; } 2>&1)
  local count user system
  read -r count <<< "$(sed -n 1p <<< "$out")"
  read -r user system <<< "$(tail -1 <<< "$out")"
  echo "$count $(awk -v u="$user" -v s="$system" 'BEGIN { print u + s }')"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf "%-22s %-11s %9s %10s %10s %8s\n" file encoding MB "ref s" "turnout s" ratio
for file in "$@"; do
  megabytes=$(awk -v b="$(stat -c %s "$file")" 'BEGIN { printf "%.1f", b / 1e6 }')
  for encoding in $encodings; do
    ref_times=() our_times=() ratios=()
    for ((round = 0; round < rounds; round++)); do
      read -r ref_count ref_time <<< "$(reference "$encoding" "$file")"
      read -r our_count our_time <<< "$(turnout "$encoding" "$file")"
      if [[ $ref_count != "$our_count" ]]; then
        echo "$file $encoding: counts differ (reference $ref_count, turnout $our_count)" >&2
        exit 1
      fi
      ref_times+=("$ref_time") our_times+=("$our_time")
      ratios+=("$(awk -v r="$ref_time" -v t="$our_time" 'BEGIN { printf "%.2f", r / t }')")
    done
    printf "%-22s %-11s %9s %10s %10s %8s\n" "$(basename "$file")" "$encoding" "$megabytes" \
      "$(printf "%s\n" "${ref_times[@]}" | median)" "$(printf "%s\n" "${our_times[@]}" | median)" \
      "$(printf "%s\n" "${ratios[@]}" | median)x"
  done
done
