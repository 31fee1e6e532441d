#!/usr/bin/env bash
# POST and GET /messages (bench/wrk.sh) through the router of `parley up --cluster` with 1 and
# with 2 processes of each service, and through plain `parley up` for reference; reports the
# router's (Caddy's) CPU over each wrk run beside wrk's figures.
#   bench/cluster.sh [PROCESSES...]     (default: 1 2; "edge" = plain parley up --workers 2)
# Knobs: those of bench/wrk.sh (DURATION, CONNECTIONS, ...), PORT=8100.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8100}"
RESULTS=bench/results
mkdir -p "$RESULTS"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # user + system, in clock ticks

one() {  # one SHAPE: start the system, load it, stop it
    local shape="$1" data args pid router
    data="$(mktemp -d /tmp/parley-bench-XXXX)"
    args=(--port "$PORT" --data-dir "$data" --quiet)
    [ "$shape" = edge ] || args+=(--cluster --processes "$shape")
    rm -f "$RESULTS/cluster-up.out"  # the previous shape's "Parley is up" must not count
    .venv/bin/parley up "${args[@]}" > "$RESULTS/cluster-up.out" 2>&1 &
    pid=$!
    until grep -qs "Parley is up" "$RESULTS/cluster-up.out"; do
        kill -0 "$pid" || { cat "$RESULTS/cluster-up.out"; exit 1; }
        sleep 0.5
    done
    router="$(pgrep -f "$data/router/Caddyfile" || true)"
    local before=0 start after
    [ -z "$router" ] || before="$(cpu_ticks "$router")"
    start="$(date +%s.%N)"
    echo "######## shape: $shape (processes of each service; edge = parley up --workers 2)"
    bench/wrk.sh "http://127.0.0.1:$PORT" | grep -E "^==|requests in|latency ms|non-2xx|wrk CPU|machine busy"
    if [ -n "$router" ]; then
        after="$(cpu_ticks "$router")"
        awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v s="$start" -v e="$(date +%s.%N)" \
            'BEGIN{printf "router CPU over both runs (warm-ups included): %.2f cores\n", t/hz/(e-s)}'
    fi
    kill -INT "$pid"
    wait "$pid" || true
    rm -rf "$data"
}

for shape in "${@:-1 2}"; do
    for each in $shape; do one "$each"; done
done
