#!/usr/bin/env bash
# Run bench/checkin_burst.py against gunicorn (2 sync workers) on a fresh database.
#   bench/run_checkin_burst.sh sqlite
#   bench/run_checkin_burst.sh postgres      # needs PostgreSQL on 127.0.0.1:5432 (user postgres)
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:-sqlite}
PORT=${PORT:-8765}
VOLUNTEERS=${VOLUNTEERS:-500}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-16}
WORK=$(mktemp -d)
export INSTANCE_PATH="$WORK/instance"
export SCAN_DEBOUNCE_SECONDS=0 GEOFENCE_MODE=flag LOG_LEVEL=WARNING PUBLIC_BASE_URL="http://127.0.0.1:$PORT"
if [ "$KIND" = postgres ]; then
  DB="pingan_bench_$(date +%s)"
  psql -h 127.0.0.1 -U postgres -q -c "CREATE DATABASE $DB"
  export DATABASE_URL="postgresql://postgres@127.0.0.1:5432/$DB"
else
  export DATABASE_URL="sqlite:///$WORK/bench.db"
fi
PY=.venv/bin/python
.venv/bin/flask --app app db upgrade >/dev/null 2>&1
$PY bench/checkin_burst.py setup --volunteers "$VOLUNTEERS" --out "$WORK/burst.json"
.venv/bin/gunicorn --workers 2 --bind "127.0.0.1:$PORT" --log-level warning 'app:create_app()' &
GPID=$!
trap 'kill $GPID 2>/dev/null; wait $GPID 2>/dev/null; [ "$KIND" = postgres ] && psql -h 127.0.0.1 -U postgres -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; rm -rf "$WORK"' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
$PY bench/checkin_burst.py run --base-url "http://127.0.0.1:$PORT" --data "$WORK/burst.json" \
  --volunteers "$VOLUNTEERS" --rounds "$ROUNDS" --concurrency "$CONCURRENCY" --check-db
