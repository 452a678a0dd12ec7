#!/usr/bin/env bash
# The admission benchmark (issue 17): what governance adds to a call. Four `turnout serve`
# replicas on one private PostgreSQL ledger and the mock upstream, loopback only. One hot
# virtual key with a large budget, three ways: on four replicas in `governance.mode:
# strict` (every call takes a budget hold in the database), on four more replicas of the
# same database in `governance.mode: lease` (calls spend a replica's slice in process),
# and the strict replicas called with a static `server.api_keys` key (governance off), at
# a fixed offered rate spread round-robin over the replicas by an open-loop generator
# (bench/admission_load.mjs). The three are interleaved (their order rotating each round)
# and medians of the rounds printed:
#   - client-side latency p50/p99 (from each request's scheduled send time);
#   - the gateway's own x-turnout-overhead-us p50/p99 (admission included, upstream not);
#   - database statements per admitted request, from pg_stat_statements (loaded into the
#     private instance with shared_preload_libraries): every statement is one round trip
#     (libpq, no pipelining), BEGIN/COMMIT included; governance statements (gov_* tables, turnout_admit)
#     shown apart.
# Called by `make bench` (scripts/bench.sh) and on its own:
#
#   scripts/bench-admission.sh                   # builds build-bench (Release) first
#   TURNOUT_BENCH_BIN=build/src/cli/turnout scripts/bench-admission.sh
#   BENCH_RATES="1000 100" BENCH_SECONDS=20 BENCH_ROUNDS=3 BENCH_THREADS=1 scripts/bench-admission.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${BENCH_RATES:-1000 100}  # offered requests/s; each rate is a full set of rounds
SECONDS_PER_RUN=${BENCH_SECONDS:-20}
ROUNDS=${BENCH_ROUNDS:-3}
THREADS=${BENCH_THREADS:-1}
REPLICAS=4

command -v node >/dev/null || { echo "bench-admission: node is not installed (scripts/install-deps.sh --test)"; exit 0; }
command -v psql >/dev/null || { echo "bench-admission: psql is not installed (scripts/install-deps.sh --test)"; exit 0; }

if [[ -z "${TURNOUT_BENCH_BIN:-}" ]]; then
  cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DTURNOUT_TESTS=OFF -DTURNOUT_BENCH=ON >/dev/null
  cmake --build build-bench -j "$(nproc)" --target turnout
fi
bin=$(realpath "${TURNOUT_BENCH_BIN:-build-bench/src/cli/turnout}")
source scripts/lib/bench-common.sh
bench_init bench-admission

pg_url=$(scripts/pg-test-cluster.sh start "$work/pg") || { echo "bench-admission: no PostgreSQL (skipped)"; exit 0; }
pg_port=$(cat "$work/pg/port")
# The superuser over the cluster's own socket (local connections are trusted).
pg_super() {
  local db=$1; shift
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$work/pg/socket" -p "$pg_port" -U postgres -d "$db" "$@"
  else
    psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$work/pg/socket" -p "$pg_port" -U postgres -d "$db" "$@"
  fi
}
pg_super postgres -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
scripts/pg-test-cluster.sh halt "$work/pg"
scripts/pg-test-cluster.sh resume "$work/pg"
pg_super turnout -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
# The statements behind those counts, most frequent first.
stmt_top() {
  pg_super turnout -F ' | ' -c "
    SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 110)
    FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
    WHERE r.rolname = 'turnout' AND s.dbid = (SELECT oid FROM pg_database WHERE datname = 'turnout')
    ORDER BY calls DESC LIMIT 16"
}
stmt_reset() { pg_super turnout -c "SELECT pg_stat_statements_reset()" >/dev/null; }
# Statements the turnout role ran since the reset: "all governance".
stmt_counts() {
  pg_super turnout -F ' ' -c "
    SELECT COALESCE(SUM(calls), 0), COALESCE(SUM(calls) FILTER (WHERE query ~* 'gov_|turnout_admit'), 0)
    FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
    WHERE r.rolname = 'turnout' AND s.dbid = (SELECT oid FROM pg_database WHERE datname = 'turnout')"
}

bench_start_mock "$bin"

static_key="sk-bench-static-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')"
cat >"$work/turnout.yaml" <<YAML
server: {host: 127.0.0.1, threads: $THREADS, api_keys: ["$static_key"]}
ledger: {url: "$pg_url"}
providers:
  openai: {base_url: "http://127.0.0.1:$mock_port/v1", api_key: bench-key}
governance: {key_cache_ttl_s: 1}
YAML
sed 's/^governance: .*/governance: {key_cache_ttl_s: 1, mode: lease}/' "$work/turnout.yaml" >"$work/turnout-lease.yaml"
# The first replica creates the schema; then the hot key, on the database directly.
start_replicas() {  # config name -> $targets, comma-separated base URLs (no subshell: pids must stick)
  local urls=() port i
  for i in $(seq 0 $((REPLICAS - 1))); do
    # The access log of a loaded replica is large; the bench does not need it.
    port=$(free_port)
    "$bin" serve --config "$work/$1" --port "$port" >/dev/null 2>"$work/$1.replica-$i.err" &
    pids+=($!)
    for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$port/health" >/dev/null || { echo "bench-admission: replica $i did not start: $(cat "$work/$1.replica-$i.err")" >&2; exit 1; }
    urls+=("http://127.0.0.1:$port")
  done
  targets=$(IFS=,; echo "${urls[*]}")
}
start_replicas turnout.yaml
strict_targets=$targets
start_replicas turnout-lease.yaml
lease_targets=$targets
# Budget only: a key with rpm, tpm or max_parallel is held strictly in lease mode too.
hot_key=$("$bin" keys create --name bench-hot --budget-usd 1000000 --budget-period lifetime \
  --config "$work/turnout.yaml" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).key))')

node -e 'console.log(JSON.stringify({model: "gpt-4o-mini", max_tokens: 16,
  messages: [{role: "user", content: "Summarise the admission benchmark in one short sentence, please."}]}))' >"$work/body.json"

load() {  # targets key rate seconds -> one JSON line
  node bench/admission_load.mjs --targets "$1" --key "$2" --body "$work/body.json" --rate "$3" --seconds "$4"
}
# After a run, waits (at most 5 minutes) until the replicas have worked off their queue:
# no hold left and no call recorded for a second, so one round does not load the next.
# (Not "no statement": eight replicas' hold sweeps, every 5 s each, rarely leave a quiet second.)
wait_idle() {
  local last=-1 now
  for _ in $(seq 1 300); do
    now=$(pg_super turnout -c "SELECT (SELECT COUNT(*) FROM gov_holds) || ' ' || (SELECT COUNT(*) FROM calls)")
    [[ ${now%% *} == 0 && ${now#* } == "$last" ]] && return
    last=${now#* }
    sleep 1
  done
  echo "bench-admission: the replicas were still busy after 5 minutes" >&2
}
field() { node -e 'const o=JSON.parse(process.argv[1]); const v=o[process.argv[2]]; console.log(v===null||v===undefined?0:typeof v==="object"?JSON.stringify(v):v)' "$1" "$2"; }

# Warm-up: connections, caches, the hot key's rows.
load "$strict_targets" "$hot_key" 100 3 >/dev/null
load "$lease_targets" "$hot_key" 100 3 >/dev/null
load "$strict_targets" "$static_key" 100 3 >/dev/null

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GB; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "setup: PostgreSQL $(psql -X -A -t -c 'SHOW server_version' "$pg_url"), $REPLICAS replicas with $THREADS event-loop thread(s) each, mock upstream 1 thread (answers at once), governance strict / lease (lease: 4 more replicas, default slices) / off"
echo "load: open-loop, round-robin over the replicas, ${SECONDS_PER_RUN}s per run, $ROUNDS rounds per rate of strict/lease/off interleaved, order rotating (medians); latency of 200s only"
for rate in $RATES; do
  : >"$work/strict.$rate"; : >"$work/lease.$rate"; : >"$work/off.$rate"
  for round in $(seq 1 "$ROUNDS"); do
    case $(( round % 3 )) in
      1) order="strict lease off" ;;
      2) order="lease off strict" ;;
      0) order="off strict lease" ;;
    esac
    for mode in $order; do
      key=$hot_key targets=$strict_targets
      [[ $mode == off ]] && key=$static_key
      [[ $mode == lease ]] && targets=$lease_targets
      stmt_reset
      line=$(load "$targets" "$key" "$rate" "$SECONDS_PER_RUN")
      wait_idle
      read -r statements gov_statements < <(stmt_counts)
      [[ $mode != off ]] && stmt_top >"$work/top.$mode.$rate"
      ok=$(node -e 'console.log(JSON.parse(process.argv[1]).statuses["200"] ?? 0)' "$line")
      echo "  $rate/s round $round $mode: $line statements=$statements gov_statements=$gov_statements" >&2
      per=$(awk -v s="$statements" -v n="$ok" 'BEGIN { printf "%.2f", n ? s/n : 0 }')
      gov_per=$(awk -v s="$gov_statements" -v n="$ok" 'BEGIN { printf "%.2f", n ? s/n : 0 }')
      echo "$(field "$line" client_p50_us) $(field "$line" client_p99_us) $(field "$line" overhead_p50_us)" \
        "$(field "$line" overhead_p99_us) $per $gov_per $(field "$line" offered_rps) $ok $(field "$line" sent)" \
        "$(field "$line" admitted_rps)" >>"$work/$mode.$rate"
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for rate in $RATES; do
  echo
  echo "offered $rate requests/s:"
  printf "  %-11s %8s %9s %11s %11s %11s %11s %9s %8s %12s\n" governance offered sustained client_p50 client_p99 overhd_p50 overhd_p99 "stmts/req" "gov/req" "admitted"
  for mode in strict lease off; do
    f="$work/$mode.$rate"
    col() { cut -d' ' -f"$1" "$f" | median; }
    printf "  %-11s %8s %9s %9sus %9sus %9sus %9sus %9s %8s %12s\n" "$mode" "$(col 7)" "$(col 10)" "$(col 1)" "$(col 2)" "$(col 3)" "$(col 4)" \
      "$(col 5)" "$(col 6)" "$(col 8)/$(col 9)"
  done
  d() { echo $(( $(cut -d' ' -f"$2" "$work/$1.$rate" | median) - $(cut -d' ' -f"$2" "$work/off.$rate" | median) )); }
  for mode in strict lease; do
    echo "  added by $mode admission: client p50 $(d $mode 1) us, p99 $(d $mode 2) us; gateway overhead p50 $(d $mode 3) us, p99 $(d $mode 4) us"
  done
  for mode in strict lease; do
    echo "  statements of the last $mode round (calls, text):"
    sed 's/^/    /' "$work/top.$mode.$rate"
  done
done
echo
echo "(sustained: 200s per second from the first request sent to the last 200 answered."
echo " stmts/req: every statement the turnout role ran on the ledger database, ledger writer included,"
echo " divided by the 200s; each is one round trip. gov/req: those touching gov_* tables or calling turnout_admit.)"
