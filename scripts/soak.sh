#!/bin/sh
# The soak and abuse run (tests/soak/soak.mjs) against a built binary, loopback only.
#   scripts/soak.sh [SECONDS] [CONCURRENCY] [BUILD_DIR]   (default 600 s, 64, build)
# Under ASan: scripts/soak.sh 300 32 build-asan (after scripts/test.sh built it).
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-600}
concurrency=${2:-64}
build=${3:-build}
TURNOUT_BIN=${TURNOUT_BIN:-$repo/$build/src/cli/turnout} \
  exec node "$repo/tests/soak/soak.mjs" --seconds "$seconds" --concurrency "$concurrency"
