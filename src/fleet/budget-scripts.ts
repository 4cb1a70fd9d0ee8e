/**
 * The Lua side of the fleet's budgets (src/fleet/budgets.ts): the rules of src/budgets.ts, applied
 * atomically in Redis so every replica reads and reserves one ledger. The constants come from
 * src/budgets.ts as arguments, never copied into the Lua.
 *
 * Layout, under `<prefix>:budget:`:
 * - `ip`: hash of the per-IP POST budget every key shares: `post.limit`, `post.remaining`,
 *   `post.resetAt` (epoch ms), `post.assumed` ('1' when the reset is our guess);
 * - `key:<credential key>`: hash of the key's `client.*` and `user.*` budgets and `blockedUntil` (a 429);
 * - `ip:reservations`, `key:<credential key>:reservations`: sorted sets of reservation ids scored by
 *   their lease's end; only unexpired ones count, so a replica that dies mid-upload leaks nothing.
 * Every write sets PEXPIRE to `keepMs` past the latest time the entry holds (a reset, a block, a
 * lease), so Redis forgets credentials that stopped being used.
 */
import type { Budget, ParsedLimits } from '../budgets.ts'
import { script } from './lua.ts'

// KEYS, for every script: ip hash, ip reservations, key hash, key reservations.
const COMMON = `
local ipHash, ipHeld, keyHash, keyHeld = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

-- Keeps an entry until keepMs past the latest time it holds.
local function keep(hash, held, now, keepMs)
  local latest = now
  local fields = redis.call('HGETALL', hash)
  for i = 1, #fields, 2 do
    local name = fields[i]
    if name == 'blockedUntil' or string.sub(name, -8) == '.resetAt' then
      latest = math.max(latest, tonumber(fields[i + 1]))
    end
  end
  local last = redis.call('ZRANGE', held, -1, -1, 'WITHSCORES')
  if last[2] then latest = math.max(latest, tonumber(last[2])) end
  local ttl = math.ceil(latest - now + keepMs) -- resets from headers may have fractions
  if #fields > 0 then redis.call('PEXPIRE', hash, ttl) end
  if last[2] then redis.call('PEXPIRE', held, ttl) end
end

-- What a replica had not written yet, from ARGV[from] on: the number of reservations it released,
-- their ids, then (kind, limit, remaining, resetAt, assumed) per reading.
local function apply(from, sameWindow)
  local released = tonumber(ARGV[from])
  for i = from + 1, from + released do
    redis.call('ZREM', ipHeld, ARGV[i])
    redis.call('ZREM', keyHeld, ARGV[i])
  end
  for i = from + 1 + released, #ARGV, 5 do
    local kind, remaining, resetAt, assumed = ARGV[i], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local hash = kind == 'post' and ipHash or keyHash
    local old = redis.call('HMGET', hash, kind .. '.remaining', kind .. '.resetAt', kind .. '.assumed')
    -- merge() of src/budgets.ts: within one window the lowest reading stands; a guessed reset slides.
    if old[1] and old[3] ~= '1' and assumed ~= '1'
      and math.abs(tonumber(old[2]) - tonumber(resetAt)) < sameWindow then
      remaining = tostring(math.min(tonumber(old[1]), tonumber(remaining)))
    end
    redis.call('HSET', hash, kind .. '.limit', ARGV[i + 1], kind .. '.remaining', remaining,
      kind .. '.resetAt', resetAt, kind .. '.assumed', assumed)
  end
end

local function state()
  return { redis.call('HGETALL', ipHash), redis.call('HGETALL', keyHash) }
end
`

/**
 * ARGV: now, keepMs, sameWindowMs, then what a replica had not written yet (see `applied`).
 * Answers the ip and key hashes after it.
 */
export const applyScript = script(`${COMMON}
local now, keepMs = tonumber(ARGV[1]), tonumber(ARGV[2])
apply(4, tonumber(ARGV[3]))
keep(ipHash, ipHeld, now, keepMs)
keep(keyHash, keyHeld, now, keepMs)
return state()
`)

/** ARGV: now, blocked until (epoch ms), keepMs. A block only ever lengthens. Answers the hashes. */
export const on429Script = script(`${COMMON}
local now, untilMs, keepMs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local old = tonumber(redis.call('HGET', keyHash, 'blockedUntil') or '0')
if untilMs > old then redis.call('HSET', keyHash, 'blockedUntil', ARGV[2]) end
keep(keyHash, keyHeld, now, keepMs)
return state()
`)

/**
 * ARGV: now, lease end, reservation id, credit kind ('client' | 'user'), post cost, credit cost,
 * recheckMs, keepMs, sameWindowMs, then what the replica had not written yet (see `applied`),
 * applied first. Budgets.reserve() of src/budgets.ts, with in-flight counts from the reservation
 * sets. Answers { granted 1 | 0, wait until (epoch ms, when refused), ip hash, key hash }.
 */
export const reserveScript = script(`${COMMON}
local now, leaseEnd, id, credits = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local postCost, creditCost, recheckMs, keepMs =
  tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
apply(10, tonumber(ARGV[9]))
redis.call('ZREMRANGEBYSCORE', ipHeld, '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', keyHeld, '-inf', ARGV[1])
local refused, waitUntil = false, 0
local function wait(at)
  refused, waitUntil = true, math.max(waitUntil, at)
end
local blocked = tonumber(redis.call('HGET', keyHash, 'blockedUntil') or '0')
if blocked > now then wait(blocked) end
local function check(hash, kind, held, cost)
  local b = redis.call('HMGET', hash, kind .. '.limit', kind .. '.remaining', kind .. '.resetAt')
  if not b[2] then return end
  local resetAt = tonumber(b[3])
  local remaining = tonumber(b[2])
  if now >= resetAt then remaining = tonumber(b[1]) end
  if remaining - redis.call('ZCARD', held) * cost >= cost then return end
  if remaining >= cost then wait(now + recheckMs) else wait(resetAt) end
end
check(ipHash, 'post', ipHeld, postCost)
check(keyHash, credits, keyHeld, creditCost)
if refused then
  local answer = state()
  return { 0, waitUntil, answer[1], answer[2] }
end
redis.call('ZADD', ipHeld, leaseEnd, id)
redis.call('ZADD', keyHeld, leaseEnd, id)
keep(ipHash, ipHeld, now, keepMs)
keep(keyHash, keyHeld, now, keepMs)
local answer = state()
return { 1, 0, answer[1], answer[2] }
`)

/** What a replica has not written yet, as the scripts' ARGV tail: reservations released, then readings. */
export function applied(released: readonly string[], readings: ParsedLimits): string[] {
  const args = [String(released.length), ...released]
  for (const kind of ['post', 'client', 'user'] as const) {
    const budget = readings[kind]
    if (budget === undefined) continue
    args.push(
      kind,
      String(budget.limit),
      String(budget.remaining),
      String(budget.resetAt),
      budget.resetAssumed ? '1' : '0',
    )
  }
  return args
}

/** What a hash holds, as the memory ledger's shapes. */
export type Held = { post?: Budget; client?: Budget; user?: Budget; blockedUntil?: number }

/** Reads an HGETALL answer (field, value, field, value, …). */
export function readHash(reply: unknown): Held {
  const fields = new Map<string, string>()
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), String(reply[i + 1]))
  }
  const held: Held = {}
  for (const kind of ['post', 'client', 'user'] as const) {
    const limit = Number(fields.get(`${kind}.limit`))
    const remaining = Number(fields.get(`${kind}.remaining`))
    const resetAt = Number(fields.get(`${kind}.resetAt`))
    if (![limit, remaining, resetAt].every(Number.isFinite)) continue
    const budget: Budget = { limit, remaining, resetAt }
    if (fields.get(`${kind}.assumed`) === '1') budget.resetAssumed = true
    held[kind] = budget
  }
  const blockedUntil = Number(fields.get('blockedUntil'))
  if (Number.isFinite(blockedUntil)) held.blockedUntil = blockedUntil
  return held
}
