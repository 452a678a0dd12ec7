#!/usr/bin/env bash
# The fleet benchmark (issue 20): throughput and added p50/p99 latency through HAProxy with
# 1, 2 and 3 Turnout replicas on one PostgreSQL ledger, in the same run, against calling
# the mock upstream directly; the records/s the shared ledger committed meanwhile; and the
# memory a replica needs per open connection. Everything runs on loopback and stops by
# itself. Called by `make bench` (scripts/bench.sh) and on its own:
#
#   scripts/bench-fleet.sh                       # builds build-bench (Release) first
#   TURNOUT_BENCH_BIN=build/src/cli/turnout scripts/bench-fleet.sh
#   BENCH_DURATION=10s BENCH_CONNECTIONS=64 BENCH_LATENCY_CONNECTIONS=4 BENCH_ROUNDS=3 scripts/bench-fleet.sh
#
# Each target is measured twice per round: under light load (BENCH_LATENCY_CONNECTIONS,
# for the latency a call gains from the balancer, the gateway and the ledger commit) and
# under heavy load (BENCH_CONNECTIONS, for throughput).
#
# A replica answers a call only after its ledger record is committed, and commits in
# groups: one transaction in flight per replica, each carrying what queued meanwhile. So on
# PostgreSQL a replica's throughput grows with concurrent calls (bigger groups) and its
# added latency is about two commit times; BENCH_CONNECTIONS sets the concurrency.
#
# One HAProxy holds three frontends (1, 2 and 3 replicas behind them), so the three
# configurations are measured by the same processes, round after round; medians of the
# rounds are printed. Each replica runs BENCH_THREADS event-loop threads (default 1: the
# single-replica figure is then requests/s per gateway core).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
LATENCY_CONNECTIONS=${BENCH_LATENCY_CONNECTIONS:-4}
LEDGER_CONNECTIONS=${BENCH_LEDGER_CONNECTIONS:-128}
ROUNDS=${BENCH_ROUNDS:-3}
THREADS=${BENCH_THREADS:-1}
IDLE_CONNECTIONS=${BENCH_IDLE_CONNECTIONS:-2000}

command -v haproxy >/dev/null || { echo "bench-fleet: haproxy is not installed (scripts/install-deps.sh --test)"; exit 0; }
command -v wrk >/dev/null || { echo "bench-fleet: wrk is not installed (scripts/install-deps.sh --test)"; exit 0; }

if [[ -z "${TURNOUT_BENCH_BIN:-}" ]]; then
  cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DTURNOUT_TESTS=OFF -DTURNOUT_BENCH=ON >/dev/null
  cmake --build build-bench -j "$(nproc)" --target turnout
fi
bin=$(realpath "${TURNOUT_BENCH_BIN:-build-bench/src/cli/turnout}")
source scripts/lib/bench-common.sh
bench_init bench-fleet

pg_url=$(scripts/pg-test-cluster.sh start "$work/pg") || { echo "bench-fleet: no PostgreSQL (skipped)"; exit 0; }
psql_count() { psql -X -A -t -c "SELECT count(*) FROM calls" "$pg_url" 2>/dev/null || echo 0; }

bench_start_mock "$bin"

replica_ports=()
replica_pids=()
for i in 0 1 2; do
  port=$(free_port)
  cat >"$work/replica-$i.yaml" <<YAML
server: {host: 127.0.0.1, port: $port, threads: $THREADS}
ledger: {url: "$pg_url"}
providers:
  openai: {base_url: "http://127.0.0.1:$mock_port/v1", api_key: bench-key}
YAML
  # The access log of a loaded replica is large; the bench does not need it.
  "$bin" serve --config "$work/replica-$i.yaml" >/dev/null 2>"$work/replica-$i.err" &
  replica_pids+=($!)
  pids+=($!)
  replica_ports+=("$port")
done
for port in "${replica_ports[@]}"; do
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
done

lb_ports=()
{
  echo "global"
  echo "  maxconn 8000"
  echo "defaults"
  echo "  mode http"
  echo "  timeout connect 2s"
  echo "  timeout client 60s"
  echo "  timeout server 60s"
  echo "  option http-keep-alive"
  for n in 1 2 3; do
    port=$(free_port)
    lb_ports+=("$port")
    echo "frontend fe$n"
    echo "  bind 127.0.0.1:$port"
    echo "  default_backend be$n"
    echo "backend be$n"
    echo "  balance roundrobin"
    echo "  option httpchk GET /health"
    for ((i = 0; i < n; i++)); do echo "  server r$i 127.0.0.1:${replica_ports[$i]} check inter 2s"; done
  done
} >"$work/haproxy.cfg"
haproxy -c -q -f "$work/haproxy.cfg"
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.out" 2>&1 &
pids+=($!)
for port in "${lb_ports[@]}"; do
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/health" >/dev/null || { echo "bench-fleet: haproxy does not answer: $(cat "$work/haproxy.out")" >&2; exit 1; }
done

node -e '
  const words = "the quick brown fox jumps over the lazy dog while a careful engineer measures every microsecond".split(" ");
  const text = Array.from({length: 290}, (_, i) => words[i % words.length]).join(" ");
  console.log(JSON.stringify({model: "auto", messages: [{role: "user", content: text}]}));' >"$work/body.json"

run_wrk() {  # url connections -> "rps p50_us p99_us non2xx"
  WRK_BODY_FILE="$work/body.json" wrk -t1 -c"$2" -d"$DURATION" --latency -s bench/wrk_post.lua "$1" 2>/dev/null |
    awk '
      function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
      /Requests\/sec/ { rps=$2 }
      /Non-2xx/ { bad=$NF }
      $1=="50%" { p50=us($2) }
      $1=="99%" { p99=us($2) }
      END { printf "%s %s %s %d\n", rps, p50, p99, bad }'
}
seconds() { awk -v d="$DURATION" 'BEGIN { v=d+0; if (d ~ /m$/) v*=60; print v }'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GB"
echo "fleet: PostgreSQL $(psql -X -A -t -c 'SHOW server_version' "$pg_url"), HAProxy $(haproxy -v | head -1 | awk '{print $3}'), replicas with $THREADS event-loop thread(s) each, mock upstream 1 thread"
echo "wrk: 1 thread, $DURATION per run, $ROUNDS rounds (medians); ~300-token prompts, an upstream that answers at once"
targets=(direct replica lb1 lb2 lb3)
for t in "${targets[@]}"; do : >"$work/$t.light"; : >"$work/$t.heavy"; done
for _ in $(seq 1 "$ROUNDS"); do
  for t in "${targets[@]}"; do
    case $t in
      direct) url="http://127.0.0.1:$mock_port/v1/chat/completions" ;;
      replica) url="http://127.0.0.1:${replica_ports[0]}/v1/chat/completions" ;;
      lb*) url="http://127.0.0.1:${lb_ports[$((${t#lb} - 1))]}/v1/chat/completions" ;;
    esac
    for load in light heavy; do
      connections=$CONNECTIONS
      [[ $load == light ]] && connections=$LATENCY_CONNECTIONS
      before=$(psql_count)
      line=$(run_wrk "$url" "$connections")
      after=$(psql_count)
      echo "$line $((after - before))" >>"$work/$t.$load"
    done
  done
done
name_of() {
  case $1 in
    direct) echo "mock upstream direct" ;;
    replica) echo "1 replica, no balancer" ;;
    *) echo "haproxy + ${1#lb} replica(s)" ;;
  esac
}
for load in light heavy; do
  connections=$CONNECTIONS
  [[ $load == light ]] && connections=$LATENCY_CONNECTIONS
  echo
  echo "$load load: $connections connections"
  printf "%-24s %9s %9s %9s %11s %11s %14s\n" target req/s p50_us p99_us "+p50_us" "+p99_us" ledger_rec/s
  d50=$(cut -d' ' -f2 "$work/direct.$load" | median)
  d99=$(cut -d' ' -f3 "$work/direct.$load" | median)
  for t in "${targets[@]}"; do
    f="$work/$t.$load"
    rps=$(cut -d' ' -f1 "$f" | median)
    p50=$(cut -d' ' -f2 "$f" | median)
    p99=$(cut -d' ' -f3 "$f" | median)
    bad=$(cut -d' ' -f4 "$f" | sort -n | tail -1)
    recs=$(cut -d' ' -f5 "$f" | median)
    if [[ $t == direct ]]; then
      add50="-"; add99="-"; recps="-"
    else
      add50=$(awk -v a="$p50" -v b="$d50" 'BEGIN { printf "%+.0f", a-b }')
      add99=$(awk -v a="$p99" -v b="$d99" 'BEGIN { printf "%+.0f", a-b }')
      recps=$(awk -v r="$recs" -v s="$(seconds)" 'BEGIN { printf "%.0f", r/s }')
    fi
    printf "%-24s %9s %9s %9s %11s %11s %14s\n" "$(name_of "$t")" "$rps" "$p50" "$p99" "$add50" "$add99" "$recps"
    if [[ "$bad" -gt 0 ]]; then echo "  ($t: up to $bad non-2xx answers in a round)"; fi
  done
done
echo "(+p50/+p99: added to calling the mock directly at the same load; ledger_rec/s: rows the shared"
echo " PostgreSQL ledger gained per second during the run — every answered call is committed before its response)"

# The balancer's own hop, without the ledger: GET /health (no ledger write) on replica 0
# directly and through HAProxy with it alone behind, light load.
run_get() {  # url -> "p50_us p99_us"
  wrk -t1 -c"$LATENCY_CONNECTIONS" -d"$DURATION" --latency "$1" 2>/dev/null |
    awk '
      function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
      $1=="50%" { p50=us($2) }
      $1=="99%" { p99=us($2) }
      END { printf "%s %s\n", p50, p99 }'
}
: >"$work/hop.direct"; : >"$work/hop.lb"
for _ in $(seq 1 "$ROUNDS"); do
  run_get "http://127.0.0.1:${replica_ports[0]}/health" >>"$work/hop.direct"
  run_get "http://127.0.0.1:${lb_ports[0]}/health" >>"$work/hop.lb"
done
h50=$(awk '{print $1}' "$work/hop.direct" | median); h99=$(awk '{print $2}' "$work/hop.direct" | median)
l50=$(awk '{print $1}' "$work/hop.lb" | median); l99=$(awk '{print $2}' "$work/hop.lb" | median)
awk -v a="$h50" -v b="$h99" -v c="$l50" -v d="$l99" -v n="$LATENCY_CONNECTIONS" 'BEGIN {
  printf "balancer hop (GET /health, %d connections): p50 %d -> %d us (%+d), p99 %d -> %d us (%+d)\n", n, a, c, c-a, b, d, d-b }'

# The shared ledger: the rows one PostgreSQL commits per second while all three replicas
# are loaded at once, each directly by its own wrk with BENCH_LEDGER_CONNECTIONS
# connections (large commit groups).
before=$(psql_count)
wrk_pids=()
for port in "${replica_ports[@]}"; do
  WRK_BODY_FILE="$work/body.json" wrk -t1 -c"$LEDGER_CONNECTIONS" -d"$DURATION" -s bench/wrk_post.lua \
    "http://127.0.0.1:$port/v1/chat/completions" >/dev/null 2>&1 &
  wrk_pids+=($!)
done
wait "${wrk_pids[@]}"
after=$(psql_count)
awk -v n="$((after - before))" -v s="$(seconds)" -v c="$LEDGER_CONNECTIONS" 'BEGIN { printf "shared ledger: %.0f records/s committed with 3 replicas loaded at once, %d connections each (%d rows in %ss)\n", n/s, c, n, s }'

# Memory per connection: replica 0's RSS before and while IDLE_CONNECTIONS keep-alive
# connections (each has sent one GET /health) stay open.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
pid0=${replica_pids[0]}
rss_before=$(rss "$pid0")
node -e '
  const net = require("net");
  const [port, count] = process.argv.slice(1).map(Number);
  let answered = 0;
  const sockets = [];
  for (let i = 0; i < count; i++) {
    const s = net.connect(port, "127.0.0.1", () => s.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
    s.once("data", () => { if (++answered === count) console.log("open"); });
    s.on("error", () => {});
    sockets.push(s);
  }
  setTimeout(() => process.exit(0), 20000);' "${replica_ports[0]}" "$IDLE_CONNECTIONS" >"$work/conns.out" &
conn_pid=$!
for _ in $(seq 1 150); do grep -q open "$work/conns.out" && break; sleep 0.1; done
sleep 0.5
rss_during=$(rss "$pid0")
kill "$conn_pid" 2>/dev/null || true
awk -v a="$rss_before" -v b="$rss_during" -v n="$IDLE_CONNECTIONS" 'BEGIN {
  printf "replica memory: RSS %.1f MB after the load above, %.1f MB with %d idle keep-alive connections open: %.1f KB per connection\n", a/1024, b/1024, n, (b-a)/n }'
for i in 0 1 2; do echo "replica $i RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/${replica_pids[$i]}/status"), peak $(awk '/VmHWM/ {print $2, $3}' "/proc/${replica_pids[$i]}/status")"; done
