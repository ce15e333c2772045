#!/usr/bin/env bash
# Overhead of portvakt's enforcing reverse proxy, measured with wrk on loopback:
#   - against a trivial upstream directly (examples/echo_upstream.rs: 200 "ok"), and
#   - through `portvakt serve --upstream` with one valid token repeated (the common case: a
#     consumer reuses its token for its lifetime), on a route of examples/policy.toml that needs
#     nav:arbeid:some.scope.read,
# first with CONNECTIONS connections (default 32: the machine is saturated, so latency is mostly
# queueing behind the CPU the extra hop costs), then with one connection (the latency one
# request gains by going through the proxy). Prints requests/s, median and p99 of each, and
# what the proxy adds. Both sides get the same Authorization header, so only the proxy differs.
#
# Usage: scripts/load-proxy.sh [DURATION=10s] [CONNECTIONS=32] [THREADS=2]
# Needs: wrk (apt-get install wrk), curl, python3. Tokens from the local issuer live about 90 s
# (atMaxAge 30 s + 60 s leeway); a fresh one is minted for each proxy run, so keep DURATION
# under a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNECTIONS=${2:-32}
THREADS=${3:-2}
UPSTREAM=127.0.0.1:18080
PROXY=127.0.0.1:17167
API=127.0.0.1:17164
ISSUER=127.0.0.1:17166
PATH_UNDER_TEST=/api/v1/items
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
cargo build --release -q -p portvakt-cli --bin portvakt --example echo_upstream
BIN=target/release/portvakt
ECHO=target/release/examples/echo_upstream
# Development mode needs every MASKINPORTEN_* variable unset.
for v in $(compgen -e | grep "^MASKINPORTEN_" || true); do unset "$v"; done

wait_for() { # $1: URL, $2: what, $3: log file
  for _ in $(seq 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "$2 did not come up ($1)" >&2
  cat "$3" >&2
  exit 1
}

"$ECHO" "$UPSTREAM" 2>"$WORK/upstream.log" &
wait_for "http://$UPSTREAM/" "the upstream" "$WORK/upstream.log"

RUST_LOG=warn "$BIN" serve --listen "$API" --dev-issuer-listen "$ISSUER" \
  --manifest examples/nais.yaml \
  --upstream "http://$UPSTREAM" --policy examples/policy.toml --proxy-listen "$PROXY" \
  2>"$WORK/serve.log" &
for _ in $(seq 100); do
  curl -sf "http://$API/readyz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://$API/readyz" >/dev/null || { echo "portvakt serve is not ready" >&2; cat "$WORK/serve.log" >&2; exit 1; }
wait_for "http://$PROXY/" "the proxy (portvakt serve --proxy-listen)" "$WORK/serve.log"

mint_token() {
  curl -sf -d orgno=123456789 -d scope=nav:arbeid:some.scope.read "http://$ISSUER/dev/token" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

# The proxy must refuse without a token and forward with one.
status=$(curl -s -o /dev/null -w '%{http_code}' "http://$PROXY$PATH_UNDER_TEST")
[ "$status" = 401 ] || { echo "expected 401 without a token through the proxy, got $status" >&2; exit 1; }
TOKEN=$(mint_token)
answer=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $TOKEN" "http://$PROXY$PATH_UNDER_TEST")
[ "$answer" = "ok 200" ] || { echo "expected 'ok 200' through the proxy, got '$answer'" >&2; exit 1; }

run() { # $1: name, $2: base URL, $3: connections, $4: threads -> wrk output in $WORK/$1.txt
  echo "== $1: wrk -t$4 -c$3 -d$DURATION --latency $2$PATH_UNDER_TEST"
  wrk -t"$4" -c"$3" -d"$DURATION" --latency \
    -H "Authorization: Bearer $TOKEN" "$2$PATH_UNDER_TEST" | tee "$WORK/$1.txt"
  if grep -q "Non-2xx" "$WORK/$1.txt"; then
    echo "error: $1 had non-2xx answers" >&2
    exit 1
  fi
}

# Warm up both paths (connections, pool, caches), then measure.
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -H "Authorization: Bearer $TOKEN" "http://$UPSTREAM$PATH_UNDER_TEST" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -H "Authorization: Bearer $TOKEN" "http://$PROXY$PATH_UNDER_TEST" >/dev/null
run direct "http://$UPSTREAM" "$CONNECTIONS" "$THREADS"
TOKEN=$(mint_token)
run proxy "http://$PROXY" "$CONNECTIONS" "$THREADS"
run direct-1 "http://$UPSTREAM" 1 1
TOKEN=$(mint_token)
run proxy-1 "http://$PROXY" 1 1

python3 - "$WORK" "$CONNECTIONS" <<'PY'
import re, sys

work, connections = sys.argv[1], sys.argv[2]

def micros(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1, "ms": 1000, "s": 1000000}[unit]

def read(name):
    text = open(f"{work}/{name}.txt").read()
    p50 = micros(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = micros(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    return p50, p99, rps

print()
print(f"{'':22} {'median':>11} {'p99':>11} {'requests/s':>11}")
for suffix, label in (("", f"{connections} connections"), ("-1", "1 connection")):
    direct, proxy = read("direct" + suffix), read("proxy" + suffix)
    for name, (p50, p99, rps) in (("direct", direct), ("proxy", proxy)):
        print(f"{name + ', ' + label:22} {p50:9.0f}us {p99:9.0f}us {rps:11.0f}")
    print(f"{'proxy adds':22} {proxy[0] - direct[0]:9.0f}us {proxy[1] - direct[1]:9.0f}us")
    print()
PY
