#!/usr/bin/env bash
# The nginx anchor (issue 16): Turnout against Debian's nginx as a plain reverse proxy (one
# worker, keep-alive to the upstream) in front of the same mock upstream, in interleaved
# rounds (direct, nginx, turnout[, turnout B], direct, ...) so machine noise lands on all
# alike. Four loads: a ~300-token prompt and an ~8k-token prompt (44 KB body) at 16
# keep-alive connections, the 300-token prompt at 128 connections, and a streamed call
# (the mock's default SSE events). Per target and load, medians over the rounds of:
# req/s, p50/p99, added p50/p99 (minus the direct call's in the same round), CPU µs per
# call (utime+stime of the proxy's processes from /proc over the calls served) and RSS.
#   scripts/bench-nginx.sh TURNOUT_BIN [TURNOUT_BIN_B]
# Env: BENCH_ROUNDS (3), BENCH_DURATION (5s), BENCH_LOADS ("small large c128 stream").
set -euo pipefail
cd "$(dirname "$0")/.."
bin_a=$1 bin_b=${2:-}
rounds=${BENCH_ROUNDS:-3}
duration=${BENCH_DURATION:-5s}
loads=${BENCH_LOADS:-small large c128 stream}
nginx_bin=${NGINX_BIN:-/usr/sbin/nginx}
[[ -x $nginx_bin ]] || { echo "bench-nginx: $nginx_bin not found (scripts/install-deps.sh --bench installs it)" >&2; exit 1; }
source scripts/lib/bench-common.sh
bench_init bench-nginx
bench_start_mock "$bin_a"

make_body() {  # words stream -> body
  node -e '
    const [n, stream] = [Number(process.argv[1]), process.argv[2] === "stream"];
    const words = ("the quick brown fox jumps over the lazy dog while a careful engineer measures " +
                   "every microsecond of gateway overhead").split(" ");
    const text = Array.from({length: n}, (_, i) => words[i % words.length]).join(" ");
    const body = {model: "auto", messages: [{role: "user", content: text}]};
    if (stream) body.stream = true;
    console.log(JSON.stringify(body));' "$1" "$2"
}
make_body 290 plain >"$work/small.json"
make_body 7900 plain >"$work/large.json"
make_body 290 stream >"$work/stream.json"

declare -A target_port target_pid
target_port[direct]=$mock_port
targets=(direct nginx turnout)
[[ -n $bin_b ]] && targets+=(turnout_b)

nginx_port=$(free_port)
cat >"$work/nginx.conf" <<NGINX
$( [[ $(id -u) -eq 0 ]] && echo "user root;" )
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log $work/nginx-access.log;
  client_body_temp_path $work/nginx-body;
  proxy_temp_path $work/nginx-proxy;
  client_body_buffer_size 64k;
  upstream mock { server 127.0.0.1:$mock_port; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGINX
"$nginx_bin" -p "$work" -c "$work/nginx.conf" -g 'daemon off;' >"$work/nginx.out" 2>&1 &
target_pid[nginx]=$!
pids+=($!)
target_port[nginx]=$nginx_port

for side in turnout turnout_b; do
  bin=$bin_a
  [[ $side == turnout_b ]] && { [[ -n $bin_b ]] || continue; bin=$bin_b; }
  cat >"$work/$side.yaml" <<YAML
server: {port: 0, threads: 1}
ledger: {url: "sqlite:$work/$side.db"}
providers:
  openai: {base_url: "http://127.0.0.1:$mock_port/v1", api_key: bench-key}
YAML
  "$bin" serve --config "$work/$side.yaml" >"$work/$side.out" 2>&1 &
  target_pid[$side]=$!
  pids+=($!)
  target_port[$side]=$(wait_port "$work/$side.out")
done
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$nginx_port/" && break; sleep 0.05; done

hz=$(getconf CLK_TCK)
# wrk -> "rps p50_us p99_us calls"
run_wrk() {  # port body connections
  WRK_BODY_FILE="$2" wrk -t1 -c"$3" -d"$duration" --latency -s bench/wrk_post.lua \
    "http://127.0.0.1:$1/v1/chat/completions" 2>/dev/null |
    awk '
      function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
      /requests in/ { n=$1 }
      /Requests\/sec/ { rps=$2 }
      $1=="50%" { p50=us($2) }
      $1=="99%" { p99=us($2) }
      END { printf "%s %s %s %s\n", rps, p50, p99, n }'
}

for round in $(seq 1 "$rounds"); do
  for load in $loads; do
    body=$work/small.json connections=16
    case $load in
      large) body=$work/large.json ;;
      c128) connections=128 ;;
      stream) body=$work/stream.json ;;
    esac
    for target in "${targets[@]}"; do
      pid=${target_pid[$target]:-}
      before=0
      [[ -n $pid ]] && before=$(cpu_ticks "$pid")
      read -r rps p50 p99 calls < <(run_wrk "${target_port[$target]}" "$body" "$connections")
      cpu=0 rss=0
      if [[ -n $pid ]]; then
        after=$(cpu_ticks "$pid")
        cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$calls" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')
        rss=$(rss_kb "$pid")
      fi
      echo "$rps $p50 $p99 $cpu $rss" >>"$work/$load.$target.rounds"
      echo "$p50 $p99" >"$work/$load.$target.last"
    done
    read -r d50 d99 <"$work/$load.direct.last"
    for target in "${targets[@]}"; do
      read -r t50 t99 <"$work/$load.$target.last"
      awk -v a="$t50" -v b="$d50" -v c="$t99" -v d="$d99" 'BEGIN { printf "%.0f %.0f\n", a - b, c - d }' >>"$work/$load.$target.added"
    done
  done
done

med_col() { cut -d' ' -f"$2" "$1" | median; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk: 1 thread, $duration x $rounds interleaved rounds per target; model auto, SQLite ledger, 1 event-loop thread; nginx $("$nginx_bin" -v 2>&1 | cut -d/ -f2), 1 worker"
echo "turnout: $bin_a${bin_b:+  turnout_b: $bin_b}"
for load in $loads; do
  echo "== $load"
  printf "%-10s %9s %9s %9s %10s %10s %11s %9s\n" target req/s p50_us p99_us added_p50 added_p99 cpu_us/call rss_kb
  for target in "${targets[@]}"; do
    f=$work/$load.$target.rounds
    printf "%-10s %9s %9s %9s %10s %10s %11s %9s\n" "$target" "$(med_col "$f" 1)" "$(med_col "$f" 2)" "$(med_col "$f" 3)" \
      "$(med_col "$work/$load.$target.added" 1)" "$(med_col "$work/$load.$target.added" 2)" "$(med_col "$f" 4)" "$(med_col "$f" 5)"
    echo "$(med_col "$f" 1) $(med_col "$work/$load.$target.added" 1) $(med_col "$f" 4)" >"$work/$load.$target.med"
  done
  read -r nr na nc <"$work/$load.nginx.med"
  for target in "${targets[@]}"; do
    [[ $target == turnout* ]] || continue
    read -r tr ta tc <"$work/$load.$target.med"
    awk -v t="$target" -v nr="$nr" -v na="$na" -v nc="$nc" -v tr="$tr" -v ta="$ta" -v tc="$tc" 'BEGIN {
      printf "%s/nginx: req/s %.2fx, added p50 %s, cpu/call %.1fx\n", t, tr/nr, (na > 0 ? sprintf("%.1fx", ta/na) : "n/a (nginx within noise)"), (nc > 0 ? tc/nc : 0) }'
  done
  if [[ -n $bin_b ]]; then
    read -r ar aa ac <"$work/$load.turnout.med"
    read -r br ba bc <"$work/$load.turnout_b.med"
    awk -v ar="$ar" -v br="$br" -v ac="$ac" -v bc="$bc" -v aa="$aa" -v ba="$ba" 'BEGIN {
      printf "turnout_b/turnout: req/s %.2fx, added p50 %+d us, cpu/call %.2fx\n", br/ar, ba-aa, bc/ac }'
  fi
done
