#!/usr/bin/env bash
# Two builds of `portvakt` side by side in one run: the introspection API of each, alternating
# in every round, so the VM's drift touches both alike (docs/BENCHMARKS.md, "The image and
# the release binary"). Each binary runs two `serve`s, each with its own embedded local
# issuer; per round and binary:
#   one   one token repeated, cache on (the HTTP stack and the cached path)
#   cold  DISTINCT tokens, the token cache off (every request a full RS256 validation)
# Prints every run (req/s, and CPU per request from /proc/<pid>/stat around it), then the
# medians and B's ratio to A. Every answer is checked "active":true by the sidecar's counters.
#
# Usage: scripts/compare-builds.sh BIN_A BIN_B [DURATION=6s] [ROUNDS=7] [CONNECTIONS=32] [DISTINCT=1000]
# e.g.  CARGO_TARGET_DIR=/tmp/lto CARGO_PROFILE_RELEASE_LTO=fat cargo build --release -p portvakt-cli
#       scripts/compare-builds.sh target/release/portvakt /tmp/lto/release/portvakt
# Needs: wrk, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
BINS=("$1" "$2")
DURATION=${3:-6s}
ROUNDS=${4:-7}
CONNECTIONS=${5:-32}
DISTINCT=${6:-1000}
for b in "${BINS[@]}"; do [ -x "$b" ] || { echo "$b is not an executable" >&2; exit 2; }; done
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
for v in $(compgen -e | grep "^MASKINPORTEN_" || true); do unset "$v"; done
# shellcheck source=lib/tokens.sh
. scripts/lib/tokens.sh
long_lived_manifest


# Per binary i (0: A, 1: B) two sidecars: the cached one (the default) answers `one` on
# API port 1816i, its issuer on 1826i; one with the token cache off answers `cold` on 1817i,
# issuer 1827i (the cold case repeats a few thousand tokens, which a cache would hold).
PIDS=()
start() { # $1: i, $2: API port, $3: issuer port, $@: more flags
  local i=$1 api=$2 iss=$3
  shift 3
  RUST_LOG=warn "${BINS[$i]}" serve --dev --listen "127.0.0.1:$api" --dev-issuer-listen "127.0.0.1:$iss" \
    --manifest "$WORK/nais.yaml" "$@" 2>"$WORK/$i/serve-$api.log" &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$api/readyz" >/dev/null && return 0; sleep 0.1; done
  cat "$WORK/$i/serve-$api.log" >&2; exit 1
}
for i in 0 1; do
  mkdir -p "$WORK/$i/one" "$WORK/$i/cold"
  start "$i" "1816$i" "1826$i"
  start "$i" "1817$i" "1827$i" --token-cache-bytes 0
done
# PIDS: A cached, A uncached, B cached, B uncached.
mint() { # fresh tokens from each sidecar's own issuer -> $WORK/<i>/<case>/{tokens,one}.txt
  local top=$WORK i
  for i in 0 1; do
    WORK="$top/$i/one" ISSUER="127.0.0.1:1826$i" MINTED=-1000
    fresh_tokens 1
    WORK="$top/$i/cold" ISSUER="127.0.0.1:1827$i" MINTED=-1000
    fresh_tokens "$DISTINCT"
  done
  WORK=$top
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
active() { # $1: API port
  curl -sf "http://127.0.0.1:$1/metrics" | awk '
    /^portvakt_requests_total\{endpoint="introspect"/ {
      if (index($0, "outcome=\"active\"") > 0) a += $NF; else o += $NF
    }
    END { print a + 0, o + 0 }'
}
run() { # $1: 0|1, $2: one|cold
  local i=$1 case=$2 tokens lua port pid before after t0 t1
  if [ "$case" = one ]; then
    tokens=$WORK/$i/one/one.txt lua=scripts/lib/introspect-one.lua port=1816$i pid=${PIDS[$((2 * i))]}
  else
    tokens=$WORK/$i/cold/tokens.txt lua=scripts/lib/introspect-cycle.lua port=1817$i pid=${PIDS[$((2 * i + 1))]}
  fi
  read -r before before_other < <(active "$port")
  t0=$(cpu_ticks "$pid")
  TOKENS=$tokens wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "$lua" "http://127.0.0.1:$port" >"$WORK/wrk.txt"
  t1=$(cpu_ticks "$pid")
  read -r after after_other < <(active "$port")
  local completed rps
  completed=$(awk '/requests in/ { print $1 }' "$WORK/wrk.txt")
  rps=$(awk '/^Requests\/sec/ { print $2 }' "$WORK/wrk.txt")
  if grep -qE "Non-2xx|Socket errors" "$WORK/wrk.txt" || [ $((after_other - before_other)) -ne 0 ] ||
     [ $((after - before)) -lt "$completed" ]; then
    cat "$WORK/wrk.txt" >&2; echo "FAILED: $i $case: not every answer was active" >&2; exit 1
  fi
  # /proc ticks are 1/100 s.
  local us
  us=$(python3 -c "print(f'{($t1 - $t0) * 10000 / $completed:.1f}')")
  echo "$rps $us" >>"$WORK/$case.$i"
  printf '%s %-4s %10s req/s  %6s us CPU/request\n' "$( [ "$i" = 0 ] && echo A || echo B)" "$case" "$rps" "$us"
}
for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS (wrk -t2 -c$CONNECTIONS -d$DURATION)"
  mint # every round: tokens live 120 s
  # Alternate which goes first, so neither always runs right after the other's load.
  if ((round % 2)); then order="0 1"; else order="1 0"; fi
  for case in one cold; do for i in $order; do run "$i" "$case"; done; done
done
echo "== medians of $ROUNDS rounds; A = ${BINS[0]}, B = ${BINS[1]}"
python3 - "$WORK" <<'PY'
import statistics, sys
work = sys.argv[1]
for case in ("one", "cold"):
    med = []
    for i in (0, 1):
        rows = [tuple(map(float, l.split())) for l in open(f"{work}/{case}.{i}")]
        med.append((statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)))
    (ra, ca), (rb, cb) = med
    print(f"  {case:<5} A {ra:>9,.0f} req/s {ca:6.1f} us/req   B {rb:>9,.0f} req/s {cb:6.1f} us/req   "
          f"B/A throughput {rb / ra:.3f}, CPU per request {cb / ca:.3f}")
PY
