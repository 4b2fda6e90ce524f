"""The Lua scripts of the Redis Streams consumer: each one a step that must not be cut in two.

A script runs atomically on the server, so two consumers never take the same due retry, a
dead-letter copy is never written without its original being acked (or the other way round),
and a replay never puts one dead letter back twice. Times are the server's (``TIME``), so
consumers on machines with different clocks agree on when a retry is due.
"""

from __future__ import annotations

# Shared by TAKE_DUE and RESCUE: claim ``ids`` for ARGV[2] with XCLAIM (min-idle 0: it bumps
# each entry's delivery count), answer {id, fields, times_delivered} per entry still there,
# and ack the ids XCLAIM no longer returns (trimmed or deleted: Redis 7 drops them from the
# PEL itself; the XACK settles them on older servers too).
_CLAIM = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function claim(stream, group, consumer, ids, out)
  if #ids == 0 then return end
  local claimed = redis.call('XCLAIM', stream, group, consumer, 0, unpack(ids))
  local seen = {}
  for _, entry in ipairs(claimed) do
    if type(entry) == 'table' and entry[2] then
      local id = entry[1]
      seen[id] = true
      local p = redis.call('XPENDING', stream, group, id, id, 1)
      local n = 1
      if p[1] then n = p[1][4] end
      out[#out + 1] = {id, entry[2], n}
    end
  end
  for _, id in ipairs(ids) do
    if not seen[id] then redis.call('XACK', stream, group, id) end
  end
end
"""

TAKE_DUE = (
    _CLAIM
    + """
-- KEYS: stream, retry set. ARGV: group, consumer, most entries to take.
-- Answers {ms until the next retry is due (-1: none waiting), {{id, fields, deliveries}...}}.
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
if #due > 0 then
  redis.call('ZREM', KEYS[2], unpack(due))
  claim(KEYS[1], ARGV[1], ARGV[2], due, out)
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local wait = -1
if first[2] then
  wait = math.max(0, tonumber(first[2]) - now)
end
return {wait, out}
"""
)

RESCUE = (
    _CLAIM
    + """
-- KEYS: stream, retry set. ARGV: group, consumer, min-idle ms, cursor, count.
-- XAUTOCLAIM with JUSTID first (it does not bump delivery counts), then a proper claim of
-- the entries that are not waiting for a retry due later: those stay pending, now owned by
-- this consumer, until TAKE_DUE takes them. Answers {next cursor, {{id, fields, n}...}}.
local now = now_ms()
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  'COUNT', ARGV[5], 'JUSTID')
local take = {}
for _, id in ipairs(r[2]) do
  local due = redis.call('ZSCORE', KEYS[2], id)
  if (not due) or tonumber(due) <= now then take[#take + 1] = id end
end
local out = {}
if #take > 0 then
  redis.call('ZREM', KEYS[2], unpack(take))
  claim(KEYS[1], ARGV[1], ARGV[2], take, out)
end
if r[3] then
  for _, id in ipairs(r[3]) do
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('ZREM', KEYS[2], id)
  end
end
return {r[1], out}
"""
)

RETRY = """
-- KEYS: retry set. ARGV: entry id, delay in ms. The entry stays pending; TAKE_DUE claims it
-- once the server's clock passes the due time.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""

DEAD_LETTER = """
-- KEYS: stream, retry set, dead-letter stream. ARGV: group, entry id, dead-letter MAXLEN,
-- then the copy's fields (name, value, ...). Copy, ack and forget the retry in one step; an
-- entry no longer pending (another consumer settled it) is not copied. Answers the copy's id,
-- or false.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
redis.call('ZREM', KEYS[2], ARGV[2])
if not p[1] then return false end
local args = {KEYS[3], 'MAXLEN', '~', ARGV[3], '*'}
for i = 4, #ARGV do args[#args + 1] = ARGV[i] end
local copy = redis.call('XADD', unpack(args))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return copy
"""

REPLAY = """
-- KEYS: dead-letter stream, origin stream. ARGV: dead letter id, then the failure field names.
-- Adds the original fields back to the origin (plain XADD: the sink's de-dup key plays no
-- part) and deletes the dead letter; answers 0 when it is gone already (replayed by another).
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return 0 end
local skip = {}
for i = 2, #ARGV do skip[ARGV[i]] = true end
local fields, args = e[1][2], {}
for i = 1, #fields, 2 do
  if not skip[fields[i]] then
    args[#args + 1] = fields[i]
    args[#args + 1] = fields[i + 1]
  end
end
if #args == 0 then args = {'data', ''} end
redis.call('XADD', KEYS[2], '*', unpack(args))
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""

FORGET_CONSUMER = """
-- KEYS: stream. ARGV: group, consumer. Removes the consumer from the group when nothing is
-- pending for it (DELCONSUMER would drop its pending entries otherwise).
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if p[1] then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""
