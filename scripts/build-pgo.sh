#!/usr/bin/env bash
# A profile-guided build of `portvakt` (docs/BENCHMARKS.md, "Profile-guided optimization"):
#   1. an instrumented release build (target/pgo/gen), which records which code runs how often;
#   2. a training run of it: `serve --upstream` in development mode in front of a local nginx
#      upstream, driven by wrk as the load scripts drive it (the proxy with one token and with
#      500 tokens cycled, the introspection API the same, then one connection), then stopped
#      with SIGTERM so that it writes its profile;
#   3. the profile merged with llvm-profdata of rustc's own LLVM (rustup's `llvm-tools`);
#   4. the release build again, optimized with that profile: target/pgo/use/release/portvakt.
# The compiler then lays out the code the training ran together and moves what it never ran
# (error paths, start-up) out of the way, and inlines by measured heat: on this project's
# 2-core machine a fifth fewer instructions and half the instruction-cache misses per proxied
# request, 1.06x to 1.13x the proxy's throughput and 1.15x to 1.2x the introspection API's.
#
# The profile describes this source at this commit; build it again after a change (a stale
# profile only loses the gain: rustc ignores what no longer matches).
#
# STATIC=1 builds it as the image's binary is built (scripts/build-image.sh): static
# (-C target-feature=+crt-static) for the host's target triple, with --target so that the flags
# stay off build scripts and proc macros; the instrumented build is static too, so that the
# profile is of the code it optimizes. The binary is then target/pgo/use/<host>/release/portvakt.
#
# FLOORS=1 also builds the load scripts' floors (examples/http_floor.rs, proxy_floor.rs,
# hyper_floor.rs) profile-guided, each trained with the traffic it stands beside in the load
# scripts, into target/pgo/floors/release/examples/, so that a profile-guided portvakt is
# measured against floors built the same way (FLOOR_DIR= in scripts/load-proxy.sh and
# scripts/load-introspect.sh). The three share one profile (a build takes one), apart from
# portvakt's, so that the binary is the same with or without FLOORS.
#
# Usage: [STATIC=1] [FLOORS=1] scripts/build-pgo.sh     (prints the binary's path on the last line)
# Needs: rustup (the llvm-tools component is added when missing), wrk and nginx (installed with
# apt-get when missing), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
UPSTREAM=127.0.0.1:18590
API=127.0.0.1:18591
ISSUER=127.0.0.1:18592
PROXY=127.0.0.1:18593
PROXY_FLOOR=127.0.0.1:18594
HYPER_FLOOR=127.0.0.1:18595
HTTP_FLOOR=127.0.0.1:18596
# shellcheck source=lib/peers.sh
. scripts/lib/peers.sh
need wrk nginx

host=$(rustc -vV | sed -n 's/^host: //p')
PROFDATA=$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata
if [ ! -x "$PROFDATA" ]; then
  rustup component add llvm-tools
fi
[ -x "$PROFDATA" ] || { echo "no llvm-profdata at $PROFDATA (rustup component add llvm-tools)" >&2; exit 1; }

TARGET_ARGS=()
STATIC_FLAGS=""
OUT=release
if [ "${STATIC:-0}" = 1 ]; then
  TARGET_ARGS=(--target "$host")
  STATIC_FLAGS=" -C target-feature=+crt-static"
  OUT=$host/release
fi

FLOOR_EXAMPLES=()
if [ "${FLOORS:-0}" = 1 ]; then
  FLOOR_EXAMPLES=(--example http_floor --example proxy_floor --example hyper_floor)
fi

RAW=$ROOT/target/pgo/raw
FLOOR_RAW=$ROOT/target/pgo/raw-floors
echo "== 1. the instrumented build (target/pgo/gen)"
RUSTFLAGS="-Cprofile-generate=$RAW$STATIC_FLAGS" cargo build --release -q --locked \
  --target-dir target/pgo/gen "${TARGET_ARGS[@]}" -p portvakt-cli --bin portvakt
if [ "${FLOORS:-0}" = 1 ]; then
  # Apart from the binary: examples bring the dev-dependencies' features, which change the
  # dependencies' symbol names, and a profile applies only to functions of the same name
  # (measured: built together, the binary kept 0.94 of the release build's instructions per
  # proxied request instead of 0.80).
  RUSTFLAGS="-Cprofile-generate=$RAW$STATIC_FLAGS" cargo build --release -q --locked \
    --target-dir target/pgo/gen "${TARGET_ARGS[@]}" -p portvakt-cli "${FLOOR_EXAMPLES[@]}"
fi
# Build scripts run instrumented too; only the training run's profile counts.
rm -rf "$RAW" "$FLOOR_RAW"

echo "== 2. the training run"
for v in $(compgen -e | grep "^MASKINPORTEN_" || true); do unset "$v"; done
nginx_conf upstream "worker_processes auto;" "$(upstream_server "$UPSTREAM")"
"$NGINX_BIN" -p "$WORK/upstream" -c "$WORK/upstream/nginx.conf"
wait_for "http://$UPSTREAM/" "nginx (the upstream)" "$WORK/upstream/error.log"
# shellcheck source=lib/tokens.sh
. scripts/lib/tokens.sh
long_lived_manifest
# --dev: development mode is what is trained, also where KUBERNETES_SERVICE_HOST is set (a CI
# runner in a pod), where serve would otherwise refuse it.
RUST_LOG=warn "target/pgo/gen/$OUT/portvakt" serve --dev --listen "$API" --dev-issuer-listen "$ISSUER" \
  --manifest "$WORK/nais.yaml" --upstream "http://$UPSTREAM" --policy examples/policy.toml \
  --proxy-listen "$PROXY" 2>"$WORK/serve.log" &
SERVE=$!
wait_ready "$API" "portvakt serve (instrumented)" "$WORK/serve.log"
fresh_tokens 500
TOKEN=$(cat "$WORK/one.txt")
train() { # $1: what, then wrk's arguments
  local what=$1
  shift
  wrk "$@" >"$WORK/wrk.txt"
  wrk_clean "$WORK/wrk.txt" "the training run ($what)"
  printf '  %-40s %s req/s\n' "$what" "$(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.txt")"
}
train "proxy, one token" -t2 -c32 -d8s -H "Authorization: Bearer $TOKEN" "http://$PROXY/api/v1/items"
TOKENS=$WORK/tokens.txt train "proxy, 500 tokens" -t2 -c32 -d4s -s scripts/lib/proxy-cycle.lua \
  "http://$PROXY/api/v1/items"
TOKENS=$WORK/one.txt train "introspection, one token" -t2 -c32 -d4s \
  -s scripts/lib/introspect-one.lua "http://$API/api/v1/introspect"
TOKENS=$WORK/tokens.txt train "introspection, 500 tokens" -t2 -c32 -d3s \
  -s scripts/lib/introspect-cycle.lua "http://$API/api/v1/introspect"
train "proxy, one connection" -t1 -c1 -d2s -H "Authorization: Bearer $TOKEN" \
  "http://$PROXY/api/v1/items"
kill -TERM "$SERVE"
wait "$SERVE" || true
compgen -G "$RAW/*.profraw" >/dev/null || { echo "the training run wrote no profile in $RAW" >&2; exit 1; }

if [ "${FLOORS:-0}" = 1 ]; then
  echo "== 2b. the floors' training run"
  # Their profiles apart from portvakt's (LLVM_PROFILE_FILE overrides the build's directory).
  floor() { # $1: example, then its arguments
    local name=$1
    shift
    LLVM_PROFILE_FILE="$FLOOR_RAW/$name-%p.profraw" "target/pgo/gen/$OUT/examples/$name" "$@" \
      2>"$WORK/$name.log" &
  }
  floor proxy_floor "$PROXY_FLOOR" "$UPSTREAM"
  FLOOR_PIDS=($!)
  floor hyper_floor "$HYPER_FLOOR" "$UPSTREAM"
  FLOOR_PIDS+=($!)
  floor http_floor "$HTTP_FLOOR"
  FLOOR_PIDS+=($!)
  wait_for "http://$PROXY_FLOOR/" "proxy_floor (instrumented)" "$WORK/proxy_floor.log"
  wait_for "http://$HYPER_FLOOR/" "hyper_floor (instrumented)" "$WORK/hyper_floor.log"
  wait_for "http://$HTTP_FLOOR/" "http_floor (instrumented)" "$WORK/http_floor.log"
  for name in proxy_floor hyper_floor; do
    at=$PROXY_FLOOR
    [ "$name" = hyper_floor ] && at=$HYPER_FLOOR
    train "$name, one token" -t2 -c32 -d6s -H "Authorization: Bearer $TOKEN" \
      "http://$at/api/v1/items"
    train "$name, one connection" -t1 -c1 -d2s -H "Authorization: Bearer $TOKEN" \
      "http://$at/api/v1/items"
  done
  TOKENS=$WORK/one.txt train "http_floor, one token" -t2 -c32 -d6s \
    -s scripts/lib/introspect-one.lua "http://$HTTP_FLOOR/api/v1/introspect"
  kill -TERM "${FLOOR_PIDS[@]}"
  for pid in "${FLOOR_PIDS[@]}"; do wait "$pid" || true; done
  for name in proxy_floor hyper_floor http_floor; do
    compgen -G "$FLOOR_RAW/$name-*.profraw" >/dev/null \
      || { echo "$name wrote no profile in $FLOOR_RAW" >&2; exit 1; }
  done
fi

echo "== 3. the profile"
"$PROFDATA" merge -o target/pgo/portvakt.profdata "$RAW"/*.profraw
if [ "${FLOORS:-0}" = 1 ]; then
  "$PROFDATA" merge -o target/pgo/floors.profdata "$FLOOR_RAW"/*.profraw
fi

echo "== 4. the optimized build (target/pgo/use)"
# From scratch: cargo does not see that the profile changed, and every crate takes it.
rm -rf target/pgo/use
RUSTFLAGS="-Cprofile-use=$ROOT/target/pgo/portvakt.profdata$STATIC_FLAGS" cargo build --release -q \
  --locked --target-dir target/pgo/use "${TARGET_ARGS[@]}" -p portvakt-cli --bin portvakt
if [ "${FLOORS:-0}" = 1 ]; then
  echo "== 4b. the floors' optimized build (target/pgo/floors)"
  rm -rf target/pgo/floors
  RUSTFLAGS="-Cprofile-use=$ROOT/target/pgo/floors.profdata$STATIC_FLAGS" cargo build --release \
    -q --locked --target-dir target/pgo/floors "${TARGET_ARGS[@]}" -p portvakt-cli \
    "${FLOOR_EXAMPLES[@]}"
  echo "built the floors in target/pgo/floors/$OUT/examples"
fi
echo "built target/pgo/use/$OUT/portvakt"
