-- A request through the proxy for every token in $TOKENS, cycled, to the path of wrk's URL
-- (scripts/load-proxy.sh). The requests are formatted once, at start, as in
-- introspect-cycle.lua: wrk.format per request would cost wrk, and so the proxy on these shared
-- cores, more CPU than the proxy spends on a cached token.
local requests = {}
for line in io.lines(os.getenv("TOKENS")) do
  requests[#requests + 1] = wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. line })
end
local i = 0
request = function()
  i = i % #requests + 1
  return requests[i]
end
