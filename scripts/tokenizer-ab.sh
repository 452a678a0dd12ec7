#!/usr/bin/env bash
# A/B of the tokenizer at two revisions, in one process, pass by pass (bench/tokenizer_ab.cpp):
# for changes too small for two benchmark runs minutes apart on a noisy machine.
#
#   scripts/tokenizer-ab.sh [options] REV_A [REV_B]
#     REV_A, REV_B   git revisions; REV_B defaults to the working tree (also spelt WORKTREE)
#     -c CATEGORY    corpus file tests/golden/corpus/CATEGORY.txt (default multilingual), or
#                    the path of any file (e.g. from scripts/tokenizer-corpora.mjs); repeatable
#     -e ENCODING    cl100k_base, o200k_base or both (default both)
#     -n PASSES      passes of each build (default 150)
#     -m MODE        cold (piece cache cleared before each pass; default) or warm
#     -o OUTPUT      count (default) or ids
#
# Each revision's src/tokenizer is copied into its own namespace (turnout::tokenizer_a,
# turnout::tokenizer_b) and both are compiled into one binary with the project's release
# flags, run pinned to one CPU (AB_CPU, default the last one) when taskset exists. "B/A"
# above 1 means B is faster. The binary fails if A and B disagree on a single token.
set -euo pipefail

categories=() encodings="cl100k_base o200k_base" passes=150 mode=cold output=count
while getopts "c:e:n:m:o:" option; do
  case $option in
    c) categories+=("$OPTARG") ;;
    e) [[ $OPTARG == both ]] || encodings=$OPTARG ;;
    n) passes=$OPTARG ;;
    m) mode=$OPTARG ;;
    o) output=$OPTARG ;;
    *) sed -n '2,17p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ $# -ge 1 && $# -le 2 ]] || { sed -n '2,17p' "$0" >&2; exit 2; }
rev_a=$1 rev_b=${2:-WORKTREE}

repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# export_tree REV SIDE: src/tokenizer at REV as $work/SIDE/tokenizer_SIDE, namespace renamed.
export_tree() {
  local rev=$1 side=$2 dir=$work/$2/tokenizer_$2
  mkdir -p "$dir"
  if [[ $rev == WORKTREE ]]; then
    cp "$repo"/src/tokenizer/*.hpp "$repo"/src/tokenizer/*.cpp "$dir"/
  else
    git -C "$repo" archive "$rev" src/tokenizer | tar -x -C "$dir" --strip-components=2
  fi
  sed -i -e "s/namespace turnout::tokenizer\b/namespace turnout::tokenizer_$side/g" \
    -e "s/turnout::tokenizer::/turnout::tokenizer_$side::/g" \
    -e "s,\"tokenizer/,\"tokenizer_$side/,g" "$dir"/*.hpp "$dir"/*.cpp
}
export_tree "$rev_a" a
export_tree "$rev_b" b

# The vocabularies once (their symbols are C names shared by both copies).
sed -e "s,@TURNOUT_CL100K_VOCABULARY@,$repo/data/cl100k_base.tiktoken," \
  -e "s,@TURNOUT_O200K_VOCABULARY@,$repo/data/o200k_base.tiktoken," \
  "$repo/src/tokenizer/embedded_vocabularies.S.in" > "$work/vocabularies.S"

# What the tokenizer uses from src/common (UTF-8 validation and repair), once, from the
# working tree: it is outside the tokenizer's namespace, so both copies share it.
common=()
[[ -f $repo/src/common/utf8.cpp ]] && common+=("$repo/src/common/utf8.cpp")

echo "building A=$rev_a B=$rev_b ..." >&2
${CXX:-g++} -std=c++20 -O2 -DNDEBUG -I"$work/a" -I"$work/b" -I"$repo/src" \
  "$repo/bench/tokenizer_ab.cpp" "$work"/a/tokenizer_a/*.cpp "$work"/b/tokenizer_b/*.cpp "${common[@]}" \
  "$work/vocabularies.S" -lsimdjson -pthread -o "$work/tokenizer_ab"

pin=()
command -v taskset > /dev/null && pin=(taskset -c "${AB_CPU:-$(($(nproc) - 1))}")
[[ ${#categories[@]} -gt 0 ]] || categories=(multilingual)
for category in "${categories[@]}"; do
  corpus=$repo/tests/golden/corpus/$category.txt
  [[ -f $category ]] && corpus=$category
  echo "$(basename "$corpus"):"
  for encoding in $encodings; do
    "${pin[@]}" "$work/tokenizer_ab" "$corpus" "$encoding" "$passes" "$mode" "$output"
  done
done
