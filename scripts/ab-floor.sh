#!/usr/bin/env bash
# Two builds of the proxy's HTTP floor (examples/proxy_floor.rs: the listener and upstream pool
# of `serve --upstream`, checking nothing) and hyper alone (examples/hyper_floor.rs), side by
# side in one run: in every round each runs once, one after the other, against the same nginx
# upstream, so the VM's drift touches them alike; medians of the rounds are compared as ratios
# (docs/BENCHMARKS.md, "The pool in turn"). For changes to the listener or the pool, where
# `scripts/load-proxy.sh` (one build at a time) cannot tell two builds apart.
#
# Prints, per round and case: requests/s, wrk's median and p99, the proxy's CPU per request
# (from /proc/<pid>/stat), the upstream's (its nginx workers') CPU per request, and how the
# upstream's work split between its workers (ticks each).
#
# Usage: scripts/ab-floor.sh BEFORE_DIR AFTER_DIR [DURATION=6s] [ROUNDS=4] [CONNECTIONS=1000]
# BEFORE_DIR and AFTER_DIR each hold a `proxy_floor` built with `--release`, e.g. of another
# commit:
#   git worktree add /tmp/before <rev> &&
#     cargo build --release -p portvakt-cli --example proxy_floor --manifest-path /tmp/before/Cargo.toml
#   scripts/ab-floor.sh /tmp/before/target/release/examples target/release/examples 6s 6 1000
# hyper_floor is taken from AFTER_DIR. Needs: wrk, nginx (installed with apt-get when missing),
# curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '13,20p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
BEFORE=$1
AFTER=$2
DURATION=${3:-6s}
ROUNDS=${4:-4}
CONNECTIONS=${5:-1000}
UPSTREAM=127.0.0.1:18180
# shellcheck source=lib/peers.sh
. scripts/lib/peers.sh
need wrk nginx
for exe in "$BEFORE/proxy_floor" "$AFTER/proxy_floor" "$AFTER/hyper_floor"; do
  [ -x "$exe" ] || { echo "error: $exe is not an executable; build it as the usage shows:" >&2; usage; }
done

nginx_conf upstream "worker_processes auto;" "$(upstream_server "$UPSTREAM")"
start_nginx upstream
wait_for "http://$UPSTREAM/" "nginx (the upstream)" "$WORK/upstream/error.log"

declare -A ADDR PID
start() { # $1: case, $2: port, $3: executable
  ADDR[$1]=127.0.0.1:$2
  "$3" "${ADDR[$1]}" "$UPSTREAM" 2>"$WORK/$1.log" &
  PID[$1]=$!
}
start bare 18184 "$AFTER/hyper_floor"
start before 18185 "$BEFORE/proxy_floor"
start after 18186 "$AFTER/proxy_floor"
CASES="bare before after"
for c in $CASES; do wait_for "http://${ADDR[$c]}/" "$c" "$WORK/$c.log"; done

upstream_ticks() { # each nginx worker's, space-separated
  for p in $(workers upstream); do printf '%d ' "$(cpu_ticks "$p")"; done
}
# Warm-up: every connection opened, every pool filled.
for c in $CASES; do wrk -t2 -c"$CONNECTIONS" -d2s "http://${ADDR[$c]}/" >/dev/null; done

echo "$CONNECTIONS connections, $DURATION per case, $ROUNDS rounds; before: $BEFORE, after: $AFTER"
for round in $(seq "$ROUNDS"); do
  for c in $CASES; do
    t0=$(cpu_ticks "${PID[$c]}")
    u0=$(upstream_ticks)
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "http://${ADDR[$c]}/" >"$WORK/wrk.txt"
    t1=$(cpu_ticks "${PID[$c]}")
    u1=$(upstream_ticks)
    wrk_clean "$WORK/wrk.txt" "$c"
    python3 - "$c" "$round" "$DURATION" "$t0" "$t1" "$u0" "$u1" "$WORK/wrk.txt" "$(getconf CLK_TCK)" >>"$WORK/rounds" <<'PY'
import re, sys
case, rnd, duration, t0, t1, u0, u1, path, hz = sys.argv[1:]
text = open(path).read()
n = int(re.search(r"(\d+) requests in", text).group(1))
seconds = float(duration.rstrip("s"))
lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
split = [b - a for a, b in zip(map(int, u0.split()), map(int, u1.split()))]
us = 1e6 / int(hz)  # microseconds a clock tick
print(case, rnd, n / seconds, lat["50"], lat["99"], (int(t1) - int(t0)) * us / n,
      sum(split) * us / n, ",".join(map(str, split)))
PY
    tail -1 "$WORK/rounds" | awk '{ printf "%-7s round %s %9.0f req/s  median %-9s p99 %-9s proxy %5.1f us/req  upstream %5.1f us/req (split %s)\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
  done
done
python3 - "$WORK/rounds" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
med = {c: statistics.median(float(r[2]) for r in rows if r[0] == c) for c in ("bare", "before", "after")}
spread = {c: (min(float(r[2]) for r in rows if r[0] == c), max(float(r[2]) for r in rows if r[0] == c)) for c in med}
for c in med:
    print(f"{c:7} median {med[c]:9.0f} req/s  (rounds {spread[c][0]:.0f} to {spread[c][1]:.0f})")
print(f"after / before {med['after'] / med['before']:.2f}   after / bare {med['after'] / med['bare']:.2f}   before / bare {med['before'] / med['bare']:.2f}")
PY
