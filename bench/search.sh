#!/usr/bin/env bash
# The search load: GET /search/messages under wrk over a log of 200,000+ messages.
# Start the system with registration and write limits raised (setup registers 40 users and
# creates 100 chats), e.g.
#   REGISTER_MAX_PER_ADDRESS=10000 WRITE_RATE_PER_USER=100000 WRITE_BURST_PER_USER=100000 \
#       ./dev up --data-dir .parley-search --quiet
#   bench/search.sh [BASE_URL]          (DATA_DIR=.parley-search: the server's --data-dir)
# Knobs (env): THREADS=2 CONNECTIONS=16 DURATION=20 MESSAGES=200000 SETUP=1 (0: reuse the data)
# Writes bench/results/wrk-search*.txt: all queries mixed, then each query alone.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_URL="${1:-${BASE_URL:-http://127.0.0.1:8000}}"
THREADS="${THREADS:-2}" CONNECTIONS="${CONNECTIONS:-16}" DURATION="${DURATION:-20}"
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
RESULTS=bench/results
command -v wrk > /dev/null || { echo "needs wrk (Debian: apt-get install wrk)" >&2; exit 1; }
mkdir -p "$RESULTS"

if [ "${SETUP:-1}" = 1 ]; then
    "$PYTHON" bench/search_setup.py --base-url "$BASE_URL" \
        --data-dir "${DATA_DIR:-.parley-search}" --messages "${MESSAGES:-200000}"
fi
export TOKENS="$RESULTS/search-tokens.txt" QUERIES="$RESULTS/search-queries.txt"

run() {  # run NAME [QUERY_INDEX]
    local name="$1" out="$RESULTS/wrk-$1.txt"
    QUERY_INDEX="${2:-}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 30s \
        --latency -s bench/wrk/search.lua "$BASE_URL" > "$out"
    echo "== $name ($THREADS threads, $CONNECTIONS connections, ${DURATION}s) =="
    sed -n '/^[0-9]* requests in/,/^non-2xx/p' "$out"
    echo
}

echo "machine: nproc=$(nproc) loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
QUERY_INDEX= wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s bench/wrk/search.lua "$BASE_URL" \
    > /dev/null  # warm-up
run search-mixed
if [ "${EACH:-1}" = 1 ]; then
    n=0
    while IFS= read -r q; do
        n=$((n + 1))
        echo "query: $q"
        DURATION="${EACH_DURATION:-5}" run "search-q$n" "$n"
    done < "$QUERIES"
fi
echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
