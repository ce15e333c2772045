#!/usr/bin/env bash
# Runs `portvakt serve` the way NAIS runs its sidecar: as an unprivileged user (nobody), with a
# read-only root filesystem, no writable directory and an empty environment; then checks that
# it becomes ready and introspects a token from its development issuer. Needs root (for a
# private mount namespace), unshare and setpriv (util-linux), ps (procps), curl and python3.
#
# Usage: sudo scripts/check-readonly-nonroot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in unshare setpriv ps curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (util-linux, procps, curl, python3)" >&2; exit 2; }
done
cargo build --release -q -p portvakt-cli --bin portvakt
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/portvakt
MANIFEST=$PWD/examples/nais.yaml
LOG=$(mktemp -p /dev/shm)
trap 'rm -f "$LOG"' EXIT
unshare --mount bash -s "$BIN" "$MANIFEST" "$LOG" <<'INNER'
set -euo pipefail
BIN=$1 MANIFEST=$2 LOG=$3
mount --bind -o ro / / 2>/dev/null || mount -o remount,bind,ro /
if touch /portvakt-write-probe 2>/dev/null; then echo "the root filesystem is still writable" >&2; exit 1; fi
cd /
setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH=/usr/bin \
  "$BIN" serve --dev --listen 127.0.0.1:27164 --dev-issuer-listen 127.0.0.1:27166 --manifest "$MANIFEST" >"$LOG" 2>&1 &
SIDECAR=$!
trap 'kill $SIDECAR 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:27164/readyz >/dev/null && break; sleep 0.1; done
curl -sf http://127.0.0.1:27164/readyz >/dev/null || { echo "not ready" >&2; cat "$LOG" >&2; exit 1; }
user=$(ps -o user= -p "$SIDECAR")
TOKEN=$(curl -sf -d orgno=123456789 -d scope=nav:arbeid:some.scope.read http://127.0.0.1:27166/dev/token |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
answer=$(curl -sf http://127.0.0.1:27164/api/v1/introspect -H 'Content-Type: application/json' \
  -d "{\"identity_provider\":\"maskinporten\",\"token\":\"$TOKEN\"}")
case "$answer" in
  '{"active":true,'*) echo "ok: ready and introspecting as user $user on a read-only root filesystem" ;;
  *) echo "unexpected answer: ${answer:0:200}" >&2; exit 1 ;;
esac
INNER
