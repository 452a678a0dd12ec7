#!/usr/bin/env bash
# Installs the Debian 12 packages Turnout needs, only those that are missing (idempotent).
#   scripts/install-deps.sh          build and run dependencies
#   scripts/install-deps.sh --test   plus test/bench tools (GoogleTest, PostgreSQL, node, clang, wrk,
#                                    HAProxy for the fleet test)
#   scripts/install-deps.sh --bench  plus the --test tools and the benchmark's anchors (nginx as a
#                                    plain reverse proxy, linux-perf for the flame summaries)
set -euo pipefail

build_packages=(
  build-essential cmake ninja-build pkg-config ccache ca-certificates
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-system1.81-dev
  libsimdjson-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
  libssl-dev libsqlite3-dev libpq-dev libutf8proc-dev libhowardhinnant-date-dev tzdata
  libjs-chart.js
)
test_packages=(
  libgtest-dev libgmock-dev libbenchmark-dev
  postgresql sqlite3 clang libclang-rt-14-dev wrk curl procps haproxy time libfaketime
  chromium
)
# Only `make bench`: the tests never start nginx or perf.
bench_packages=(nginx linux-perf)

wanted=("${build_packages[@]}")
if [[ "${1:-}" == "--test" || "${1:-}" == "--bench" ]]; then
  wanted+=("${test_packages[@]}")
  [[ "${1:-}" == "--bench" ]] && wanted+=("${bench_packages[@]}")
  # Node.js runs the integration and SDK tests; Debian's nodejs (18) is enough.
  command -v node >/dev/null 2>&1 || wanted+=(nodejs)
  command -v npm >/dev/null 2>&1 || wanted+=(npm)
fi

missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
