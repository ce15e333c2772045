#!/usr/bin/env bash
# Instructions (and heap allocations) per proxied request, counted by valgrind's callgrind,
# which the VM's drift leaves alone (docs/BENCHMARKS.md, "counted in instructions"):
#   nginx      nginx as a plain reverse proxy (one process: master_process off, one worker),
#              the same configuration as scripts/load-proxy.sh's
#   bare       hyper alone (examples/hyper_floor.rs)
#   floor      portvakt's HTTP stack checking nothing (examples/proxy_floor.rs)
#   portvakt   portvakt serve --upstream, a route of examples/policy.toml that needs
#              nav:arbeid:some.scope.read, one valid token repeated (its embedded issuer too)
# each behind the same nginx upstream answering 200 "ok", with wrk -t1 -cCONNECTIONS for
# DURATION. The counter is zeroed after start-up and a warm-up, dumped after wrk, and divided
# by the requests wrk completed: every thread of the process is counted (the runtime, the
# validator's refresh, the issuer idle), so the figure is an upper bound on the request's own.
# Allocations are the calls to malloc, calloc and realloc (nginx's pools end there) and to
# the three entry points of mimalloc that Rust's global allocator calls (portvakt's binary and
# the floors use mimalloc; crates/portvakt-cli/src/main.rs).
#
# The binaries are built with symbols into target/profiling (the release profile otherwise:
# fat LTO, one codegen unit), so that `callgrind_annotate` can name functions in the kept
# profiles (KEEP=dir keeps callgrind.out.* there).
#
# CACHE_SIM=1 also simulates the CPU's caches (callgrind's --cache-sim: this machine's first
# level, and its per-core 512 KiB L2 as the last level) and prints, per request, the misses in
# the instruction cache (I1), the data cache (D1 reads and writes) and the L2 (data reads and
# writes): how much of a hop's code and data fall out of the caches between two uses, which
# the instruction count alone does not show. Slower (about 2x). The kernel is not simulated,
# so a buffer it has just filled counts as cold: the L2 figures are an upper bound. With many
# CONNECTIONS they show what each connection's cold state costs (docs/BENCHMARKS.md, "The
# allocator, and what many connections cost").
#
# Usage: [PORTVAKT_BIN=path] [FLOOR_DIR=dir] [CACHE_SIM=1] [KEEP=dir] scripts/callgrind-proxy.sh [CASES="nginx bare floor portvakt"] [DURATION=10s] [CONNECTIONS=4]
# Needs: valgrind, wrk, nginx (installed with apt-get when missing), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${1:-nginx bare floor portvakt}
DURATION=${2:-10s}
CONNECTIONS=${3:-4}
UPSTREAM=127.0.0.1:18090
TARGET=127.0.0.1:18091
API=127.0.0.1:18092
ISSUER=127.0.0.1:18093
PATH_UNDER_TEST=/api/v1/items
# shellcheck source=lib/peers.sh
. scripts/lib/peers.sh
need wrk valgrind nginx
# PORTVAKT_BIN and FLOOR_DIR count other builds, as in scripts/load-proxy.sh (e.g.
# `FLOORS=1 scripts/build-pgo.sh`'s: target/pgo/use/release/portvakt and
# target/pgo/floors/release/examples); those are stripped, so only the totals name them and
# their allocations show as "-". Only what they do not replace is built.
CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  build_unless_given --target-dir target/profiling -- proxy_floor hyper_floor
BIN=target/profiling/release
PORTVAKT_BIN=${PORTVAKT_BIN:-$BIN/portvakt}
FLOOR_DIR=${FLOOR_DIR:-$BIN/examples}
executables "$PORTVAKT_BIN" "$FLOOR_DIR/proxy_floor" "$FLOOR_DIR/hyper_floor"
for v in $(compgen -e | grep "^MASKINPORTEN_" || true); do unset "$v"; done

nginx_conf upstream "worker_processes auto;" "$(upstream_server "$UPSTREAM")"
"$NGINX_BIN" -p "$WORK/upstream" -c "$WORK/upstream/nginx.conf"
wait_for "http://$UPSTREAM/" "nginx (the upstream)" "$WORK/upstream/error.log"
# The plain proxy as load-proxy.sh runs it, in one process so that callgrind sees its work.
nginx_conf proxy "daemon off; master_process off; worker_processes 1;" \
  "$(plain_proxy_server "$TARGET" "$UPSTREAM")"

# shellcheck source=lib/tokens.sh
. scripts/lib/tokens.sh
long_lived_manifest

grind() { # $1: case, $@: command -> "case instructions/request allocations/request requests"
  local name=$1
  shift
  local sim=()
  [ "${CACHE_SIM:-0}" = 1 ] && sim=(--cache-sim=yes --LL=524288,8,64)
  valgrind --tool=callgrind "${sim[@]}" --callgrind-out-file="$WORK/callgrind.out.$name" "$@" \
    2>"$WORK/$name.log" &
  local pid=$!
  if [ "$name" = portvakt ]; then
    for _ in $(seq 600); do
      curl -sf "http://$API/readyz" >/dev/null && break
      sleep 0.1
    done
    # A token of its own embedded issuer (the same claims, the same length).
    MINTED=-1000
    fresh_tokens 1
    auth=(-H "Authorization: Bearer $(cat "$WORK/one.txt")")
  fi
  wait_for "http://$TARGET/" "$name" "$WORK/$name.log"
  local answer
  answer=$(curl -s -w ' %{http_code}' "${auth[@]}" "http://$TARGET$PATH_UNDER_TEST")
  [ "$answer" = "ok 200" ] || { echo "$name: expected 'ok 200', got '$answer'" >&2; exit 1; }
  # Warm up (connections, pools, the token cache), then count from zero. Under valgrind, with
  # many connections, a request can wait longer than wrk's default timeout of 2 s.
  wrk -t1 --timeout 30s -c"$CONNECTIONS" -d2s "${auth[@]}" "http://$TARGET$PATH_UNDER_TEST" >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  wrk -t1 --timeout 30s -c"$CONNECTIONS" -d"$DURATION" "${auth[@]}" "http://$TARGET$PATH_UNDER_TEST" >"$WORK/wrk.txt"
  wrk_clean "$WORK/wrk.txt" "$name"
  local requests
  requests=$(awk '/requests in/ { print $1 }' "$WORK/wrk.txt")
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local dump
  dump=$(ls -t "$WORK"/callgrind.out."$name".* | head -n 1)
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    cp "$dump" "$KEEP/callgrind.out.$name"
  fi
  python3 - "$name" "$dump" "$requests" <<'PY'
import re, sys
name, dump, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
total = allocs = 0
events, summary = [], []
names = {}  # callgrind's compressed function names: "(id) name" once, "(id)" after
ALLOCATORS = ("malloc", "calloc", "realloc", "mi_malloc_aligned", "mi_zalloc_aligned", "mi_realloc_aligned")
callee = None
for line in open(dump, errors="replace"):
    if line.startswith("events:"):
        events = line.split()[1:]
    m = re.match(r"(?:summary|totals):\s*(\d+)", line)
    if m:
        total = int(m.group(1))
        summary = [int(v) for v in line.split()[1:]]
    m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
    if m:
        if m.group(2):
            names[m.group(1)] = m.group(2).strip()
        callee = names.get(m.group(1)) if line.startswith("cfn=") else None
        continue
    m = re.match(r"calls=(\d+) ", line)
    if m and callee in ALLOCATORS:
        allocs += int(m.group(1))
cache = dict(zip(events, summary))
misses = " ".join(f"{cache.get(e, 0) / requests:.0f}" for e in ("I1mr", "D1mr", "D1mw", "DLmr", "DLmw")) if "I1mr" in cache else ""
# A stripped build names no allocator function (mimalloc is linked in): "-", not 0.
named = any(n in ALLOCATORS for n in names.values())
print(name, total / requests, f"{allocs / requests:.1f}" if named else "-", requests, misses)
PY
}

misses_title=""
[ "${CACHE_SIM:-0}" = 1 ] && misses_title="  I1 misses  D1 read misses  D1 write misses  L2 read misses  L2 write misses (per request)"
echo "case       instructions/request  allocations/request  requests (wrk -t1 -c$CONNECTIONS -d$DURATION)$misses_title"
# Every case gets the same request, the token included (as in load-proxy.sh): parsing and
# writing its 800 bytes is part of any hop's work. The token comes from portvakt's own
# development issuer, started once for this.
"$PORTVAKT_BIN" issuer --listen "$ISSUER" --manifest "$WORK/nais.yaml" 2>"$WORK/issuer.log" &
ISSUER_PID=$!
wait_for "http://$ISSUER/.well-known/oauth-authorization-server" "the issuer" "$WORK/issuer.log"
fresh_tokens 1
kill "$ISSUER_PID"
wait "$ISSUER_PID" 2>/dev/null || true
auth=(-H "Authorization: Bearer $(cat "$WORK/one.txt")")

for name in $CASES; do
  case $name in
    nginx) line=$(grind nginx "$NGINX_BIN" -p "$WORK/proxy" -c "$WORK/proxy/nginx.conf") ;;
    bare) line=$(grind bare "$FLOOR_DIR/hyper_floor" "$TARGET" "$UPSTREAM") ;;
    floor) line=$(grind floor "$FLOOR_DIR/proxy_floor" "$TARGET" "$UPSTREAM") ;;
    portvakt)
      line=$(RUST_LOG=warn grind portvakt "$PORTVAKT_BIN" serve --dev --listen "$API" \
        --dev-issuer-listen "$ISSUER" --manifest "$WORK/nais.yaml" \
        --upstream "http://$UPSTREAM" --policy examples/policy.toml --proxy-listen "$TARGET")
      ;;
    *) echo "unknown case $name (nginx, bare, floor, portvakt)" >&2; exit 2 ;;
  esac
  echo "$line" | awk '{ printf "%-10s %20.0f  %19s  %8d", $1, $2, $3, $4 }
    NF > 4 { printf "  %9d  %14d  %15d  %14d  %15d", $5, $6, $7, $8, $9 } { printf "\n" }'
done
