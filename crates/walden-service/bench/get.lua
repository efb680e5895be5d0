-- GET documents of KEYS keys chosen at random (all written by the preload).
local keys = tonumber(os.getenv("KEYS") or "1000")
math.randomseed(os.time() + 1)
request = function()
  return wrk.format("GET", "/docs/bench/user-" .. math.random(0, keys - 1))
end
