#!/usr/bin/env bash
# Introspection throughput of `portvakt serve` with wrk, on loopback:
#   1. one token, repeated (the common case: a consumer reuses its token for its lifetime)
#   2. DISTINCT different tokens, cycled (many consumers; mostly cache hits after one pass)
#   3. DISTINCT different tokens with the verified-token cache off: every request is a full
#      RS256 validation (the worst case)
# and the sidecar's peak resident memory during each run.
#
# Usage: scripts/load-introspect.sh [DURATION=10s] [CONNECTIONS=32] [DISTINCT=5000]
# Needs: wrk (apt-get install wrk), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNECTIONS=${2:-32}
DISTINCT=${3:-5000}
API=127.0.0.1:17164
ISSUER=127.0.0.1:17166
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
cargo build --release -q -p portvakt-cli
BIN=target/release/portvakt
# Development mode needs every MASKINPORTEN_* variable unset.
for v in $(compgen -e | grep "^MASKINPORTEN_" || true); do unset "$v"; done

start_sidecar() { # $1: token cache bytes
  RUST_LOG=warn "$BIN" serve --listen "$API" --dev-issuer-listen "$ISSUER" \
    --manifest examples/nais.yaml --token-cache-bytes "$1" 2>"$WORK/serve.log" &
  SIDECAR=$!
  for _ in $(seq 100); do
    curl -sf "http://$API/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "the sidecar did not become ready" >&2; cat "$WORK/serve.log" >&2; exit 1
}

stop_sidecar() { kill "$SIDECAR"; wait "$SIDECAR" 2>/dev/null || true; }

mint_tokens() { # $1: count -> $WORK/tokens.txt (tokens live atMaxAge + 60 s leeway)
  python3 - "$1" "http://$ISSUER/dev/token" >"$WORK/tokens.txt" <<'PY'
import json, sys, urllib.request, urllib.parse
count, url = int(sys.argv[1]), sys.argv[2]
body = urllib.parse.urlencode({"orgno": "123456789", "scope": "nav:arbeid:some.scope.read"}).encode()
for _ in range(count):
    with urllib.request.urlopen(url, data=body) as r:
        print(json.load(r)["access_token"])
PY
}

cat >"$WORK/introspect.lua" <<'LUA'
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do tokens[#tokens + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #tokens + 1
  return wrk.format(nil, "/api/v1/introspect", nil,
    '{"identity_provider":"maskinporten","token":"' .. tokens[i] .. '"}')
end
response = function(status, headers, body)
  if status ~= 200 or not body:find('"active":true', 1, true) then
    io.stderr:write("unexpected answer: " .. status .. " " .. body:sub(1, 120) .. "\n")
  end
end
LUA

peak_rss_during() { # runs "$@" while sampling the sidecar's RSS; prints the peak in MiB
  local peak=0 rss
  "$@" &
  local job=$!
  while kill -0 "$job" 2>/dev/null; do
    rss=$(ps -o rss= -p "$SIDECAR" | tr -d ' ')
    [ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss
    sleep 0.2
  done
  wait "$job"
  echo "peak RSS of the sidecar: $((peak / 1024)) MiB"
}

run() { # $1: title, $2: tokens file
  echo "== $1"
  TOKENS="$2" peak_rss_during wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/introspect.lua" "http://$API"
}

start_sidecar $((8 * 1024 * 1024))
mint_tokens "$DISTINCT"
head -n 1 "$WORK/tokens.txt" >"$WORK/one.txt"
run "one token, repeated (cache on)" "$WORK/one.txt"
run "$DISTINCT distinct tokens, cycled (cache on)" "$WORK/tokens.txt"
stop_sidecar

start_sidecar 0
mint_tokens "$DISTINCT"
run "$DISTINCT distinct tokens, cache off (every request a full RS256 validation)" "$WORK/tokens.txt"
stop_sidecar
