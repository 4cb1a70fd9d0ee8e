/**
 * The store's transitions as Lua scripts: each runs atomically in Redis, so replicas racing on
 * one item or one job cannot both win, and the counters move with the items they count.
 *
 * Every script gets ARGV = prefix, job id, now, retentionCount, retentionMs, then its own
 * arguments, and builds its keys from the prefix (the names in keys.ts). It touches keys it
 * did not declare (the counters, other jobs dropped by retention), so the store needs one Redis
 * server, not a Cluster.
 *
 * An item is compact JSON (codec.ts) whose `s` is absent while pending and `b` holds the bytes
 * it counts in `pendingBytes` (computed by `itemBytes` when it was added).
 */
import type { Redis } from 'ioredis'

// Raw: the Lua keeps its backslashes.
const PRELUDE = String.raw`
local prefix, id, nowArg = ARGV[1], ARGV[2], ARGV[3]
local now, keep, keepMs = tonumber(nowArg), tonumber(ARGV[4]), tonumber(ARGV[5])
local jobKey = prefix .. ':job:' .. id
local itemsKey = jobKey .. ':items'
local counters = prefix .. ':counters'
local finishedSet = prefix .. ':finished'

-- As jobStatus (model.ts): every item settled and no album pending is complete.
local function status()
  local fields = redis.call('HMGET', jobKey, 'started', 'pending', 'album')
  local albumPending = fields[3] and cjson.decode(fields[3]).state == 'pending'
  if tonumber(fields[2]) == 0 and not albumPending then return 'complete' end
  if fields[1] == '1' then return 'in-progress' end
  return 'pending'
end

local function forget(ids)
  for _, old in ipairs(ids) do
    local key = prefix .. ':job:' .. old
    redis.call('DEL', key, key .. ':items')
    redis.call('ZREM', finishedSet, old)
  end
end

-- A complete job expires after the retention age; past the retention count the oldest
-- finished go now (PEXPIRE runs on Redis's clock, the sweep on the store's).
local function finish()
  redis.call('HSET', jobKey, 'finished', nowArg)
  redis.call('PEXPIRE', jobKey, keepMs)
  redis.call('PEXPIRE', itemsKey, keepMs)
  redis.call('ZADD', finishedSet, nowArg, id)
  forget(redis.call('ZRANGEBYSCORE', finishedSet, '-inf', now - keepMs))
  local excess = redis.call('ZCARD', finishedSet) - keep
  if excess > 0 then forget(redis.call('ZRANGE', finishedSet, 0, excess - 1)) end
end

-- Moves the job between the status counters (complete ones are counted by the finished set).
local function moved(before)
  local after = status()
  if after ~= before then
    if before ~= 'complete' then redis.call('HINCRBY', counters, before, -1) end
    if after == 'complete' then finish() else redis.call('HINCRBY', counters, after, 1) end
  end
  return after
end

local function bump(by)
  local version = redis.call('HINCRBY', jobKey, 'version', by)
  redis.call('PUBLISH', prefix .. ':changed', id .. ' ' .. version)
end

local function snapshot()
  return { redis.call('HGETALL', jobKey), redis.call('LRANGE', itemsKey, 0, -1) }
end

-- What the caller emits: 1 nothing, 2 itemsSettled (album pending), 3 complete; with the job.
-- An album owed is recorded (by the time it became owed) until it settles, so that one whose
-- replica stopped before making it is taken up by another (reclaim).
local function settled(pending, after)
  if pending > 0 then return { 1 } end
  if after == 'complete' then return { 3, snapshot() } end
  redis.call('ZADD', prefix .. ':owed', nowArg, id)
  return { 2, snapshot() }
end

-- Each link once, in upload order: globally and in the owner's list.
local function link(url)
  if redis.call('SADD', prefix .. ':linkset', url) == 1 then redis.call('RPUSH', prefix .. ':links', url) end
  local owner = redis.call('HGET', jobKey, 'owner')
  if owner then
    local own = prefix .. ':owner:' .. owner
    if redis.call('SADD', own .. ':linkset', url) == 1 then redis.call('RPUSH', own .. ':links', url) end
  end
end

-- cjson writes '/' as '\/' (a byte more for each slash of a URL or a link): written back plain.
-- Safe: cjson escapes every '/', so a backslash it wrote before a '/' is always that escape.
local function encode(item)
  return (cjson.encode(item):gsub('\\/', '/'))
end

local function pendingItem(index)
  -- Nothing pending: an item stored as pending was cancelled (see cancel).
  if index < 0 or redis.call('HGET', jobKey, 'pending') == '0' then return nil end
  local raw = redis.call('LINDEX', itemsKey, index)
  if not raw then return nil end
  local item = cjson.decode(raw)
  if item.s then return nil end
  return item
end

`

const SCRIPTS = {
  /**
   * ARGV 6: pending bytes; 7: pending items; 8, 9: the most items and bytes that may wait ('': no
   * limit); 10: n; 11..10+n: meta field/value pairs; then the items. { -4, items, bytes waiting }
   * when the job does not fit beside those waiting.
   */
  add: `
if redis.call('EXISTS', jobKey) == 1 then return redis.error_reply('ERR job ' .. id .. ' is already held') end
local held = redis.call('HMGET', counters, 'pendingItems', 'pendingBytes')
local waitingItems, waitingBytes = tonumber(held[1]) or 0, tonumber(held[2]) or 0
if (ARGV[8] ~= '' and waitingItems + tonumber(ARGV[7]) > tonumber(ARGV[8]))
  or (ARGV[9] ~= '' and waitingBytes + tonumber(ARGV[6]) > tonumber(ARGV[9])) then
  return { -4, waitingItems, waitingBytes }
end
local fields = tonumber(ARGV[10])
redis.call('HSET', jobKey, 'pendingBytes', ARGV[6], unpack(ARGV, 11, 10 + fields))
for first = 11 + fields, #ARGV, 1000 do
  redis.call('RPUSH', itemsKey, unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
local pending = tonumber(redis.call('HGET', jobKey, 'pending'))
redis.call('HINCRBY', counters, 'pendingItems', pending)
redis.call('HINCRBY', counters, 'pendingBytes', ARGV[6])
local after = status()
if after == 'complete' then finish() else redis.call('HINCRBY', counters, after, 1) end
return settled(pending, after)`,

  /** ARGV 6: position. The attempt number, or nil when the item is not pending. */
  start: `
if redis.call('EXISTS', jobKey) == 0 then return false end
local index = tonumber(ARGV[6])
local item = pendingItem(index)
if not item then return false end
local before = status()
item.a = (item.a or 0) + 1
redis.call('LSET', itemsKey, index, encode(item))
local first = redis.call('HGET', jobKey, 'started') ~= '1'
redis.call('HSET', jobKey, 'started', '1')
if first then bump(1) else redis.call('HINCRBY', jobKey, 'version', 1) end
moved(before)
return item.a`,

  /** A job's hash and its items, read at once (one command, where MULTI costs four). */
  read: `
return snapshot()`,

  /** The counters behind stats() (no job: the id is empty), and the finished jobs still held. */
  tally: `
local held = redis.call('HMGET', counters, 'pending', 'in-progress', 'pendingItems', 'pendingBytes')
-- Finished jobs past the age that no finish has swept yet are not held any more.
return { held, redis.call('ZCOUNT', finishedSet, string.format('(%d', now - keepMs), '+inf') }`,

  retrying: `
if redis.call('EXISTS', jobKey) == 1 then bump(1) end
return false`,

  /** ARGV 6: position; 7: 'c' or 'f'; 8: the fields to set (JSON). { 0 } when not pending. */
  settle: `
if redis.call('EXISTS', jobKey) == 0 then return { 0 } end
local index = tonumber(ARGV[6])
local item = pendingItem(index)
if not item then return { 0 } end
local before = status()
for key, value in pairs(cjson.decode(ARGV[8])) do item[key] = value end
item.s = ARGV[7]
redis.call('HINCRBY', counters, 'pendingItems', -1)
redis.call('HINCRBY', counters, 'pendingBytes', -(item.b or 0))
redis.call('HINCRBY', jobKey, 'pendingBytes', -(item.b or 0))
item.b = nil
redis.call('LSET', itemsKey, index, encode(item))
if item.l then link(item.l) end
redis.call('HSET', jobKey, 'started', '1')
local pending = redis.call('HINCRBY', jobKey, 'pending', -1)
bump(1)
return settled(pending, moved(before))`,

  /** ARGV 6: the reason (JSON). As settle, for every item still pending. */
  cancel: `
if redis.call('EXISTS', jobKey) == 0 then return { 0 } end
local count = tonumber(redis.call('HGET', jobKey, 'pending'))
if count == 0 then return { 0 } end
local before = status()
-- The items still pending fail without being rewritten (a pass over every item would stall
-- Redis on a large job): in a job with nothing pending, an item stored as pending is one the
-- cancel failed, with its reason (codec.ts).
local bytes = tonumber(redis.call('HGET', jobKey, 'pendingBytes'))
redis.call('HSET', jobKey, 'cancelled', ARGV[6], 'started', '1', 'pending', '0', 'pendingBytes', '0')
redis.call('HINCRBY', counters, 'pendingItems', -count)
redis.call('HINCRBY', counters, 'pendingBytes', -bytes)
bump(count)
return settled(0, moved(before))`,

  /** ARGV 6: the album fields to set (JSON). { -1 } no album pending, { -2 } items pending. */
  settleAlbum: `
if redis.call('EXISTS', jobKey) == 0 then return { -3 } end
local raw = redis.call('HGET', jobKey, 'album')
local album = raw and cjson.decode(raw)
if not album or album.state ~= 'pending' then return { -1 } end
if redis.call('HGET', jobKey, 'pending') ~= '0' then return { -2 } end
local before = status()
for key, value in pairs(cjson.decode(ARGV[6])) do album[key] = value end
redis.call('HSET', jobKey, 'album', cjson.encode(album))
redis.call('ZREM', prefix .. ':owed', id)
bump(1)
moved(before)
return { 3, snapshot() }`,

  /**
   * No job (the id is empty). ARGV 6: lease (ms); 7: at most this many. The jobs whose album has
   * been owed for longer than the lease, each taken for another lease by the caller.
   */
  reclaim: `
local owedKey = prefix .. ':owed'
local due = redis.call('ZRANGEBYSCORE', owedKey, '-inf', now - tonumber(ARGV[6]), 'LIMIT', 0, tonumber(ARGV[7]))
for _, owed in ipairs(due) do redis.call('ZADD', owedKey, nowArg, owed) end
return due`,

  /** ARGV 6: the webhook fields to set (JSON). { -1 } when the job has no webhook. */
  webhookChanged: `
if redis.call('EXISTS', jobKey) == 0 then return { -3 } end
local raw = redis.call('HGET', jobKey, 'webhook')
if not raw then return { -1 } end
local webhook = cjson.decode(raw)
for key, value in pairs(cjson.decode(ARGV[6])) do webhook[key] = value end
redis.call('HSET', jobKey, 'webhook', cjson.encode(webhook))
bump(1)
return { 1 }`,
} as const

export type ScriptName = keyof typeof SCRIPTS
export type RunScript = (name: ScriptName, args: readonly (string | number)[]) => Promise<unknown>

/** Defines the scripts on `redis` (EVALSHA, falling back to EVAL after a restart emptied the cache). */
export function defineScripts(redis: Redis): RunScript {
  for (const [name, lua] of Object.entries(SCRIPTS)) {
    redis.defineCommand(`jobStore_${name}`, { numberOfKeys: 0, lua: PRELUDE + lua })
  }
  // One array argument (ioredis flattens it): a job's items may be more than a call's arguments can be.
  const commands = redis as unknown as Record<
    string,
    (args: readonly (string | number)[]) => Promise<unknown>
  >
  return (name, args) => {
    const command = commands[`jobStore_${name}`]
    if (command === undefined) throw new Error(`script ${name} is not defined`)
    return command.call(redis, args)
  }
}
