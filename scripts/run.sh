#!/usr/bin/env bash
# Run all of Lectern on this machine: `make run`. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
scripts/ensure-infra.sh
scripts/build-web.sh

export LITELLM_LOCAL_MODEL_COST_MAP=True
export LECTERN_ENVIRONMENT=${LECTERN_ENVIRONMENT:-development}
export DATABASE_URL=${DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/lectern}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
GATEWAY_PORT=${LECTERN_GATEWAY_PORT:-8000}
if [ -z "${LLM_MODEL:-${LECTERN_LLM_MODEL:-}}" ]; then
  echo "==> no LLM_MODEL configured: using the built-in offline model (offline/lectern)"
fi

echo "==> applying migrations"
.venv/bin/python -m shared.migrate

mkdir -p .run
pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "==> stopping Lectern"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit 0
}
trap stop INT TERM EXIT

start() {  # name port
  LECTERN_HTTP_PORT=$2 .venv/bin/python -m "services.$1" >".run/$1.log" 2>&1 &
  pids+=($!)
  echo "    $1 on :$2 (log: .run/$1.log)"
}
echo "==> starting services"
start planner 8101
start content 8102
start assessment 8103
start prompts 8104
start gateway "$GATEWAY_PORT"

for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$GATEWAY_PORT/readyz" >/dev/null 2>&1; then break; fi
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "A service exited during start-up; see .run/*.log" >&2; tail -n 20 .run/*.log >&2; exit 1
    fi
  done
  sleep 0.5
done

base="http://localhost:$GATEWAY_PORT"
cat <<MSG

Lectern is running at $base   (API docs: $base/docs, AsyncAPI: $base/docs/asyncapi.json)

Try it:
  TOKEN=\$(curl -s -X POST $base/v1/auth/guest | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
  JOB=\$(curl -s -X POST $base/v1/courses -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
        -d '{"topic":"Python asyncio","level":"beginner","duration_hours":8,"expectations":"build a web scraper","language":"en"}' \\
        | python3 -c 'import sys,json;print(json.load(sys.stdin)["job_id"])')
  curl -N $base/v1/jobs/\$JOB/events -H "Authorization: Bearer \$TOKEN"

README.md walks through a whole course (refine, finalise, read, export).
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
echo "A service stopped; see .run/*.log" >&2
