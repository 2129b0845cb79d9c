#!/usr/bin/env bash
# Runs schemathesis against the OpenAPI document of a live twauth: builds
# the binary, starts it on SQLite in a temporary folder on a free loopback
# port with a file outbox, signs up one user for a bearer token, then lets
# schemathesis send generated requests within a bounded number of examples
# and seconds. Fails on any 5xx or any response that does not match the
# document. Needs curl and `pip install -r .ci/requirements.txt`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Test cases per operation and the time budget of the whole run, in seconds.
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
MAX_TIME="${SCHEMATHESIS_MAX_TIME:-150}"
SCHEMATHESIS="${SCHEMATHESIS:-schemathesis}"

log() { printf '\n== %s\n' "$*"; }

log "build twauth"
cargo build --quiet --bin twauth
binary="${CARGO_TARGET_DIR:-target}/debug/twauth"

work="$(mktemp -d)"
server_pid=""
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid"
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap stop_server EXIT

log "start twauth"
# Port 0 lets the kernel pick a free port; the server prints the one bound.
# The abuse limits are raised because every generated request comes from
# one client address, and the cheapest code hash keeps the run short.
env -i PATH="$PATH" \
    TWAUTH_SERVER__LISTEN=127.0.0.1:0 \
    TWAUTH_SERVER__WORKERS=2 \
    TWAUTH_DATABASE__URL="sqlite://$work/twauth.db" \
    TWAUTH_MAIL__TRANSPORT__TRANSPORT=file \
    TWAUTH_MAIL__TRANSPORT__DIR="$work/outbox" \
    TWAUTH_MAIL__POLL_INTERVAL_MS=50 \
    TWAUTH_AUTH__CODE_HASH_COST=4 \
    TWAUTH_LIMITS__CODES_PER_ADDRESS=100000 \
    TWAUTH_LIMITS__CODES_PER_ADDRESS_GAP=0 \
    TWAUTH_LIMITS__LOGINS_PER_CLIENT=100000 \
    TWAUTH_LIMITS__REGISTRATIONS_PER_CLIENT=100000 \
    TWAUTH_LIMITS__EMAILS_PER_CLIENT=100000 \
    TWAUTH_LIMITS__VERIFICATIONS_PER_CLIENT=100000 \
    TWAUTH_LIMITS__ACCOUNT_FAILURES=100 \
    "$binary" serve >"$work/stdout" 2>"$work/server.log" &
server_pid=$!

base=""
for _ in $(seq 1 300); do
    base="$(sed -n 's/^twauth listening on //p' "$work/stdout" | head -n 1)"
    [ -n "$base" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$base" ]; then
    echo "twauth did not start; its log:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
case "$base" in
    http://127.0.0.1:*) ;;
    *) echo "twauth listens on $base, not on loopback" >&2; exit 1 ;;
esac
api="$base/api/auth/v2"
echo "twauth listens on $base"

log "sign up a user"
registered="$(curl -sSf -X POST "$api/user" -H 'content-type: application/json' \
    -d '{"email": "schemathesis@example.com", "fullName": "Schema Thesis", "alias": "schemathesis"}')"
read_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
bearer="$(read_field bearer <<<"$registered")"
code_id="$(read_field verificationCodeID <<<"$registered")"

code=""
for _ in $(seq 1 100); do
    mail="$(ls -t "$work"/outbox/*.eml 2>/dev/null | head -n 1 || true)"
    if [ -n "$mail" ]; then
        # Message lines end in CR LF; the code is alone on an indented line.
        code="$(tr -d '\r' <"$mail" | grep -E '^ +[0-9]{6}$' | tr -d ' ' | head -n 1 || true)"
        [ -n "$code" ] && break
    fi
    sleep 0.1
done
if [ -z "$code" ]; then
    echo "no code arrived in $work/outbox" >&2
    exit 1
fi
curl -sSf -o /dev/null -X PUT "$api/session/verification" -H 'content-type: application/json' \
    -d "{\"verificationCodeID\": \"$code_id\", \"code\": \"$code\"}"
curl -sSf -o /dev/null "$api/session" -H "authorization: Bearer $bearer"

log "schemathesis ($("$SCHEMATHESIS" --version))"
report="$work/report"
status=0
"$SCHEMATHESIS" run "$api/openapi.json" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --request-timeout 10 \
    --header "Authorization: Bearer $bearer" \
    --seed 1 \
    --no-color \
    --report ndjson --report-ndjson-path "$report.ndjson" ||
    status=$?

# Each generated request is one interaction in the report.
requests="$(python3 - "$report.ndjson" <<'EOF'
import json, sys
count = 0
with open(sys.argv[1]) as events:
    for line in events:
        event = json.loads(line)
        for payload in event.values():
            if isinstance(payload, dict):
                for step in payload.get("recorder", {}).get("interactions", {}).values():
                    count += 1 if step.get("request") else 0
print(count)
EOF
)" || requests="unknown"
echo "schemathesis sent $requests requests"

if grep -qE 'panicked|Internal server error' "$work/server.log"; then
    echo "the server log reports a fault:" >&2
    grep -E 'panicked|Internal server error' "$work/server.log" | head -n 20 >&2
    status=1
fi
exit "$status"
