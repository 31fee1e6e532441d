#!/usr/bin/env bash
# The conversation-state load: GET /chats for a reader in 100 chats (unread counts, markers,
# last messages), then PUT /chats/{id}/read moving markers forward (bench/conversation_setup.py
# prepares both). Start the system with write limits raised first: each reader marks many
# times a second, beyond the default per-user write bucket, e.g.
#   WRITE_RATE_PER_USER=100000 WRITE_BURST_PER_USER=100000 ./dev up
#   bench/conversation.sh [BASE_URL]
# Knobs (env): THREADS=2 CONNECTIONS=32 DURATION=20 CHATS=100 PER_CHAT=10 READERS=20 MARKS=4000
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_URL="${1:-${BASE_URL:-http://127.0.0.1:8000}}"
THREADS="${THREADS:-2}" CONNECTIONS="${CONNECTIONS:-32}" DURATION="${DURATION:-20}"
export THREADS
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
RESULTS=bench/results
command -v wrk > /dev/null || { echo "needs wrk (Debian: apt-get install wrk)" >&2; exit 1; }
mkdir -p "$RESULTS"

(cd bench && "../$PYTHON" conversation_setup.py --base-url "$BASE_URL" \
    --chats "${CHATS:-100}" --per-chat "${PER_CHAT:-10}" --readers "${READERS:-20}" \
    --marks "${MARKS:-4000}")
MARK_CHAT="$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["mark_chat"])' \
    "$RESULTS/conversation.json")"

run() {  # run NAME SCRIPT TOKENS [CHAT_ID]
    local name="$1" script="$2" out="$RESULTS/wrk-$1.txt" TIMEFORMAT="%R %U %S" times
    export TOKENS="$3" CHAT_ID="${4:-1}" MARK_IDS="$RESULTS/mark-ids.txt"
    times="$( { time wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 30s \
        --latency -s "$script" "$BASE_URL" > "$out"; } 2>&1 )"
    read -r real user sys <<< "$times"
    echo "== $name ($THREADS threads, $CONNECTIONS connections, ${DURATION}s) =="
    sed -n '/^[0-9]* requests in/,$p' "$out" | grep -v '^WRK_JSON'
    echo "wrk CPU: $(awk -v r="$real" -v u="$user" -v s="$sys" \
        'BEGIN{printf "%.2f", (u+s)/r}') cores"
    echo
}

echo "machine: nproc=$(nproc) loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
run get-chats bench/wrk/get_chats.lua "$RESULTS/reader-token.txt"
run mark-read bench/wrk/mark_read.lua "$RESULTS/reader-tokens.txt" "$MARK_CHAT"
echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
