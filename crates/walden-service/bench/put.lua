-- PUT small JSON documents to KEYS keys chosen at random (no precondition).
local keys = tonumber(os.getenv("KEYS") or "1000")
math.randomseed(os.time())
request = function()
  local k = math.random(0, keys - 1)
  local body = string.format('{"id":%d,"name":"user-%d","balance_cents":%d,"tags":["a","b"]}', k, k, math.random(0, 1000000))
  return wrk.format("PUT", "/docs/bench/user-" .. k, { ["Content-Type"] = "application/json" }, body)
end
