#!/usr/bin/env bash
# Well-behaved clients' introspection throughput while hostile clients attack the sidecar's
# API listener, on loopback, side by side in one run:
#   baseline   wrk alone
#   idle       + IDLE idle connections and SLOW slowloris clients (a header byte every
#              second), all reconnecting as soon as they are closed, with --max-connections
#              CAP so the cap is hit all along (idle connections must give way to new clients)
#   oversized  + 4 clients that keep posting bodies declared (and sent) as 1 MB
# wrk (-t1, 16 connections, one token) measures the good clients; the attackers are one
# python3 asyncio process. ROUNDS rounds of the three, one after the other, so the machine's
# drift touches them alike; prints each run, then the median of each and its ratio to the
# baseline, the sidecar's CPU per refused oversized request, and its peak resident memory.
#
# Usage: scripts/hostile.sh [DURATION=10s] [ROUNDS=3] [IDLE=2000] [SLOW=500] [CAP=1024]
# Needs: wrk (apt-get install wrk), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
ROUNDS=${2:-3}
IDLE=${3:-2000}
SLOW=${4:-500}
CAP=${5:-1024}
API=127.0.0.1:17264
ISSUER=127.0.0.1:17266
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
ulimit -n "$((IDLE + SLOW + CAP + 1024))" 2>/dev/null || true

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
cargo build --release -q -p portvakt-cli --bin portvakt
BIN=target/release/portvakt
for v in $(compgen -e | grep "^MASKINPORTEN_" || true); do unset "$v"; done

RUST_LOG=warn "$BIN" serve --dev --listen "$API" --dev-issuer-listen "$ISSUER" \
  --max-connections "$CAP" 2>"$WORK/serve.log" &
SIDECAR=$!
for _ in $(seq 100); do
  curl -sf "http://$API/readyz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://$API/readyz" >/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }

TOKEN=$(curl -sf "http://$ISSUER/dev/token" -d orgno=123456789 -d scope=nav:arbeid:some.scope.read |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
cat >"$WORK/good.lua" <<LUA
wrk.method = "POST"
wrk.path = "/api/v1/introspect"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"identity_provider":"maskinporten","token":"$TOKEN"}'
LUA

cat >"$WORK/attack.py" <<'PY'
import asyncio, sys
host, port = sys.argv[1].split(":")
port = int(port)
kind, count, seconds = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
stats = {"connections": 0, "closed_by_server": 0, "refused_413": 0}

async def idle(trickle):
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        stats["connections"] += 1
        try:
            if trickle:
                writer.write(b"POST /api/v1/introspect HTTP/1.1\r\n")
            while loop.time() < end:
                if trickle:
                    writer.write(b"x")
                    await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(64), 1.0)
                except asyncio.TimeoutError:
                    continue
                if not data:
                    stats["closed_by_server"] += 1
                    break
        except OSError:
            stats["closed_by_server"] += 1
        writer.close()

async def oversized():
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    body = b" " * 1_000_000
    head = (b"POST /api/v1/introspect HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n")
    while loop.time() < end:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            stats["connections"] += 1
            writer.write(head + body)
            try:
                await writer.drain()
            except OSError:
                pass
            answer = await asyncio.wait_for(reader.read(64), 5)
            if answer.startswith(b"HTTP/1.1 413"):
                stats["refused_413"] += 1
            writer.close()
        except (OSError, asyncio.TimeoutError):
            pass

async def main():
    if kind == "idle":
        idle_count, slow_count = count, int(sys.argv[5])
        tasks = [idle(False) for _ in range(idle_count)] + [idle(True) for _ in range(slow_count)]
    else:
        tasks = [oversized() for _ in range(count)]
    await asyncio.gather(*tasks)
    print(" ".join(f"{k}={v}" for k, v in stats.items()))

asyncio.run(main())
PY

SECONDS_RUN=${DURATION%s}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SIDECAR/stat"; }
too_large() {
  curl -sf "http://$API/metrics" |
    awk '/^portvakt_requests_total\{endpoint="introspect",outcome="too_large"\}/ {print $2}' | head -1
}

run() { # $1: scenario -> prints "scenario rps"
  local attacker=""
  case "$1" in
    idle)
      python3 "$WORK/attack.py" "$API" idle "$IDLE" "$((SECONDS_RUN + 3))" "$SLOW" >"$WORK/attack.out" &
      attacker=$!
      sleep 2 ;;
    oversized)
      python3 "$WORK/attack.py" "$API" oversized 4 "$((SECONDS_RUN + 2))" >"$WORK/attack.out" &
      attacker=$!
      sleep 1 ;;
  esac
  local ticks_before refused_before
  ticks_before=$(cpu_ticks)
  refused_before=$(too_large); refused_before=${refused_before:-0}
  wrk -t1 -c16 -d"$DURATION" -s "$WORK/good.lua" "http://$API" >"$WORK/wrk.out"
  local ticks=$(( $(cpu_ticks) - ticks_before ))
  local refused=$(( $(too_large | cut -d. -f1) - ${refused_before%.*} ))
  [ -n "$attacker" ] && wait "$attacker"
  local rps errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$WORK/wrk.out" | tr '\n' ' ')
  echo "$1 $rps cpu_ticks=$ticks refused_413=$refused ${errors}$(cat "$WORK/attack.out" 2>/dev/null || true)"
  rm -f "$WORK/attack.out"
}

echo "# scripts/hostile.sh $DURATION rounds=$ROUNDS idle=$IDLE slowloris=$SLOW cap=$CAP"
for round in $(seq "$ROUNDS"); do
  for scenario in baseline idle oversized; do
    run "$scenario" | tee -a "$WORK/runs.txt"
  done
done
python3 - "$WORK/runs.txt" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
runs = {}
cpu = []
for line in open(sys.argv[1]):
    parts = line.split()
    runs.setdefault(parts[0], []).append(float(parts[1]))
    if parts[0] == "oversized":
        fields = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
        refused = int(fields.get("refused_413", 0))
        if refused:
            cpu.append(int(fields["cpu_ticks"]) / int(sys.argv[2]) / refused)
base = statistics.median(runs["baseline"])
print(f"{'scenario':<10} {'median req/s':>13} {'vs baseline':>12}")
for name, values in runs.items():
    median = statistics.median(values)
    print(f"{name:<10} {median:>13.0f} {median / base:>11.2f}x")
if cpu:
    print(f"sidecar CPU per refused oversized request (all its CPU in the run / refusals, an upper bound): {statistics.median(cpu) * 1e6:.0f} us")
PY
echo "peak RSS of the sidecar: $(awk '/VmHWM/ {print $2, $3}' "/proc/$SIDECAR/status")"
