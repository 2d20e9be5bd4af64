#!/usr/bin/env bash
# Set up and start Arbiter on the embedded defaults: SQLite, Celery's filesystem broker, one local
# worker per queue (default: imports and snapshots; gpu: training; jobs: judge, evaluation, generation,
# queue scoring and model registration; score: reward-model scoring for the API) and the web server.
# Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
PY=.venv/bin/python
mkdir -p var/log

echo "==> seeding the demo (idempotent)"
"$PY" manage.py seed_demo --url "http://$HOST:$PORT"

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "==> stopping Arbiter"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# Imports and snapshots never wait behind a training run: each queue has its own worker.
# The default worker also runs the periodic checks (-B): stale training runs are resumed or failed.
.venv/bin/celery -A config worker -Q default -n default@%h -c 2 -B \
  --schedule var/celerybeat-schedule --loglevel INFO >var/log/worker-default.log 2>&1 &
pids+=($!)
# One training run at a time per GPU (here: the CPU); a fresh process per run frees its memory.
.venv/bin/celery -A config worker -Q gpu -n gpu@%h -c 1 --max-tasks-per-child 1 \
  --loglevel INFO >var/log/worker-gpu.log 2>&1 &
pids+=($!)
# Short jobs (AI judge, policy evaluation, generation batches, scoring a project's queue, model
# registration) have their own worker process: with a single process they would wait behind a
# training run that takes an hour. One at a time (each loads a model); a fresh process per job
# frees its memory, like the gpu worker.
.venv/bin/celery -A config worker -Q jobs -n jobs@%h -c 1 --max-tasks-per-child 1 \
  --loglevel INFO >var/log/worker-jobs.log 2>&1 &
pids+=($!)
# Reward-model scoring for the API: its own queue, so a request never waits behind a training run.
# One process that keeps the last models loaded (training/registry/scoring.py caches them).
.venv/bin/celery -A config worker -Q score -n score@%h -c 1 \
  --loglevel INFO >var/log/worker-score.log 2>&1 &
pids+=($!)
.venv/bin/gunicorn config.wsgi -b "$HOST:$PORT" -w 2 --threads 4 --timeout 120 --graceful-timeout 5 \
  --access-logfile var/log/access.log --error-logfile - &
pids+=($!)

cat <<MSG

  Arbiter is running at http://$HOST:$PORT/
  Log in as manager, researcher, rater1 or rater2 (password: arbiter-demo).
  API docs: http://$HOST:$PORT/api/docs/   Worker logs: var/log/
  Ctrl-C stops the web server and the workers.

MSG
wait -n "${pids[@]}"
