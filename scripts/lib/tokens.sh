# Sourced by the load scripts (scripts/load-introspect.sh, scripts/load-proxy.sh): the
# guide's manifest made for long-lived tokens, and the minting of a set of them from the local
# issuer's /dev/token. Needs WORK (a scratch directory) and ISSUER (host:port) set.

# The guide's manifest with atMaxAge 600 s (the default is 30 s) -> $WORK/nais.yaml: tokens
# then live the local issuer's longest lifetime, 120 s (+ 60 s leeway), so one set of tokens
# lasts several rounds and the cache holds the tokens in use, not earlier rounds' too.
long_lived_manifest() {
  sed '/- name:/{n;s/^\( *\)enabled: true$/&\n\1atMaxAge: 600/}' examples/nais.yaml >"$WORK/nais.yaml"
  grep -q "atMaxAge: 600" "$WORK/nais.yaml" || { echo "could not set atMaxAge in the manifest" >&2; exit 1; }
}

# When the set is older than 100 s (or MINTED is reset to -1000), mints $1 tokens for
# nav:arbeid:some.scope.read -> $WORK/tokens.txt, one per line, and the first in $WORK/one.txt.
MINTED=-1000
fresh_tokens() {
  ((SECONDS - MINTED > 100)) || return 0
  python3 - "$1" "http://$ISSUER/dev/token" >"$WORK/tokens.txt" <<'PY'
import json, sys, urllib.request, urllib.parse
count, url = int(sys.argv[1]), sys.argv[2]
body = urllib.parse.urlencode({"orgno": "123456789", "scope": "nav:arbeid:some.scope.read"}).encode()
for _ in range(count):
    with urllib.request.urlopen(url, data=body) as r:
        print(json.load(r)["access_token"])
PY
  head -n 1 "$WORK/tokens.txt" >"$WORK/one.txt"
  MINTED=$SECONDS
}
