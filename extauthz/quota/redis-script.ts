/**
 * The Lua script that charges a request's quotas atomically on the Redis server: every counter is
 * evaluated first and written only if all admit the request (all or none). Time comes from the
 * Redis server (TIME), so replicas with skewed clocks still share one timeline. The arithmetic is
 * the same as algorithms.ts; the integration test holds the two to the same totals.
 *
 * KEYS: one per quota, all with the same hash tag (one Cluster slot, so one script may touch them).
 * ARGV: per quota five values: algorithm (1 bucket, 2 fixed, 3 sliding), limit, periodMs, capacity, cost.
 * Returns per quota five integers: allowed (0/1), remaining, resetMs, retryAfterMs, never (0/1).
 * PEEK_SCRIPT is the same evaluation without the writes (shadow mode's dry run): the two share
 * every line but the commit, so a peek answers exactly what a charge would.
 */
export const ALGORITHM_CODE = { 'token-bucket': 1, 'fixed-window': 2, 'sliding-window': 3 } as const;

const EVALUATE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local out, writes = {}, {}
local all = true

local function bucket(s, limit, period, cap, cost)
  local rate = limit / period
  local tokens = cap
  if s[1] then tokens = math.min(cap, tonumber(s[1]) + math.max(0, now - tonumber(s[2])) * rate) end
  local function toFull(level) return math.ceil((cap - level) / rate) end
  if cost > cap then return {0, math.floor(tokens), toFull(tokens), period, 1}, nil end
  if cost <= tokens then
    local left = tokens - cost
    return {1, math.floor(left), toFull(left), 0, 0}, {left, now, 0, math.ceil(cap / rate) + 1000}
  end
  return {0, math.floor(tokens), toFull(tokens), math.ceil((cost - tokens) / rate), 0}, nil
end

local function fixed(s, limit, period, cost)
  local start = now - (now % period)
  local used = 0
  if s[1] and tonumber(s[2]) == start then used = tonumber(s[1]) end
  local reset = start + period - now
  if cost > limit then return {0, limit - used, reset, period, 1}, nil end
  if used + cost <= limit then return {1, limit - used - cost, reset, 0, 0}, {used + cost, start, 0, period + 1000} end
  return {0, limit - used, reset, reset, 0}, nil
end

local function slidingRetry(cur, prev, limit, period, cost, elapsed)
  local room = limit - cost - cur
  if room >= 0 and prev > 0 then return math.max(1, math.ceil(period * (1 - room / prev) - elapsed)) end
  local intoNext = 0
  if cur > 0 then intoNext = math.ceil(period * (1 - (limit - cost) / cur)) end
  return math.max(1, period - elapsed + math.max(0, intoNext))
end

local function sliding(s, limit, period, cost)
  local start = now - (now % period)
  local elapsed = now - start
  local cur, prev = 0, 0
  if s[1] then
    local st = tonumber(s[2])
    if st == start then cur, prev = tonumber(s[1]), tonumber(s[3])
    elseif st == start - period then prev = tonumber(s[1]) end
  end
  local used = prev * (1 - elapsed / period) + cur
  local reset = period - elapsed
  if cur > 0 then reset = 2 * period - elapsed end
  if cost > limit then return {0, math.max(0, math.floor(limit - used)), reset, period, 1}, nil end
  if used + cost <= limit then return {1, math.floor(limit - used - cost), reset, 0, 0}, {cur + cost, start, prev, 2 * period + 1000} end
  return {0, math.max(0, math.floor(limit - used)), reset, slidingRetry(cur, prev, limit, period, cost, elapsed), 0}, nil
end

for i = 1, n do
  local b = (i - 1) * 5
  local algo, limit, period = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local cap, cost = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
  local s = redis.call('HMGET', KEYS[i], 'a', 't', 'p')
  local v, w
  if algo == 1 then v, w = bucket(s, limit, period, cap, cost)
  elseif algo == 2 then v, w = fixed(s, limit, period, cost)
  else v, w = sliding(s, limit, period, cost) end
  if v[1] == 0 then all = false end
  writes[i] = w
  for j = 1, 5 do out[#out + 1] = v[j] end
end
`;

const COMMIT = `
if all then
  for i = 1, n do
    local w = writes[i]
    redis.call('HSET', KEYS[i], 'a', tostring(w[1]), 't', tostring(w[2]), 'p', tostring(w[3]))
    redis.call('PEXPIRE', KEYS[i], w[4])
  end
end
`;

export const CHARGE_SCRIPT = `${EVALUATE}${COMMIT}return out
`;

export const PEEK_SCRIPT = `${EVALUATE}return out
`;
