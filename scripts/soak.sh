#!/usr/bin/env bash
# Soak: `portvakt serve` (introspection API and enforcing proxy, production mode against a
# separate `portvakt issuer`) under steady load for DURATION, with valid, expired, forged and
# unknown-kid tokens, more distinct tokens than the cache holds, and a key rotation at half
# time (crates/portvakt-cli/examples/soak.rs says exactly what it sends and judges).
#
#   scripts/soak.sh [DURATION=10m] [RATE=4000]
#
# Prints the driver's Markdown report (throughput, p50/p99/max, wrong verdicts, RSS and open
# descriptors at start, middle and end) and the server's cache and key counters. Exits 1 on
# any wrong verdict. Loopback only; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10m}
RATE=${2:-4000}
case "$DURATION" in
  *m) SECONDS_TOTAL=$(( ${DURATION%m} * 60 )) ;;
  *s) SECONDS_TOTAL=${DURATION%s} ;;
  *) SECONDS_TOTAL=$DURATION ;;
esac
ISSUER=127.0.0.1:27166
API=127.0.0.1:27164
PROXY=127.0.0.1:27167
UPSTREAM=127.0.0.1:28080
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release -q -p portvakt-cli --bin portvakt --example echo_upstream --example soak
BIN=target/release/portvakt
for v in $(compgen -e | grep -E "^(MASKINPORTEN|PORTVAKT)_" || true); do unset "$v"; done

cat >"$WORK/nais.yaml" <<'YAML'
apiVersion: nais.io/v1alpha1
kind: Application
metadata:
  name: soak-api
  namespace: soak
  labels:
    team: soak
spec:
  image: example.org/soak-api:1
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: "long"
          enabled: true
          product: "soak"
          atMaxAge: 680
          consumers:
            - orgno: "123456789"
        - name: "short"
          enabled: true
          product: "soak"
          atMaxAge: 30
          consumers:
            - orgno: "123456789"
YAML
cat >"$WORK/policy.toml" <<'TOML'
[[route]]
path = "/api/**"
any_scopes = ["nav:soak:long", "nav:soak:short"]
TOML

wait_for() { # URL, what, log
  for _ in $(seq 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "$2 did not come up ($1)" >&2; cat "$3" >&2; exit 1
}

"$BIN" issuer --listen "$ISSUER" --manifest "$WORK/nais.yaml" 2>"$WORK/issuer.log" &
wait_for "http://$ISSUER/.well-known/oauth-authorization-server" "the issuer" "$WORK/issuer.log"
target/release/examples/echo_upstream "$UPSTREAM" 2>"$WORK/upstream.log" &
wait_for "http://$UPSTREAM/" "the upstream" "$WORK/upstream.log"
MASKINPORTEN_ISSUER="http://$ISSUER/" MASKINPORTEN_JWKS_URI="http://$ISSUER/jwk" RUST_LOG=warn \
  "$BIN" serve --listen "$API" --upstream "http://$UPSTREAM" --policy "$WORK/policy.toml" \
  --proxy-listen "$PROXY" 2>"$WORK/serve.log" &
SERVE_PID=$!
wait_for "http://$API/readyz" "portvakt serve" "$WORK/serve.log"

echo "soak: ${SECONDS_TOTAL}s at ${RATE} req/s; serve pid $SERVE_PID" >&2
status=0
target/release/examples/soak --api "http://$API" --proxy "http://$PROXY" \
  --issuer "http://$ISSUER/" --pid "$SERVE_PID" --duration "$SECONDS_TOTAL" --rate "$RATE" \
  --long-scope nav:soak:long --short-scope nav:soak:short || status=$?
echo
echo "server counters at the end:"
curl -sf "http://$API/metrics" | grep -E '^portvakt_(token_cache_(hits|misses|entries|bytes)|keys|jwks|validations_total)' | sed 's/^/  /' || true
if grep -qiE 'panic|ERROR' "$WORK/serve.log"; then
  echo "serve logged errors:" >&2; grep -iE 'panic|ERROR' "$WORK/serve.log" | head -20 >&2
fi
exit $status
