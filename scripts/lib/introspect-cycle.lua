-- Introspection requests for every token in $TOKENS, cycled (scripts/load-introspect.sh,
-- scripts/compare-builds.sh). The requests are formatted once, at start: wrk.format per request
-- would cost wrk more CPU (taken from the sidecar on these 2 cores) than the sidecar spends on a
-- cached token.
local requests = {}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
for line in io.lines(os.getenv("TOKENS")) do
  requests[#requests + 1] = wrk.format(nil, "/api/v1/introspect", nil,
    '{"identity_provider":"maskinporten","token":"' .. line .. '"}')
end
local i = 0
request = function()
  i = i % #requests + 1
  return requests[i]
end
