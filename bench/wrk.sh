#!/usr/bin/env bash
# Register users + one group chat (bench/setup.py), then load POST and GET /messages with wrk.
#   bench/wrk.sh [BASE_URL]          (default http://127.0.0.1:8000)
# Knobs (env): THREADS=2 CONNECTIONS=32 DURATION=20 WARMUP=3 (seconds) USERS=33
#   PYTHON (default .venv/bin/python if present, else python3; needs httpx)
# Writes bench/results/wrk-{post,get}.txt and bench/results/wrk.json. Reports wrk's own CPU
# (user+sys of the wrk process / wall, from bash's `time`) and the whole machine's busy share.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_URL="${1:-${BASE_URL:-http://127.0.0.1:8000}}"
THREADS="${THREADS:-2}" CONNECTIONS="${CONNECTIONS:-32}" DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-3}" USERS="${USERS:-33}"
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
RESULTS=bench/results
mkdir -p "$RESULTS"

"$PYTHON" bench/setup.py --base-url "$BASE_URL" --users "$USERS" --out "$RESULTS/setup.json"
export TOKENS="$RESULTS/tokens.txt"
CHAT_ID="$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["chat_id"])' \
    "$RESULTS/setup.json")"
export CHAT_ID

# "busy total" jiffies over all cores (idle and iowait count as not busy)
ticks() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t}' /proc/stat; }

# server connections per process mid-run (shows how uvicorn --workers N spread the keep-alive
# connections); best effort: needs `ss`, a local server, and root to see other users' pids
spread() {
    local port="${BASE_URL##*:}"; port="${port%%/*}"
    sleep "$1"
    ss -tnpH state established "( sport = :$port )" 2>/dev/null | grep -o 'pid=[0-9]*' \
        | sort | uniq -c | awk '{printf "%s%s:%s", sep, $2, $1; sep=" "} END {print ""}'
}

run() {  # run NAME SCRIPT: one unmeasured warm-up, then the measured run
    local name="$1" script="$2" out="$RESULTS/wrk-$1.txt"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" --timeout 30s -s "$script" "$BASE_URL" \
        > /dev/null
    read -r busy0 total0 < <(ticks)
    spread "$(( DURATION / 2 ))" > "$RESULTS/wrk-$name.spread" &
    local TIMEFORMAT="%R %U %S" times
    times="$( { time wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 30s --latency \
        -s "$script" "$BASE_URL" > "$out"; } 2>&1 )"
    read -r busy1 total1 < <(ticks)
    wait
    read -r real user sys <<< "$times"
    local cpu machine
    cpu="$(awk -v r="$real" -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", (u+s)/r}')"
    machine="$(awk -v b=$((busy1 - busy0)) -v t=$((total1 - total0)) \
        'BEGIN{printf "%.2f", b/t}')"
    echo "== $name ($THREADS threads, $CONNECTIONS connections, ${DURATION}s) =="
    sed -n '/^[0-9]* requests in/,$p' "$out" | grep -v '^WRK_JSON'
    echo "server connections per pid: $(cat "$RESULTS/wrk-$name.spread")"
    echo "wrk CPU: ${cpu} cores (user ${user}s + sys ${sys}s over ${real}s);" \
        "machine busy: ${machine}"
    echo
    local format='"%s": {"wrk": %s, "wrk_cpu_cores": %s, "machine_busy": %s,'
    format+=' "server_connections": "%s"}'
    # shellcheck disable=SC2059
    printf "$format" "$name" "$(sed -n 's/^WRK_JSON //p' "$out")" "$cpu" "$machine" \
        "$(cat "$RESULTS/wrk-$name.spread")" >> "$RESULTS/wrk.json.part"
}

echo "machine: nproc=$(nproc) loadavg=$(cut -d' ' -f1-3 /proc/loadavg) chat=$CHAT_ID"
rm -f "$RESULTS/wrk.json.part"
run post bench/wrk/post_messages.lua
echo "," >> "$RESULTS/wrk.json.part"
run get bench/wrk/get_messages.lua
{ echo "{"; cat "$RESULTS/wrk.json.part"; echo "}"; } > "$RESULTS/wrk.json"
rm -f "$RESULTS/wrk.json.part"
echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg); report: $RESULTS/wrk.json"
