#!/usr/bin/env bash
# `make run`: serves Turnout with the given config. Without OPENAI_API_KEY it starts the
# built-in mock upstream and points the openai provider at it, so everything works
# offline — answers are then simulated, and the log says so.
set -euo pipefail
bin=${1:?turnout binary}
config=${2:?config file}

if [[ -z "${OPENAI_API_KEY:-}" ]]; then
  mock_port=${TURNOUT_MOCK_PORT:-9000}
  echo "turnout: OPENAI_API_KEY is not set -> starting the built-in mock upstream on 127.0.0.1:${mock_port}." >&2
  echo "turnout: ANSWERS ARE SIMULATED (turnout mock-upstream), not from OpenAI. Set OPENAI_API_KEY for real calls." >&2
  "$bin" mock-upstream --port "$mock_port" >/dev/null &
  mock_pid=$!
  trap 'kill $mock_pid 2>/dev/null || true' EXIT
  export OPENAI_BASE_URL="http://127.0.0.1:${mock_port}/v1"
  export OPENAI_API_KEY="mock-key-not-secret"
fi
"$bin" serve --config "$config"
