#!/usr/bin/env bash
# The enforcing proxy against nginx as a plain reverse proxy, side by side in one run, with wrk
# on loopback (docs/BENCHMARKS.md, "The enforcing proxy"):
#   upstream   nginx answering 200 "ok" (the upstream of both proxies), measured directly
#   nginx      nginx as a plain reverse proxy to it (validates nothing; keepalive upstream pool)
#   bare       hyper's HTTP/1.1 server and client alone, one upstream connection per client
#              connection, none of portvakt's protections (examples/hyper_floor.rs): what any
#              proxy on hyper and tokio costs, so bare / nginx is the cost of that stack and
#              floor / bare the cost of the listener's and pool's protections
#   floor      portvakt's own HTTP stack forwarding to it and checking nothing (the listener and
#              upstream pool of `serve --upstream`, examples/proxy_floor.rs): the fastest any
#              proxy on this stack can be, so portvakt / floor is the cost of its security work
#              and floor / nginx the cost of its stack (hyper, tokio, the protections)
#   portvakt   portvakt serve --upstream, a route of examples/policy.toml that needs
#              nav:arbeid:some.scope.read, one valid token repeated
#   distinct   the same, DISTINCT valid tokens cycled (more than one second of wrk's requests
#              spread over, fewer than the verified-token cache holds)
#   one-lua    the same, one token, sent by the same Lua script as `distinct` (wrk's Lua costs
#              it CPU these 2 cores share, so `distinct` is compared with this, not `portvakt`)
#   normal     a second `portvakt serve --upstream`, the same but for its threads' scheduling
#              policy: PORTVAKT_PROXY_SCHEDULING=normal (the kernel's default) where the others
#              run under SCHED_BATCH, the proxy's default (the floors too: support/workers.rs)
# first with CONNECTIONS connections, then with one (upstream-1, nginx-1, bare-1, floor-1, portvakt-1, normal-1: the
# latency one request gains by the hop). ROUNDS rounds; in each, every case runs once, one
# after the other, so the VM's drift touches them alike; medians of the rounds are compared as
# ratios. Every portvakt answer is checked: wrk saw only 2xx, and the proxy's own counter of
# forwarded requests covers every answer wrk read. Also prints each proxy's CPU time per
# request (from /proc/<pid>/stat around each run; nginx: its workers), which the VM's drift
# moves less than requests/s (and the user-space part of it), and its context switches per request (every thread's, from
# /proc/<pid>/task/*/status): with the same system calls per request as nginx and about as
# many instructions (scripts/callgrind-proxy.sh), how often a proxy sleeps and is woken is
# where the stacks differ (docs/BENCHMARKS.md).
#
# With SCALE_TO=N, every round also runs nginx, bare, floor and portvakt with N connections
# (nginx-many, bare-many, floor-many, portvakt-many), and the summary gives each one's
# throughput at N against its own at CONNECTIONS, from the same rounds: how it scales, with
# the VM's drift between two separate runs left out (docs/BENCHMARKS.md, "The pool in turn").
#
# Usage: [PORTVAKT_BIN=path] [FLOOR_DIR=dir] [SCALE_TO=N] scripts/load-proxy.sh [DURATION=10s] [ROUNDS=3] [CONNECTIONS=32] [DISTINCT=5000]
# Needs: wrk, nginx (installed with apt-get when missing), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
ROUNDS=${2:-3}
CONNECTIONS=${3:-32}
DISTINCT=${4:-5000}
SCALE_TO=${SCALE_TO:-}
[ -z "$SCALE_TO" ] || [ "$SCALE_TO" -ge 1 ] 2>/dev/null ||
  { echo "error: SCALE_TO must be a number of connections, not '$SCALE_TO'" >&2; exit 2; }
UPSTREAM=127.0.0.1:18080
NGINX=127.0.0.1:18082
FLOOR=127.0.0.1:18083
BARE=127.0.0.1:18084
PROXY=127.0.0.1:17167
API=127.0.0.1:17164
ISSUER=127.0.0.1:17166
NORMAL_PROXY=127.0.0.1:17177
NORMAL_API=127.0.0.1:17174
NORMAL_ISSUER=127.0.0.1:17176
PATH_UNDER_TEST=/api/v1/items
# shellcheck source=lib/peers.sh
. scripts/lib/peers.sh
need wrk nginx
# PORTVAKT_BIN measures another build of portvakt (e.g. scripts/build-pgo.sh's) in both of its
# cases, FLOOR_DIR other builds of the floors (FLOORS=1 scripts/build-pgo.sh's:
# target/pgo/floors/release/examples); by default both are the release profile's, built here.
# Only what they do not replace is built.
build_unless_given -- proxy_floor hyper_floor
BIN=${PORTVAKT_BIN:-target/release/portvakt}
FLOOR_DIR=${FLOOR_DIR:-target/release/examples}
executables "$BIN" "$FLOOR_DIR/proxy_floor" "$FLOOR_DIR/hyper_floor"
# Development mode needs every MASKINPORTEN_* variable unset.
for v in $(compgen -e | grep "^MASKINPORTEN_" || true); do unset "$v"; done

# Two nginx processes: the upstream, and the plain reverse proxy to it (apart, so that each
# one's CPU is its own), each with one worker per core (as portvakt has one proxy thread per
# core).
nginx_conf upstream "worker_processes auto;" "$(upstream_server "$UPSTREAM")"
start_nginx upstream
nginx_conf proxy "worker_processes auto;" "$(plain_proxy_server "$NGINX" "$UPSTREAM")"
start_nginx proxy
wait_for "http://$UPSTREAM/" "nginx (the upstream)" "$WORK/upstream/error.log"
wait_for "http://$NGINX/" "nginx (the plain proxy)" "$WORK/proxy/error.log"
"$FLOOR_DIR/proxy_floor" "$FLOOR" "$UPSTREAM" 2>"$WORK/floor.log" &
FLOOR_PID=$!
wait_for "http://$FLOOR/" "the HTTP floor (examples/proxy_floor.rs)" "$WORK/floor.log"
"$FLOOR_DIR/hyper_floor" "$BARE" "$UPSTREAM" 2>"$WORK/bare.log" &
BARE_PID=$!
wait_for "http://$BARE/" "hyper's floor (examples/hyper_floor.rs)" "$WORK/bare.log"

# shellcheck source=lib/tokens.sh
. scripts/lib/tokens.sh
long_lived_manifest
serve() { # $1: log name, $2: API, $3: issuer, $4: proxy, $5: scheduling policy -> pid in $!
  PORTVAKT_PROXY_SCHEDULING=$5 RUST_LOG=warn "$BIN" serve --dev --listen "$2" --dev-issuer-listen "$3" \
    --manifest "$WORK/nais.yaml" \
    --upstream "http://$UPSTREAM" --policy examples/policy.toml --proxy-listen "$4" \
    2>"$WORK/$1.log" &
}
serve serve "$API" "$ISSUER" "$PROXY" batch
PORTVAKT=$!
serve serve-normal "$NORMAL_API" "$NORMAL_ISSUER" "$NORMAL_PROXY" normal
NORMAL=$!
wait_ready "$API" "portvakt serve" "$WORK/serve.log"
wait_ready "$NORMAL_API" "portvakt serve (normal scheduling)" "$WORK/serve-normal.log"

NORMAL_MINTED=-1000
tokens() { # a fresh set of DISTINCT tokens when the last is older than 100 s; TOKEN its first
  fresh_tokens "$DISTINCT"
  TOKEN=$(cat "$WORK/one.txt")
  # and one for the second proxy, from its own issuer
  if ((SECONDS - NORMAL_MINTED > 100)); then
    NORMAL_TOKEN=$("$BIN" token --scope nav:arbeid:some.scope.read --orgno 123456789 \
      --issuer "http://$NORMAL_ISSUER")
    NORMAL_MINTED=$SECONDS
  fi
}
tokens

# The proxy must refuse without a token and forward with one.
status=$(curl -s -o /dev/null -w '%{http_code}' "http://$PROXY$PATH_UNDER_TEST")
[ "$status" = 401 ] || { echo "expected 401 without a token through the proxy, got $status" >&2; exit 1; }
answer=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $TOKEN" "http://$PROXY$PATH_UNDER_TEST")
[ "$answer" = "ok 200" ] || { echo "expected 'ok 200' through the proxy, got '$answer'" >&2; exit 1; }
answer=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $NORMAL_TOKEN" "http://$NORMAL_PROXY$PATH_UNDER_TEST")
[ "$answer" = "ok 200" ] || { echo "expected 'ok 200' through the second proxy, got '$answer'" >&2; exit 1; }
answer=$(curl -s -w ' %{http_code}' "http://$FLOOR$PATH_UNDER_TEST")
[ "$answer" = "ok 200" ] || { echo "expected 'ok 200' through the floor, got '$answer'" >&2; exit 1; }

forwarded() { # $1: the proxy's API -> its count of forwarded requests
  curl -sf "http://$1/metrics" |
    awk '/^portvakt_requests_total\{endpoint="proxy",outcome="forwarded"\}/ { n += $NF } END { print n + 0 }'
}

ticks() { # $@: pids -> their utime + stime, and utime alone, in clock ticks
  local total=0 user=0 pid
  for pid in "$@"; do
    total=$((total + $(cpu_ticks "$pid")))
    user=$((user + $(awk '{ print $14 }' "/proc/$pid/stat")))
  done
  echo "$total $user"
}

switches() { # $@: pids -> context switches of all their threads, voluntary and not
  local total=0 pid n
  for pid in "$@"; do
    for n in $(cat /proc/"$pid"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { print $2 }'); do
      total=$((total + n))
    done
  done
  echo "$total"
}

run() { # $1: case, $2: base URL, $3: connections, $4: "lua" tokens file or "", $5...: pids to time
  local name=$1 url=$2 connections=$3 lua=$4
  shift 4
  local threads=2
  [ "$connections" -ge 2 ] || threads=1
  local args=(-t"$threads" -c"$connections" -d"$DURATION" --latency)
  local api=""
  [ "$url" = "http://$PROXY" ] && api=$API
  [ "$url" = "http://$NORMAL_PROXY" ] && api=$NORMAL_API
  if [ -n "$lua" ]; then
    args+=(-s scripts/lib/proxy-cycle.lua)
  elif [ "$api" = "$NORMAL_API" ]; then
    args+=(-H "Authorization: Bearer $NORMAL_TOKEN")
  else
    args+=(-H "Authorization: Bearer $TOKEN")
  fi
  local before_fwd=0 before_cpu after_cpu before_user after_user before_cs after_cs
  [ -z "$api" ] || before_fwd=$(forwarded "$api")
  read -r before_cpu before_user < <(ticks "$@")
  before_cs=$(switches "$@")
  TOKENS=$lua wrk "${args[@]}" "$url$PATH_UNDER_TEST" >"$WORK/wrk.txt"
  read -r after_cpu after_user < <(ticks "$@")
  after_cs=$(switches "$@")
  wrk_clean "$WORK/wrk.txt" "$name"
  local completed
  completed=$(awk '/requests in/ { print $1 }' "$WORK/wrk.txt")
  if [ -n "$api" ]; then
    local fwd=$(($(forwarded "$api") - before_fwd))
    if [ "$fwd" -lt "$completed" ]; then
      echo "FAILED: $name: wrk read $completed answers, the proxy forwarded $fwd" >&2
      exit 1
    fi
  fi
  python3 - "$name" "$WORK/wrk.txt" "$((after_cpu - before_cpu))" "$(getconf CLK_TCK)" "$completed" "$((after_cs - before_cs))" "$((after_user - before_user))" >>"$WORK/results.txt" <<'PY'
import re, sys
name, path, ticks, hz, completed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
switches, user_ticks = int(sys.argv[6]), int(sys.argv[7])
text = open(path).read()
def micros(t):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", t).groups()
    return float(value) * {"us": 1, "ms": 1000, "s": 1000000}[unit]
p50 = micros(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = micros(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
cpu = ticks * 1e6 / hz / completed if completed else 0.0
cs = switches / completed if completed else 0.0
user = user_ticks * 1e6 / hz / completed if completed else 0.0
print(name, rps, p50, p99, cpu, cs, user)
PY
  tail -n 1 "$WORK/results.txt" | awk '{ printf "%-11s %9.0f req/s  median %6.0f us  p99 %6.0f us  CPU %5.1f us/request (user %4.1f)  %4.2f switches/request\n", $1, $2, $3, $4, $5, $7, $6 }'
}

# Warm up every path (connections, pools, caches).
for url in "http://$UPSTREAM" "http://$NGINX" "http://$BARE" "http://$FLOOR" "http://$PROXY"; do
  wrk -t2 -c"$CONNECTIONS" -d2s -H "Authorization: Bearer $TOKEN" "$url$PATH_UNDER_TEST" >/dev/null
done
wrk -t2 -c"$CONNECTIONS" -d2s -H "Authorization: Bearer $NORMAL_TOKEN" "http://$NORMAL_PROXY$PATH_UNDER_TEST" >/dev/null
if [ -n "$SCALE_TO" ]; then
  for url in "http://$NGINX" "http://$BARE" "http://$FLOOR" "http://$PROXY"; do
    wrk -t2 -c"$SCALE_TO" -d2s -H "Authorization: Bearer $TOKEN" "$url$PATH_UNDER_TEST" >/dev/null
  done
fi
for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS (wrk -c$CONNECTIONS and -c1${SCALE_TO:+ and -c$SCALE_TO}, $DURATION each)"
  # Before every case that sends tokens: a round takes longer than a token lives (120 s, and
  # 60 s of leeway), and a set is minted again once it is 100 s old.
  run upstream "http://$UPSTREAM" "$CONNECTIONS" "" $(workers upstream)
  run nginx "http://$NGINX" "$CONNECTIONS" "" $(workers proxy)
  run bare "http://$BARE" "$CONNECTIONS" "" "$BARE_PID"
  run floor "http://$FLOOR" "$CONNECTIONS" "" "$FLOOR_PID"
  tokens
  run portvakt "http://$PROXY" "$CONNECTIONS" "" "$PORTVAKT"
  tokens
  run one-lua "http://$PROXY" "$CONNECTIONS" "$WORK/one.txt" "$PORTVAKT"
  tokens
  run distinct "http://$PROXY" "$CONNECTIONS" "$WORK/tokens.txt" "$PORTVAKT"
  tokens
  run normal "http://$NORMAL_PROXY" "$CONNECTIONS" "" "$NORMAL"
  run upstream-1 "http://$UPSTREAM" 1 "" $(workers upstream)
  run nginx-1 "http://$NGINX" 1 "" $(workers proxy)
  run bare-1 "http://$BARE" 1 "" "$BARE_PID"
  run floor-1 "http://$FLOOR" 1 "" "$FLOOR_PID"
  tokens
  run portvakt-1 "http://$PROXY" 1 "" "$PORTVAKT"
  tokens
  run normal-1 "http://$NORMAL_PROXY" 1 "" "$NORMAL"
  if [ -n "$SCALE_TO" ]; then
    run nginx-many "http://$NGINX" "$SCALE_TO" "" $(workers proxy)
    run bare-many "http://$BARE" "$SCALE_TO" "" "$BARE_PID"
    run floor-many "http://$FLOOR" "$SCALE_TO" "" "$FLOOR_PID"
    tokens
    run portvakt-many "http://$PROXY" "$SCALE_TO" "" "$PORTVAKT"
  fi
done
echo "portvakt's verified-token cache after the rounds:"
curl -sf "http://$API/metrics" | grep -E '^portvakt_token_cache_(hits|misses|entries)' | sed 's/^/  /'

echo "== medians of $ROUNDS rounds"
python3 - "$WORK/results.txt" "$CONNECTIONS" "$SCALE_TO" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, *values = line.split()
    rows[name].append([float(v) for v in values])
c = sys.argv[2]
def med(name, i):
    return statistics.median(r[i] for r in rows[name])
print(f"| | req/s at {c} connections | median at {c} | p99 at {c} | median at 1 connection | p99 at 1 | CPU per request | of which user | context switches per request |")
print("|---|---|---|---|---|---|---|---|---|")
for name, title in (("upstream", "nginx upstream alone"), ("nginx", "nginx, plain reverse proxy"),
                    ("bare", "hyper alone (hyper_floor, no protections)"),
                    ("floor", "portvakt's HTTP stack alone (proxy_floor, checks nothing)"),
                    ("portvakt", "portvakt serve --upstream (one token)"),
                    ("normal", "the same, PORTVAKT_PROXY_SCHEDULING=normal")):
    print(f"| {title} | {med(name, 0):,.0f} | {med(name, 1):,.0f} us | {med(name, 2):,.0f} us | "
          f"{med(name + '-1', 1):,.0f} us | {med(name + '-1', 2):,.0f} us | {med(name, 3):.1f} us | {med(name, 5):.1f} us | {med(name, 4):.2f} |")
print(f"| portvakt, {c} conn., one token by Lua | {med('one-lua', 0):,.0f} | {med('one-lua', 1):,.0f} us | {med('one-lua', 2):,.0f} us | | | {med('one-lua', 3):.1f} us | {med('one-lua', 5):.1f} us | {med('one-lua', 4):.2f} |")
print(f"| portvakt, {c} conn., distinct tokens by Lua | {med('distinct', 0):,.0f} | {med('distinct', 1):,.0f} us | {med('distinct', 2):,.0f} us | | | {med('distinct', 3):.1f} us | {med('distinct', 5):.1f} us | {med('distinct', 4):.2f} |")
print()
ratio = med("portvakt", 0) / med("nginx", 0)
added_p = med("portvakt-1", 1) - med("upstream-1", 1)
added_n = med("nginx-1", 1) - med("upstream-1", 1)
distinct = med("distinct", 0) / med("one-lua", 0)
print(f"throughput at {c} connections, portvakt / nginx: {ratio:.2f} (goal >= 0.90)")
print(f"  of which hyper and tokio, bare / nginx: {med('bare', 0) / med('nginx', 0):.2f}; "
      f"the protections, floor / bare: {med('floor', 0) / med('bare', 0):.2f}; "
      f"the security work, portvakt / floor: {med('portvakt', 0) / med('floor', 0):.2f}")
print(f"added median latency at 1 connection: portvakt {added_p:.0f} us, nginx {added_n:.0f} us (goal: portvakt <= nginx); "
      f"the floor {med('floor-1', 1) - med('upstream-1', 1):.0f} us, hyper alone {med('bare-1', 1) - med('upstream-1', 1):.0f} us")
print(f"p99 at {c} connections: portvakt {med('portvakt', 2):,.0f} us, nginx {med('nginx', 2):,.0f} us (goal: portvakt <= nginx)")
print(f"distinct tokens / one token (both by Lua): {distinct:.2f} (goal >= 0.90)")
print(f"SCHED_BATCH (the default) against the normal policy, portvakt / normal: {med('portvakt', 0) / med('normal', 0):.2f}x the requests, "
      f"p99 {med('portvakt', 2):,.0f} us against {med('normal', 2):,.0f} us; at 1 connection median {med('portvakt-1', 1):.0f} us against {med('normal-1', 1):.0f} us")
per_round = [p[0] / n[0] for p, n in zip(rows["portvakt"], rows["nginx"])]
print("throughput ratio per round: " + ", ".join(f"{r:.2f}" for r in per_round))
per_round = [f[0] / n[0] for f, n in zip(rows["floor"], rows["nginx"])]
print("floor / nginx per round: " + ", ".join(f"{r:.2f}" for r in per_round))
per_round = [b[0] / n[0] for b, n in zip(rows["bare"], rows["nginx"])]
print("bare / nginx per round: " + ", ".join(f"{r:.2f}" for r in per_round))
per_round = [p[0] / n[0] for p, n in zip(rows["portvakt"], rows["normal"])]
print("portvakt / normal per round: " + ", ".join(f"{r:.2f}" for r in per_round))
many = sys.argv[3]
if many:
    print(f"throughput at {many} connections against its own at {c}, in the same rounds (goal for portvakt >= 0.80):")
    for name in ("portvakt", "floor", "bare", "nginx"):
        per_round = [m[0] / f[0] for m, f in zip(rows[name + "-many"], rows[name])]
        print(f"  {name}: {med(name + '-many', 0) / med(name, 0):.2f} ({med(name + '-many', 0):,.0f} against {med(name, 0):,.0f} req/s; "
              f"per round " + ", ".join(f"{r:.2f}" for r in per_round) + f"); p99 at {many} {med(name + '-many', 2):,.0f} us")
    print(f"  portvakt / nginx at {many} connections: {med('portvakt-many', 0) / med('nginx-many', 0):.2f}")
PY
