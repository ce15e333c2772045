#!/usr/bin/env bash
# Introspection throughput of `portvakt serve` with wrk (-t2, CONNECTIONS connections), on
# loopback, on the machine that also runs wrk:
#   floor  the sidecar's HTTP stack with a handler that answers a fixed body of the same size
#          without validating (examples/http_floor.rs): no handler on this stack is faster
#   one    one token, repeated (the common case: a consumer reuses its token for its lifetime)
#   cycle  DISTINCT different tokens, cycled (many consumers; cache hits after one pass)
#   cold   DISTINCT tokens with the verified-token cache off: every request a full RS256
#          validation (the worst case)
# ROUNDS rounds; in each, floor, one and cycle run one after the other (odd rounds in that
# order, even rounds the other way round), so the machine's drift touches them alike; cold
# runs afterwards on a sidecar without a cache. Every answer is checked to be "active":true by
# the sidecar's own counters. Prints each run (with the server's CPU per request, from
# /proc/<pid>/stat around it), then for each case: the median throughput and its share of the
# floor's, the median of the rounds' own shares (each round's case against the same round's
# floor: the figure least moved by drift between rounds), the median CPU per request, and the
# sidecar's peak resident memory.
#
# PORTVAKT_BIN measures another build of portvakt (e.g. scripts/build-pgo.sh's), FLOOR_DIR
# another build of the floor (FLOORS=1 scripts/build-pgo.sh's: target/pgo/floors/release/examples).
#
# Usage: [PORTVAKT_BIN=path] [FLOOR_DIR=dir] scripts/load-introspect.sh [DURATION=10s] [CONNECTIONS=32] [DISTINCT=5000] [ROUNDS=3]
# Needs: wrk (apt-get install wrk), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNECTIONS=${2:-32}
DISTINCT=${3:-5000}
ROUNDS=${4:-3}
API=127.0.0.1:17164
ISSUER=127.0.0.1:17166
FLOOR=127.0.0.1:18081
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
# Not peers.sh (no nginx here, and its own WORK); only its build and checks.
# shellcheck source=lib/checks.sh
. scripts/lib/checks.sh
# Only what PORTVAKT_BIN and FLOOR_DIR do not replace is built.
build_unless_given -- http_floor
BIN=${PORTVAKT_BIN:-target/release/portvakt}
FLOOR_DIR=${FLOOR_DIR:-target/release/examples}
executables "$BIN" "$FLOOR_DIR/http_floor"
# Development mode needs every MASKINPORTEN_* variable unset.
for v in $(compgen -e | grep "^MASKINPORTEN_" || true); do unset "$v"; done

# shellcheck source=lib/tokens.sh
. scripts/lib/tokens.sh
long_lived_manifest

start_sidecar() { # "$@": more flags for serve
  RUST_LOG=warn "$BIN" serve --dev --listen "$API" --dev-issuer-listen "$ISSUER" \
    --manifest "$WORK/nais.yaml" "$@" 2>"$WORK/serve.log" &
  SIDECAR=$!
  for _ in $(seq 100); do
    curl -sf "http://$API/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "the sidecar did not become ready" >&2; cat "$WORK/serve.log" >&2; exit 1
}

stop_sidecar() { kill "$SIDECAR"; wait "$SIDECAR" 2>/dev/null || true; }


introspections() { # $1: active|other -> the sidecar's count of such introspection answers
  curl -sf "http://$API/metrics" | awk -v want="$1" '
    /^portvakt_requests_total\{endpoint="introspect"/ {
      active = index($0, "outcome=\"active\"") > 0
      if ((want == "active") == active) n += $NF
    }
    END { print n + 0 }'
}

PEAK_RSS=0
load() { # $1: case, $2: URL, $3: tokens file, $4: Lua script, $5: pid to sample -> $WORK/runs
  local peak=0 rss t0 t1
  t0=$(cpu_ticks "$5")
  TOKENS="$3" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$4" "$2" >"$WORK/wrk.txt" &
  local job=$!
  while kill -0 "$job" 2>/dev/null; do
    rss=$(ps -o rss= -p "$5" | tr -d ' ')
    [ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss
    sleep 0.2
  done
  wait "$job"
  t1=$(cpu_ticks "$5")
  local rps p50 p99 completed cpu
  rps=$(awk '/^Requests\/sec/ { print $2 }' "$WORK/wrk.txt")
  p50=$(awk '$1 == "50%" { print $2 }' "$WORK/wrk.txt")
  p99=$(awk '$1 == "99%" { print $2 }' "$WORK/wrk.txt")
  wrk_clean "$WORK/wrk.txt" "$1"
  completed=$(awk '/requests in/ { print $1 }' "$WORK/wrk.txt")
  cpu=$(awk -v t=$((t1 - t0)) -v n="$completed" 'BEGIN { printf "%.2f", t * 10000 / n }')
  echo "$1 $ROUND $rps $cpu" >>"$WORK/runs"
  printf '%-6s %10s req/s  median %8s  p99 %8s  CPU %6s us/request  peak RSS %3d MiB\n' \
    "$1" "$rps" "$p50" "$p99" "$cpu" $((peak / 1024))
  [ "$5" = "$SIDECAR" ] && [ "$peak" -gt "$PEAK_RSS" ] && PEAK_RSS=$peak
  return 0
}

checked() { # $1: case, $2: active answers before the run; checks every answer was active
  local completed active others
  completed=$(awk '/requests in/ { print $1 }' "$WORK/wrk.txt")
  active=$(($(introspections active) - $2))
  others=$(($(introspections other) - OTHERS_BEFORE))
  # wrk counts the answers it read; the sidecar may also have answered a few that were in
  # flight when wrk stopped.
  if [ "$others" -ne 0 ] || [ "$active" -lt "$completed" ]; then
    echo "FAILED: $1: wrk read $completed answers; the sidecar answered $active active, $others other" >&2
    exit 1
  fi
}

sidecar_case() { # $1: case, $2: tokens file, $3: Lua script
  local before
  before=$(introspections active)
  OTHERS_BEFORE=$(introspections other)
  load "$1" "http://$API" "$2" "$3" "$SIDECAR"
  checked "$1" "$before"
}

"$FLOOR_DIR/http_floor" "$FLOOR" 2>"$WORK/floor.log" &
FLOOR_PID=$!
start_sidecar
floor_case() { load floor "http://$FLOOR" "$WORK/one.txt" scripts/lib/introspect-one.lua "$FLOOR_PID"; }
for ROUND in $(seq "$ROUNDS"); do
  echo "== round $ROUND of $ROUNDS (wrk -t2 -c$CONNECTIONS -d$DURATION)"
  fresh_tokens "$DISTINCT"
  if ((ROUND % 2)); then
    floor_case
    sidecar_case one "$WORK/one.txt" scripts/lib/introspect-one.lua
    sidecar_case cycle "$WORK/tokens.txt" scripts/lib/introspect-cycle.lua
  else
    sidecar_case cycle "$WORK/tokens.txt" scripts/lib/introspect-cycle.lua
    sidecar_case one "$WORK/one.txt" scripts/lib/introspect-one.lua
    floor_case
  fi
done
echo "verified-token cache after the rounds:"
curl -sf "http://$API/metrics" | grep -E '^portvakt_token_cache_(hits|misses|entries|bytes)' | sed 's/^/  /'
stop_sidecar
kill "$FLOOR_PID"

start_sidecar --token-cache-bytes 0
echo "== cache off"
MINTED=-1000 # this sidecar's issuer has keys of its own
for ROUND in $(seq "$ROUNDS"); do
  fresh_tokens "$DISTINCT"
  sidecar_case cold "$WORK/tokens.txt" scripts/lib/introspect-cycle.lua
done
stop_sidecar

echo "== medians of $ROUNDS rounds (every answer checked \"active\":true)"
python3 - "$WORK" "$PEAK_RSS" <<'PY'
import statistics, sys
work, peak = sys.argv[1], int(sys.argv[2])
runs = {}  # case -> {round: (rps, cpu)}
with open(f"{work}/runs") as f:
    for line in f:
        case, rnd, rps, cpu = line.split()
        runs.setdefault(case, {})[int(rnd)] = (float(rps), float(cpu))
median = statistics.median
floor = runs["floor"]
floor_rps = median(r for r, _ in floor.values())
titles = {
    "floor": "HTTP floor (same stack, fixed answer, no validation)",
    "one": "one token, repeated",
    "cycle": "distinct tokens, cycled (cache on)",
    "cold": "distinct tokens, cache off (full RS256 each)",
}
print(f"  {'':<52} {'req/s':>9}  {'of floor':>8}  {'per round':>9}  {'CPU/request':>11}")
for case, title in titles.items():
    by_round = runs[case]
    rps = median(r for r, _ in by_round.values())
    cpu = median(c for _, c in by_round.values())
    # cold runs on its own sidecar after the rounds: no floor in its rounds.
    paired = [r / floor[n][0] for n, (r, _) in by_round.items() if case != "cold" and n in floor]
    per_round = f"{median(paired):9.2f}" if paired else f"{'':>9}"
    print(f"  {title:<52} {rps:>9,.0f}  {rps / floor_rps:8.2f}  {per_round}  {cpu:8.2f} us")
print(f"  peak RSS of the sidecar: {peak // 1024} MiB")
PY
