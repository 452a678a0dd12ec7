#!/usr/bin/env bash
# The dashboard at scale (issue 19), part of `make bench`, never of the tests:
# BENCH_LEDGER_CALLS records (default 10 million, 30 days, 6 models, 5 routes, 20 keys,
# 3 instances) are written straight through the ledger Backend in large transactions (the
# writer's own code: records and roll-ups together), then bench/ledger_scale_bench times
# /stats and /stats/series (p50/p99 per window) and bench/dashboard_bench.mjs times the
# page load to fully drawn in Debian's headless Chromium. SQLite, then PostgreSQL in a
# private cluster (scripts/pg-test-cluster.sh) when its server binaries are installed.
#
#   scripts/bench-dashboard.sh
#   TURNOUT_BENCH_BIN=build/src/cli/turnout TURNOUT_BENCH_DIR=build/bench scripts/bench-dashboard.sh
#
# TURNOUT_BENCH_BIN / TURNOUT_BENCH_DIR reuse an existing build (else a Release build in
# build-bench); BENCH_DASHBOARD_BACKENDS="sqlite postgresql" picks the engines.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${TURNOUT_BENCH_BIN:-}" ]]; then
  cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DTURNOUT_TESTS=OFF -DTURNOUT_BENCH=ON >/dev/null
  cmake --build build-bench -j "$(nproc)" --target turnout ledger_scale_bench
fi
bin=${TURNOUT_BENCH_BIN:-build-bench/src/cli/turnout}
bench_dir=${TURNOUT_BENCH_DIR:-build-bench/bench}
calls=${BENCH_LEDGER_CALLS:-10000000}
backends=${BENCH_DASHBOARD_BACKENDS:-sqlite postgresql}
work=$(mktemp -d)
chmod 755 "$work"  # as root, the private cluster runs as `postgres`, which must enter it
pg_dir=""
cleanup() {
  [[ -n "$pg_dir" ]] && scripts/pg-test-cluster.sh stop "$pg_dir" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"

page_bench() {  # ledger URL
  if [[ ! -d tests/node_modules/puppeteer-core || ! -x /usr/bin/chromium ]]; then
    echo "(dashboard page: skipped; run make deps-test)"
    return
  fi
  node bench/dashboard_bench.mjs --bin "$bin" --ledger "$1" || echo "(dashboard page: failed)"
}

for backend in $backends; do
  case $backend in
    sqlite)
      echo "== dashboard at scale: SQLite, $calls records"
      "$bench_dir/ledger_scale_bench" --calls "$calls" --keep "$work/scale.db"
      echo "SQLite file: $(du -m "$work/scale.db" | cut -f1) MB"
      page_bench "sqlite:$work/scale.db"
      rm -f "$work"/scale.db*
      ;;
    postgresql)
      pg_dir="$work/pg"
      status=0
      pg_url=$(scripts/pg-test-cluster.sh start "$pg_dir") || status=$?
      if [[ $status -eq 3 ]]; then
        echo "(PostgreSQL: skipped, no server binaries)"
        pg_dir=""
        continue
      elif [[ $status -ne 0 ]]; then
        echo "PostgreSQL: the private cluster did not start" >&2
        exit 1
      fi
      echo "== dashboard at scale: PostgreSQL, $calls records"
      TURNOUT_BENCH_PG_URL=$pg_url "$bench_dir/ledger_scale_bench" --calls "$calls" --backend postgresql
      page_bench "$pg_url"
      scripts/pg-test-cluster.sh stop "$pg_dir"
      pg_dir=""
      ;;
    *) echo "unknown backend $backend" >&2; exit 1 ;;
  esac
done
