#!/usr/bin/env bash
# Fuzz the public API with schemathesis (every check, every operation of /openapi.json) against
# a running Parley:   bench/fuzz.sh [BASE_URL]        (default http://127.0.0.1:8000)
# Knobs (env): EXAMPLES=25 (per operation and phase), PHASES=examples,coverage,fuzzing.
# Registers a fresh user for the token.
# schemathesis is installed into bench/.venv-fuzz, outside the project's dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_URL="${1:-${BASE_URL:-http://127.0.0.1:8000}}"
EXAMPLES="${EXAMPLES:-25}"
VENV=bench/.venv-fuzz
if [ ! -x "$VENV/bin/st" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet schemathesis
fi

TOKEN="$(python3 - "$BASE_URL" <<'PY'
import json, sys, urllib.request, uuid
body = json.dumps({"email": f"fuzz-{uuid.uuid4().hex[:12]}@example.com",
                   "password": "fuzzingPassword123", "display_name": "Fuzz"}).encode()
request = urllib.request.Request(f"{sys.argv[1]}/api/v1/auth/register", body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Idempotency-Key": str(uuid.uuid4())})
print(json.load(urllib.request.urlopen(request))["tokens"]["access_token"])
PY
)"
exec "$VENV/bin/st" run "$BASE_URL/openapi.json" -H "Authorization: Bearer $TOKEN" \
    --checks all --max-examples "$EXAMPLES" --phases "${PHASES:-examples,coverage,fuzzing}"
