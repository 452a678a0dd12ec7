#!/usr/bin/env bash
# Gateway overhead, A/B: two builds of `turnout` (e.g. before and after a change) serve the
# same mock upstream in interleaved rounds (A, B, A, B, ...), so machine noise lands on
# both alike. Per round: req/s, p50/p99 (wrk, 16 keep-alive connections) and the gateway's
# CPU per call (utime+stime from /proc over the requests served). Prints medians and B/A.
#   scripts/bench-ab.sh BIN_A BIN_B [ROUNDS] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
bin_a=$1 bin_b=$2 rounds=${3:-5} duration=${4:-5s}
connections=${BENCH_CONNECTIONS:-16}
source scripts/lib/bench-common.sh
bench_init bench-ab
bench_start_mock "$bin_a"
node -e '
  const words = "the quick brown fox jumps over the lazy dog while a careful engineer measures".split(" ");
  const text = Array.from({length: 290}, (_, i) => words[i % words.length]).join(" ");
  console.log(JSON.stringify({model: "auto", messages: [{role: "user", content: text}]}));' >"$work/body.json"

declare -A port pid
for side in a b; do
  bin_var="bin_$side"
  cat >"$work/$side.yaml" <<YAML
server: {port: 0, threads: 1}
ledger: {url: "sqlite:$work/$side.db"}
providers:
  openai: {base_url: "http://127.0.0.1:$mock_port/v1", api_key: bench-key}
YAML
  "${!bin_var}" serve --config "$work/$side.yaml" >"$work/$side.out" 2>&1 &
  pid[$side]=$!
  pids+=($!)
  port[$side]=$(wait_port "$work/$side.out")
done

hz=$(getconf CLK_TCK)
for round in $(seq 1 "$rounds"); do
  for side in a b; do
    before=$(cpu_ticks "${pid[$side]}")
    out=$(WRK_BODY_FILE="$work/body.json" wrk -t1 -c"$connections" -d"$duration" --latency -s bench/wrk_post.lua \
          "http://127.0.0.1:${port[$side]}/v1/chat/completions" 2>/dev/null)
    after=$(cpu_ticks "${pid[$side]}")
    echo "$out" | awk -v ticks=$((after - before)) -v hz="$hz" '
      function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
      /requests in/ { n=$1 }
      /Requests\/sec/ { rps=$2 }
      $1=="50%" { p50=us($2) }
      $1=="99%" { p99=us($2) }
      END { printf "%s %s %s %.1f\n", rps, p50, p99, ticks * 1e6 / hz / n }' >>"$work/$side.rounds"
  done
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk: 1 thread, $connections connections, $duration x $rounds interleaved rounds; ~300-token prompt, model auto, SQLite ledger"
printf "%-4s %10s %10s %10s %12s\n" side req/s p50_us p99_us cpu_us/call
for side in a b; do
  for col in 1 2 3 4; do cut -d' ' -f$col "$work/$side.rounds" | median; done | paste -sd' ' >"$work/$side.med"
  read -r r p50 p99 cpu <"$work/$side.med"
  printf "%-4s %10s %10s %10s %12s\n" "$side" "$r" "$p50" "$p99" "$cpu"
done
read -r ra a50 a99 acpu <"$work/a.med"
read -r rb b50 b99 bcpu <"$work/b.med"
awk -v ra="$ra" -v rb="$rb" -v a50="$a50" -v b50="$b50" -v a99="$a99" -v b99="$b99" -v ac="$acpu" -v bc="$bcpu" \
  'BEGIN { printf "B/A: req/s %.2fx, p50 %.2fx, p99 %.2fx, cpu/call %.2fx\n", rb/ra, b50/a50, b99/a99, bc/ac }'
