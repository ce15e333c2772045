#!/usr/bin/env bash
# Builds the portvakt container image (Containerfile) with buildah, without a Docker engine:
# a static release binary (glibc, -C target-feature=+crt-static: no shared library and no NSS
# module is loaded at run time), Debian's CA bundle and the licence files are staged into a
# build context of their own, and `buildah bud` makes a `scratch` image of them.
#
# The binary is profile-guided by default (scripts/build-pgo.sh with STATIC=1: trained with the
# load scripts' traffic against a local nginx, then optimized with that profile; 1.06x to
# 1.13x the proxy's requests and 1.15x to 1.2x the introspection API's, docs/BENCHMARKS.md).
# That build takes about twice as long and needs nginx and wrk on the building machine; PGO=0
# builds the plain static release binary instead. The image's label io.portvakt.build says
# which it holds.
#
# Usage: [PGO=0] scripts/build-image.sh [IMAGE=localhost/portvakt]   (tags IMAGE:VERSION and IMAGE:latest)
# Needs: buildah (apt-get install buildah), file, ca-certificates, root (buildah's vfs storage); with
# PGO (the default) also what scripts/build-pgo.sh needs (rustup, nginx, wrk, curl, python3).
# Prints the image's size on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${1:-localhost/portvakt}
BUILDAH=(buildah --storage-driver vfs)
command -v buildah >/dev/null || { echo "buildah is needed: apt-get install buildah" >&2; exit 2; }
command -v file >/dev/null || { echo "file is needed (to check the binary is static): apt-get install file" >&2; exit 2; }
BUNDLE=/etc/ssl/certs/ca-certificates.crt
[[ -s $BUNDLE ]] || { echo "$BUNDLE is missing: apt-get install ca-certificates" >&2; exit 2; }

HOST=$(rustc -vV | sed -n 's/^host: //p')
TARGET_DIR=${CARGO_TARGET_DIR:-target}
# An explicit --target keeps the static flags off build scripts and proc macros, and the
# static build in a directory of its own (target/$HOST/release), apart from `cargo build --release`.
if [ "${PGO:-1}" = 1 ]; then
  BUILD=profile-guided
  STATIC=1 scripts/build-pgo.sh
  BIN=target/pgo/use/$HOST/release/portvakt
else
  BUILD=release
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release -q --locked -p portvakt-cli --bin portvakt --target "$HOST"
  BIN=$TARGET_DIR/$HOST/release/portvakt
fi
if ! file "$BIN" | grep -q 'static'; then
  echo "$BIN is not statically linked: $(file -b "$BIN")" >&2; exit 1
fi

CONTEXT=$TARGET_DIR/image-context
rm -rf "$CONTEXT"
mkdir -p "$CONTEXT"
cp "$BIN" "$CONTEXT/portvakt"
cp "$BUNDLE" "$CONTEXT/ca-certificates.crt"
cp LICENSE-MIT LICENSE-APACHE "$CONTEXT/"

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
"${BUILDAH[@]}" bud -q --isolation chroot --layers=false \
  --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" --build-arg BUILD="$BUILD" \
  -f Containerfile -t "$IMAGE:$VERSION" -t "$IMAGE:latest" "$CONTEXT" >/dev/null
echo "built $IMAGE:$VERSION, a $BUILD build ($("${BUILDAH[@]}" images --noheading --format '{{.Size}}' "$IMAGE:$VERSION" | head -1))"
