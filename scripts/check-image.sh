#!/usr/bin/env bash
# Runs the portvakt image the way a pod runs it, without a container engine: builds it
# (scripts/build-image.sh), mounts its root filesystem (buildah mount) and starts its own
# ENTRYPOINT + CMD in a chroot as its USER (1069:1069), with the root read-only, /proc mounted,
# /etc/hosts bind-mounted as the kubelet does, and an empty environment plus the variables NAIS
# injects. The issuer is a local Maskinporten on loopback behind a TLS server whose certificate
# is for a name only /etc/hosts knows (portvakt-issuer.test), signed by a CA of its own. Checks:
#   1. with the image's CA bundle as built, the issuer's certificate is refused: not ready,
#      and the reason says so (the bundle in the image is the one rustls reads);
#   2. with a test copy of that bundle plus the test CA bind-mounted in its place: the name
#      resolves through /etc/hosts, discovery and keys are fetched over https, /readyz is 200,
#      and a token is introspected as active.
# Prints the image size, the binary size and the sidecar's peak memory.
#
# Usage: sudo [PGO=0] scripts/check-image.sh [--no-build]   (root: buildah's vfs storage, mounts, chroot)
# Needs: buildah, openssl, curl, python3, unshare and chroot (util-linux, coreutils), pgrep and ps
# (procps).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=localhost/portvakt:latest
BUILDAH=(buildah --storage-driver vfs)
TLS_PORT=27443 ISSUER_PORT=27166 API_PORT=27164 PROBE_PORT=27165
NAME=portvakt-issuer.test
WORK=$(mktemp -d)
PIDS=()
CTR=
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n $CTR ]]; then "${BUILDAH[@]}" umount "$CTR" >/dev/null 2>&1 || true; "${BUILDAH[@]}" rm "$CTR" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# --no-build: check the image built last (e.g. right after scripts/build-image.sh).
if [[ ${1:-} != --no-build ]]; then scripts/build-image.sh "${IMAGE%:*}"; fi
CTR=$("${BUILDAH[@]}" from -q "$IMAGE")
ROOT=$("${BUILDAH[@]}" mount "$CTR")
config() { "${BUILDAH[@]}" inspect --type image --format "$1" "$IMAGE"; }
USER_SPEC=$(config '{{.OCIv1.Config.User}}')
# ENTRYPOINT + CMD, as the image declares them (Go template: one word per line).
mapfile -t COMMAND < <(config '{{range .OCIv1.Config.Entrypoint}}{{println .}}{{end}}{{range .OCIv1.Config.Cmd}}{{println .}}{{end}}')
[[ $USER_SPEC == 1069:1069 ]] || { echo "image user is '$USER_SPEC', not 1069:1069" >&2; exit 1; }
[[ "${COMMAND[*]}" == "/portvakt serve" ]] || { echo "image command is '${COMMAND[*]}'" >&2; exit 1; }
for label in source version licenses; do
  value=$(config "{{index .OCIv1.Config.Labels \"org.opencontainers.image.$label\"}}")
  [[ -n $value ]] || { echo "label org.opencontainers.image.$label is missing" >&2; exit 1; }
done
BUILD=$(config '{{index .OCIv1.Config.Labels "io.portvakt.build"}}')
case $BUILD in
  profile-guided | release) ;;
  *) echo "label io.portvakt.build is '$BUILD', not profile-guided or release" >&2; exit 1 ;;
esac
echo "image: a $BUILD build, user $USER_SPEC, command ${COMMAND[*]}, files: $(cd "$ROOT" && find . -type f | sort | tr '\n' ' ')"

# A CA of our own and a certificate for $NAME.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=portvakt-check-ca \
  -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=$NAME" -keyout "$WORK/tls.key" -out "$WORK/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$NAME" >"$WORK/ext"
openssl x509 -req -days 1 -in "$WORK/tls.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial \
  -extfile "$WORK/ext" -out "$WORK/tls.crt" 2>/dev/null
cat "$ROOT/etc/ssl/certs/ca-certificates.crt" "$WORK/ca.crt" >"$WORK/bundle-with-test-ca.crt"
printf '127.0.0.1\tlocalhost\n127.0.0.1\t%s\n' "$NAME" >"$WORK/hosts"

# The local Maskinporten (the image's own binary, outside the chroot), named by its https URL.
ISSUER_URL="https://$NAME:$TLS_PORT/"
"$ROOT/portvakt" issuer --listen "127.0.0.1:$ISSUER_PORT" --issuer-url "$ISSUER_URL" \
  --manifest examples/nais.yaml >"$WORK/issuer.log" 2>&1 &
PIDS+=($!)
# The TLS front: forwards GET to the issuer.
python3 - "$WORK/tls.crt" "$WORK/tls.key" "$TLS_PORT" "$ISSUER_PORT" >"$WORK/tls.log" 2>&1 <<'PY' &
import http.server, ssl, sys, urllib.request
cert, key, port, upstream = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
class Forward(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{upstream}{self.path}", timeout=5) as r:
            body = r.read()
            self.send_response(r.status)
            self.send_header("Content-Type", r.headers.get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Forward)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
PY
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ISSUER_PORT/jwk" >/dev/null && break; sleep 0.1; done
for _ in $(seq 100); do
  curl -sf --cacert "$WORK/ca.crt" --resolve "$NAME:$TLS_PORT:127.0.0.1" "${ISSUER_URL}jwk" >/dev/null && break
  sleep 0.1
done

# run_pod BUNDLE: the image's command in a chroot, in a mount namespace of its own; prints the pid.
run_pod() {
  local bundle=$1
  unshare --mount --propagation private bash -s "$ROOT" "$WORK" "$bundle" "$USER_SPEC" \
    "$ISSUER_URL" "$API_PORT" "$PROBE_PORT" "${COMMAND[@]}" <<'INNER' &
set -euo pipefail
ROOT=$1 WORK=$2 BUNDLE=$3 USER_SPEC=$4 ISSUER_URL=$5 API_PORT=$6 PROBE_PORT=$7
shift 7
# Mount points, as the runtime creates them in the container's (not the image's) filesystem.
mkdir -p "$ROOT/proc"
touch "$ROOT/etc/hosts"
mount --bind "$ROOT" "$ROOT"
mount -t proc proc "$ROOT/proc"
mount --bind -o ro "$WORK/hosts" "$ROOT/etc/hosts"
if [[ $BUNDLE != image ]]; then
  mount --bind -o ro "$BUNDLE" "$ROOT/etc/ssl/certs/ca-certificates.crt"
fi
mount -o remount,bind,ro "$ROOT"
if touch "$ROOT/write-probe" 2>/dev/null; then echo "the root filesystem is writable" >&2; exit 1; fi
CHROOT=$(command -v chroot)
exec env -i \
  MASKINPORTEN_WELL_KNOWN_URL="${ISSUER_URL}.well-known/oauth-authorization-server" \
  MASKINPORTEN_ISSUER="$ISSUER_URL" \
  MASKINPORTEN_JWKS_URI="${ISSUER_URL}jwk" \
  BIND_ADDRESS="127.0.0.1:$API_PORT" PROBE_BIND_ADDRESS="127.0.0.1:$PROBE_PORT" \
  "$CHROOT" --userspec="$USER_SPEC" "$ROOT" "$@"
INNER
  POD=$!
}

# wait_serving: until the probe port answers (any status), at most 10 s.
wait_serving() {
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PROBE_PORT/healthz" && return 0
    sleep 0.1
  done
  echo "the sidecar did not start" >&2; cat "$WORK/pod.log" >&2; exit 1
}

stop_pod() { kill -TERM "$POD"; wait "$POD" || { echo "serve exited with $? on SIGTERM" >&2; exit 1; }; }

# 1. The image's own bundle does not know the test CA: not ready, for that reason.
run_pod image >"$WORK/pod.log" 2>&1
wait_serving
readyz=$(curl -s "http://127.0.0.1:$PROBE_PORT/readyz")
case "$readyz" in
  *'"ready":false'*certif*) echo "ok: with the image's CA bundle the test CA is refused: ...${readyz: -110}" ;;
  *) echo "expected not ready for an unknown CA, got: $readyz" >&2; cat "$WORK/pod.log" >&2; exit 1 ;;
esac
stop_pod

# 2. With the test CA added to a copy of the bundle.
run_pod "$WORK/bundle-with-test-ca.crt" >"$WORK/pod.log" 2>&1
wait_serving
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PROBE_PORT/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PROBE_PORT/readyz" >/dev/null || { echo "not ready:" >&2; curl -s "http://127.0.0.1:$PROBE_PORT/readyz" >&2; cat "$WORK/pod.log" >&2; exit 1; }
SERVE=$(pgrep -f -n -x "/portvakt serve") || { echo "no /portvakt serve process" >&2; exit 1; }
ids=$(ps -o uid=,gid=,supgid= -p "$SERVE" | tr -s ' ' | sed 's/^ //')
[[ $ids == "1069 1069"* ]] || { echo "serve runs as uid/gid '$ids', not 1069 1069" >&2; exit 1; }
echo "running as uid, gid, supplementary groups: $ids"
TOKEN=$(curl -sf -d orgno=123456789 -d scope=nav:arbeid:some.scope.read "http://127.0.0.1:$ISSUER_PORT/dev/token" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
for _ in $(seq 200); do
  answer=$(curl -sf "http://127.0.0.1:$API_PORT/api/v1/introspect" -H 'Content-Type: application/json' \
    -d "{\"identity_provider\":\"maskinporten\",\"token\":\"$TOKEN\"}")
done
case "$answer" in
  '{"active":true,'*"\"iss\":\"$ISSUER_URL\""*) echo "ok: ready over https via /etc/hosts, token introspected as active" ;;
  *) echo "unexpected answer: ${answer:0:200}" >&2; cat "$WORK/pod.log" >&2; exit 1 ;;
esac
echo "peak memory after 200 introspections: $(sed -n 's/^VmHWM:\s*//p' "/proc/$SERVE/status")"
stop_pod
echo "binary: $(stat -c %s "$ROOT/portvakt") bytes; image: $("${BUILDAH[@]}" images --noheading --format '{{.Size}}' "$IMAGE" | head -1)"
