#!/usr/bin/env bash
# `make bench`: HTTP overhead of Turnout versus calling the mock upstream directly (wrk,
# same machine, same run), plus the Google Benchmark microbenchmarks.
# Everything runs on loopback and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
ROUNDS=${BENCH_ROUNDS:-3}

# TURNOUT_BENCH_BIN / TURNOUT_BENCH_DIR reuse an existing build (skips the Release build).
if [[ -z "${TURNOUT_BENCH_BIN:-}" ]]; then
  cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DTURNOUT_TESTS=OFF -DTURNOUT_BENCH=ON >/dev/null
  cmake --build build-bench -j "$(nproc)"
fi
bin=${TURNOUT_BENCH_BIN:-build-bench/src/cli/turnout}
bench_dir=${TURNOUT_BENCH_DIR:-build-bench/bench}

# The nginx anchor: Turnout against a plain nginx reverse proxy on the same mock, four loads,
# interleaved rounds (scripts/bench-nginx.sh; TURNOUT_BENCH_BIN_B adds a second build, A/B).
echo "== nginx anchor"
scripts/bench-nginx.sh "$bin" ${TURNOUT_BENCH_BIN_B:-}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_port() {  # file -> port from the {"event":"listening"...} line
  for _ in $(seq 1 100); do
    port=$(grep -o '"port":[0-9]*' "$1" 2>/dev/null | head -1 | cut -d: -f2 || true)
    [[ -n "$port" ]] && { echo "$port"; return; }
    sleep 0.1
  done
  echo "no listening line in $1" >&2; exit 1
}

"$bin" mock-upstream --port 0 --threads 1 >"$work/mock.out" 2>&1 &
pids+=($!)
mock_port=$(wait_port "$work/mock.out")
cat >"$work/turnout.yaml" <<YAML
server: {port: 0, threads: 1}
ledger: {url: "sqlite:$work/ledger.db"}
providers:
  openai: {base_url: "http://127.0.0.1:$mock_port/v1", api_key: bench-key}
YAML
"$bin" serve --config "$work/turnout.yaml" >"$work/gateway.out" 2>&1 &
gw_pid=$!
pids+=($gw_pid)
gw_port=$(wait_port "$work/gateway.out")

# Prompts of about 300 and 8,000 tokens (checked with `turnout tokens`).
make_body() {  # words -> body file
  node -e '
    const n = Number(process.argv[1]);
    const words = ("the quick brown fox jumps over the lazy dog while a careful engineer measures " +
                   "every microsecond of gateway overhead").split(" ");
    const text = Array.from({length: n}, (_, i) => words[i % words.length]).join(" ");
    console.log(JSON.stringify({model: "auto", messages: [{role: "user", content: text}]}));' "$1"
}
make_body 290 >"$work/small.json"
make_body 7900 >"$work/large.json"

run_wrk() {  # url body -> "rps p50_us p99_us"
  WRK_BODY_FILE="$2" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/wrk_post.lua "$1" 2>/dev/null |
    awk '
      function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
      /Requests\/sec/ { rps=$2 }
      $1=="50%" { p50=us($2) }
      $1=="99%" { p99=us($2) }
      END { printf "%s %s %s\n", rps, p50, p99 }'
}
median() { sort -n | awk '{a[NR]=$1} END { print a[int((NR+1)/2)] }'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "wrk: 1 thread, $CONNECTIONS connections, $DURATION per run, $ROUNDS rounds (medians)"
printf "%-8s %-8s %10s %10s %10s\n" prompt target req/s p50_us p99_us
for size in small large; do
  body="$work/$size.json"
  tokens=$("$bin" route --config "$work/turnout.yaml" "$body" | grep -o '"prompt_tokens":[0-9]*' | cut -d: -f2)
  for target in direct turnout; do
    url="http://127.0.0.1:$mock_port/v1/chat/completions"
    [[ $target == turnout ]] && url="http://127.0.0.1:$gw_port/v1/chat/completions"
    : >"$work/$size.$target"
    for _ in $(seq 1 "$ROUNDS"); do run_wrk "$url" "$body" >>"$work/$size.$target"; done
    rps=$(cut -d' ' -f1 "$work/$size.$target" | median)
    p50=$(cut -d' ' -f2 "$work/$size.$target" | median)
    p99=$(cut -d' ' -f3 "$work/$size.$target" | median)
    printf "%-8s %-8s %10s %10s %10s\n" "${tokens}tok" "$target" "$rps" "$p50" "$p99"
    echo "$p50 $p99" >"$work/$size.$target.med"
  done
  read -r d50 d99 <"$work/$size.direct.med"
  read -r t50 t99 <"$work/$size.turnout.med"
  awk -v a="$t50" -v b="$d50" -v c="$t99" -v d="$d99" -v t="$tokens" \
    'BEGIN { printf "overhead (%s-token prompt): p50 %+.0f us, p99 %+.0f us\n", t, a-b, c-d }'
done
echo "gateway-measured overhead (x-turnout-overhead-us histogram, all requests):"
curl -s "http://127.0.0.1:$gw_port/metrics" | grep -E '^turnout_overhead_seconds_(sum|count)' || true
echo "gateway RSS after $(curl -s "http://127.0.0.1:$gw_port/metrics" | awk '/^turnout_requests_total/ {s+=$2} END {print s}') requests: $(awk '/VmRSS/ {print $2, $3}' /proc/$gw_pid/status)"

for b in "$bench_dir"/*_bench; do
  [[ -x "$b" ]] || continue
  [[ $(basename "$b") == ledger_scale_bench ]] && continue  # its own run below
  echo "== $(basename "$b")"
  "$b" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true --benchmark_min_time=0.2 2>/dev/null |
    grep -E "median|Benchmark" || true
done

# The tokenizer side by side with the npm tiktoken (WASM reference) and gpt-tokenizer on the
# same corpus files, each cold and warm (see bench/tokenizer_compare.mjs).
echo "== tokenizer vs npm tiktoken and gpt-tokenizer"
(cd scripts/tokenizer-ref && npm ci --no-audit --no-fund --loglevel=error) &&
  node bench/tokenizer_compare.mjs "$bench_dir/tokenizer_bench" || echo "(skipped: npm packages unavailable)"

# The ledger and the dashboard at scale: BENCH_LEDGER_CALLS records (default 10 million)
# into SQLite, then into a private PostgreSQL cluster; /stats, /stats/series and the page
# load (scripts/bench-dashboard.sh).
TURNOUT_BENCH_BIN="$bin" TURNOUT_BENCH_DIR="$bench_dir" scripts/bench-dashboard.sh

# Streaming: time to first byte/event through Turnout versus direct, then many simultaneous
# slow streams through one gateway (default threads) with its peak RSS. A fresh mock and
# gateway, so the numbers above do not skew the memory figures.
STREAMS=${BENCH_STREAMS:-2000}
STREAM_ROUNDS=${BENCH_STREAM_ROUNDS:-3}
TTFB_REQUESTS=${BENCH_TTFB_REQUESTS:-300}
# Each stream holds a client, a gateway and an upstream socket.
fd_limit=$(ulimit -Hn)
[[ $fd_limit == unlimited ]] && fd_limit=1048576
ulimit -n "$fd_limit" || true
"$bin" mock-upstream --port 0 --threads 2 >"$work/stream-mock.out" 2>&1 &
pids+=($!)
stream_mock_port=$(wait_port "$work/stream-mock.out")
cat >"$work/stream.yaml" <<YAML
server: {port: 0}
ledger: {url: "sqlite:$work/stream-ledger.db"}
providers:
  openai: {base_url: "http://127.0.0.1:$stream_mock_port/v1", api_key: bench-key}
YAML
"$bin" serve --config "$work/stream.yaml" >"$work/stream-gateway.out" 2>&1 &
stream_gw_pid=$!
pids+=($stream_gw_pid)
stream_gw_port=$(wait_port "$work/stream-gateway.out")
echo "== streaming"
node scripts/bench-streams.mjs streams "$stream_mock_port" "$stream_gw_port" "$stream_gw_pid" "$STREAMS" "$STREAM_ROUNDS"
node scripts/bench-streams.mjs ttfb "$stream_mock_port" "$stream_gw_port" "$TTFB_REQUESTS"

# A fleet: 1, 2 and 3 replicas on one PostgreSQL behind HAProxy (scripts/bench-fleet.sh).
echo "== fleet (HAProxy, PostgreSQL ledger)"
TURNOUT_BENCH_BIN="$bin" scripts/bench-fleet.sh

# Governance: what admission (budget hold + rpm count) adds, 4 replicas on one PostgreSQL
# (scripts/bench-admission.sh).
echo "== admission (governance on/off, 4 replicas, PostgreSQL)"
TURNOUT_BENCH_BIN="$bin" scripts/bench-admission.sh
