-- One introspection request for the first token in $TOKENS, repeated (scripts/load-introspect.sh,
-- scripts/compare-builds.sh). Answers are checked by the sidecar's counters after each run, not
-- by a Lua callback per response: that would cost wrk, which shares the 2 cores, about as much
-- CPU as the sidecar spends on a cached token.
wrk.method = "POST"
wrk.path = "/api/v1/introspect"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"identity_provider":"maskinporten","token":"' .. io.lines(os.getenv("TOKENS"))() .. '"}'
