# Shared by the scripts/bench-*.sh benchmarks; sourced, not run. After `bench_init NAME`:
#   $work  a private directory (mode 755: a private PostgreSQL cluster, run as `postgres`
#          when root, must enter it), removed on exit;
#   pids   every background process started (append with pids+=($!)), killed on exit,
#          as is the cluster scripts/pg-test-cluster.sh started in $work/pg, if any.
# Then: bench_start_mock BIN (sets $mock_port), wait_port, free_port, cpu_ticks, rss_kb,
# median.

bench_init() {  # name (for messages)
  bench_name=$1
  work=$(mktemp -d)
  chmod 755 "$work"
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true  # nginx writes into $work until it is gone
  if [[ -d $work/pg ]]; then scripts/pg-test-cluster.sh stop "$work/pg" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}

wait_port() {  # file -> port from turnout's {"event":"listening"...} line
  local port
  for _ in $(seq 1 150); do
    port=$(grep -o '"port":[0-9]*' "$1" 2>/dev/null | head -1 | cut -d: -f2 || true)
    [[ -n "$port" ]] && { echo "$port"; return; }
    sleep 0.1
  done
  echo "$bench_name: no listening line in $1" >&2
  exit 1
}

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

bench_start_mock() {  # turnout binary -> $mock_port: the mock upstream, one thread
  "$1" mock-upstream --port 0 --threads 1 >"$work/mock.out" 2>&1 &
  pids+=($!)
  mock_port=$(wait_port "$work/mock.out")
}

# CPU ticks (utime + stime) of a process and its children (nginx: master and worker).
cpu_ticks() {
  local total=0 p
  for p in "$1" $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}

rss_kb() {  # of a process and its children
  local total=0 p
  for p in "$1" $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
    total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status")))
  done
  echo "$total"
}

median() { sort -n | awk '{a[NR]=$1} END { print a[int((NR+1)/2)] }'; }
