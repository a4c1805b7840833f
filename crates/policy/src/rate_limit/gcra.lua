-- GCRA for every global rule a request hits, in one round trip (crates/policy/src/rate_limit/global.rs).
-- KEYS[i]: the bucket of rule i. ARGV[3i-2], ARGV[3i-1], ARGV[3i]: its emission interval and
-- capacity (burst x interval) in microseconds, and 1 when the rule is in shadow mode.
-- The request is admitted when every rule not in shadow mode admits it; only then is it
-- counted, in every bucket that admitted it. Times are the Redis server's clock (TIME), so
-- replicas with skewed clocks agree; a key expires when its bucket is full again (an absent
-- key is a full bucket). Returns, per key: admitted (1/0), then remaining requests and
-- microseconds until full (admitted), or microseconds until a retry and until full (refused).
if redis.replicate_commands then
  -- Redis < 5 refuses writes after a non-deterministic command (TIME) without this.
  redis.replicate_commands()
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local admit_all = true
local tats = {}
local out = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 2])
  local capacity = tonumber(ARGV[3 * i - 1])
  local shadow = ARGV[3 * i] == '1'
  local tat = now
  local stored = redis.call('GET', KEYS[i])
  if stored then
    tat = math.max(tonumber(stored) or now, now)
  end
  local new_tat = tat + interval
  local ahead = new_tat - now
  if ahead <= capacity then
    tats[i] = new_tat
    out[3 * i - 2] = 1
    out[3 * i - 1] = math.floor((capacity - ahead) / interval)
    out[3 * i] = math.floor(ahead)
  else
    tats[i] = false
    if not shadow then
      admit_all = false
    end
    out[3 * i - 2] = 0
    out[3 * i - 1] = math.floor(ahead - capacity)
    out[3 * i] = math.floor(tat - now)
  end
end
if admit_all then
  for i = 1, #KEYS do
    if tats[i] then
      local ttl = math.max(1, math.ceil((tats[i] - now) / 1000))
      redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', ttl)
    end
  end
end
return out
