#!/usr/bin/env bash
# Smoke test of a deployed ATM host:
#
#   scripts/smoke_test.sh OPS_URL [LINK_HOST[:PORT]]
#   scripts/smoke_test.sh http://atm-sim-dev-1234.elb.us-east-1.amazonaws.com:8080
#
# What it checks, and nothing more:
#   1. GET OPS_URL/health answers 200 (the process is up);
#   2. GET OPS_URL/ready answers 200 (the host reaches its database, migrated to the newest);
#   3. one ISO-8583 balance inquiry over TCP (default: the OPS_URL's host name, port
#      LINK_PORT or 8583) from a simulated terminal with the seed test card is approved
#      and carries a balance (python -m scripts.smoke_iso; keys and PIN: see that module).
#      Over TLS when SMOKE_TLS_CA names the link's CA file (SMOKE_TLS_CERT and SMOKE_TLS_KEY:
#      the terminal's client certificate for mutual TLS; docs/deployment.md).
# An https:// OPS_URL is verified against SMOKE_TLS_CA too when it is set (on AWS the ops API
# serves the link's certificate, from the same CA), else against the system's CAs.
# It does not withdraw money, so it is safe against any environment with the seed data.
# Exit status 0 when all three pass, 1 when one fails, 2 for bad usage.
set -euo pipefail

usage() { echo "usage: $0 OPS_URL [LINK_HOST[:PORT]]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
ops_url=${1%/}
case "$ops_url" in http://*|https://*) ;; *) usage ;; esac

authority=${ops_url#*://}
authority=${authority%%/*}
default_host=${authority%:*}
link=${2:-$default_host}
link_host=${link%:*}
link_port=${LINK_PORT:-8583}
[ "$link" != "$link_host" ] && link_port=${link##*:}

cd "$(dirname "$0")/.."
python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi

curl_tls=()
[ -n "${SMOKE_TLS_CA:-}" ] && curl_tls+=(--cacert "$SMOKE_TLS_CA")
failures=0
check_http() {
    local path=$1 code
    # Up to SMOKE_HTTP_TRIES tries (30), 2 s apart: a freshly started host needs a few seconds.
    local tries=${SMOKE_HTTP_TRIES:-30} try
    for try in $(seq 1 "$tries"); do
        code=$(curl -s "${curl_tls[@]}" -o /dev/null -w '%{http_code}' --max-time 5 "$ops_url$path" || true)
        [ "$code" = "200" ] && break
        [ "$try" -lt "$tries" ] && sleep 2
    done
    if [ "$code" = "200" ]; then
        echo "smoke: ok   GET $path -> 200"
    else
        echo "smoke: FAIL GET $path -> ${code:-no answer}"
        failures=$((failures + 1))
    fi
}

check_http /health
check_http /ready
tls=()
[ -n "${SMOKE_TLS_CA:-}" ] && tls+=(--tls-ca "$SMOKE_TLS_CA")
[ -n "${SMOKE_TLS_CERT:-}" ] && tls+=(--tls-cert "$SMOKE_TLS_CERT")
[ -n "${SMOKE_TLS_KEY:-}" ] && tls+=(--tls-key "$SMOKE_TLS_KEY")
if "$python" -m scripts.smoke_iso --host "$link_host" --port "$link_port" "${tls[@]}"; then
    echo "smoke: ok   ISO-8583 balance inquiry at $link_host:$link_port"
else
    echo "smoke: FAIL ISO-8583 balance inquiry at $link_host:$link_port"
    failures=$((failures + 1))
fi

if [ "$failures" -ne 0 ]; then
    echo "smoke: $failures check(s) failed"
    exit 1
fi
echo "smoke: all checks passed"
