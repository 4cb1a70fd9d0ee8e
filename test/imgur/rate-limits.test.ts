import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Budget, Budgets } from '../../src/budgets.ts'
import { parseRateLimitHeaders } from '../../src/imgur/rate-limits.ts'

const NOW = 1_700_000_000_000
const HOUR = 3_600_000
const budget = (remaining: number, resetAt = NOW + HOUR, limit = 12_500): Budget => ({
  limit,
  remaining,
  resetAt,
})
const reserveOk = (limits: Budgets, key: string, now = NOW) => {
  const reservation = limits.reserve(key, now)
  assert.ok(reservation.ok, `expected ${key} to be reservable`)
  return reservation.release
}

test('parseRateLimitHeaders: seconds-to-reset and epoch resets, any header case', () => {
  const parsed = parseRateLimitHeaders(
    {
      'X-Post-Rate-Limit-Limit': '1250',
      'X-Post-Rate-Limit-Remaining': '1249',
      'X-Post-Rate-Limit-Reset': '3600',
      'x-ratelimit-clientlimit': '12500',
      'x-ratelimit-clientremaining': '12490',
      'x-ratelimit-clientreset': String(NOW / 1000 + 600),
      'x-ratelimit-userlimit': '2000',
      'x-ratelimit-userremaining': '1990',
      'x-ratelimit-userreset': '120',
    },
    NOW,
  )
  assert.deepEqual(parsed, {
    post: { limit: 1250, remaining: 1249, resetAt: NOW + HOUR },
    client: { limit: 12_500, remaining: 12_490, resetAt: NOW + 600_000 },
    user: { limit: 2000, remaining: 1990, resetAt: NOW + 120_000 },
  })
})

test('parseRateLimitHeaders: missing headers give no budget; a missing reset assumes a full window', () => {
  assert.deepEqual(parseRateLimitHeaders({}, NOW), {})
  assert.deepEqual(
    parseRateLimitHeaders({ 'x-ratelimit-clientlimit': '12500', 'x-ratelimit-clientremaining': 'n/a' }, NOW),
    {},
  )
  const { client } = parseRateLimitHeaders({ 'x-ratelimit-clientremaining': '40' }, NOW)
  assert.deepEqual(client, { limit: 40, remaining: 40, resetAt: NOW + 24 * HOUR, resetAssumed: true })
})

test('reserve refuses before a budget reaches zero, counting in-flight reservations', () => {
  const limits = new Budgets()
  limits.update('client:a', { client: budget(30) })
  const first = reserveOk(limits, 'client:a')
  reserveOk(limits, 'client:a')
  reserveOk(limits, 'client:a')
  // 30 credits, three uploads of 10 in flight: a fourth would overdraw.
  const refused = limits.reserve('client:a', NOW)
  assert.equal(refused.ok, false)
  first()
  first() // release is idempotent: a second call must not free a slot it does not hold
  reserveOk(limits, 'client:a')
  assert.equal(limits.reserve('client:a', NOW).ok, false)
})

test('an exhausted budget waits for its reset and is refilled at resetAt', () => {
  const limits = new Budgets()
  limits.update('client:a', { client: budget(9, NOW + 600_000) })
  assert.deepEqual(limits.reserve('client:a', NOW), { ok: false, waitMs: 600_000, resetAt: NOW + 600_000 })
  assert.equal(limits.reserve('client:a', NOW + 599_999).ok, false)
  reserveOk(limits, 'client:a', NOW + 600_000)
})

test('refused only because of in-flight uploads: look again soon, not at the reset', () => {
  const limits = new Budgets()
  limits.update('client:a', { client: budget(10, NOW + 5 * HOUR) })
  reserveOk(limits, 'client:a')
  const refused = limits.reserve('client:a', NOW)
  assert.ok(!refused.ok && refused.waitMs > 0 && refused.waitMs <= 1000)
})

test('Bearer keys spend user credits, Client-ID keys client credits', () => {
  const limits = new Budgets()
  limits.update('account:a', { client: budget(0), user: budget(100) })
  limits.update('client:b', { client: budget(100), user: budget(0) })
  reserveOk(limits, 'account:a')
  reserveOk(limits, 'client:b')
})

test('budgets are per key, the POST budget is shared by every key', () => {
  const limits = new Budgets()
  limits.update('client:a', { client: budget(0) })
  reserveOk(limits, 'client:b')
  assert.equal(limits.reserve('client:a', NOW).ok, false)
  limits.update('client:b', { post: budget(2, NOW + 60_000, 1250) })
  reserveOk(limits, 'client:c')
  const refused = limits.reserve('client:d', NOW)
  assert.deepEqual(refused, { ok: false, waitMs: 1000, resetAt: NOW + 1000 })
})

test('on429 blocks the key until the reset it names, or a short backoff', () => {
  const limits = new Budgets({ unknown429BackoffMs: 30_000 })
  limits.on429('client:a', 120_000, NOW)
  limits.on429('client:b', undefined, NOW)
  assert.deepEqual(limits.reserve('client:a', NOW), { ok: false, waitMs: 120_000, resetAt: NOW + 120_000 })
  assert.deepEqual(limits.reserve('client:b', NOW), { ok: false, waitMs: 30_000, resetAt: NOW + 30_000 })
  reserveOk(limits, 'client:c')
  reserveOk(limits, 'client:b', NOW + 30_000)
})

test('a stale reading from the same window cannot raise the budget; a new window replaces it', () => {
  const limits = new Budgets()
  limits.update('client:a', { client: budget(80, NOW + HOUR) })
  limits.update('client:a', { client: budget(90, NOW + HOUR + 500) })
  assert.equal(limits.snapshot()[0]?.client?.remaining, 80)
  limits.update('client:a', { client: budget(12_500, NOW + 25 * HOUR) })
  assert.equal(limits.snapshot()[0]?.client?.remaining, 12_500)
})

test('snapshot lists hashed keys, the shared POST budget once, blocks and in-flight counts', () => {
  const limits = new Budgets()
  limits.update('client:a', { post: budget(1200, NOW + HOUR, 1250), client: budget(500) })
  limits.on429('account:b', 1000, NOW)
  reserveOk(limits, 'client:a')
  assert.deepEqual(limits.snapshot(), [
    { key: 'ip', post: budget(1200, NOW + HOUR, 1250), inFlight: 1 },
    { key: 'client:a', client: budget(500), inFlight: 1 },
    { key: 'account:b', blockedUntil: NOW + 1000, inFlight: 0 },
  ])
})

const keysOf = (limits: Budgets) => limits.snapshot().map((entry) => entry.key)

test('the table keeps the maxEntries most recently used keys', () => {
  const limits = new Budgets({ maxEntries: 3 })
  limits.update('client:a', { client: budget(100) })
  limits.on429('client:b', 1000, NOW)
  reserveOk(limits, 'client:c')()
  limits.update('client:a', { client: budget(90) }) // a is used again: b is now the oldest
  limits.update('client:d', { client: budget(100) })
  reserveOk(limits, 'client:e')()
  assert.deepEqual(keysOf(limits), ['client:e', 'client:d', 'client:a'])
  assert.equal(limits.snapshot()[2]?.client?.remaining, 90)
  // An evicted key starts afresh: its 429 block is forgotten, not wrongly applied to another.
  reserveOk(limits, 'client:b')()
  assert.deepEqual(keysOf(limits), ['client:b', 'client:e', 'client:d'])
})

test('a key with uploads in flight is never evicted, so its reservations still count and release cleanly', () => {
  const limits = new Budgets({ maxEntries: 2 })
  limits.update('client:b', { post: budget(1000, NOW + HOUR, 1250), client: budget(20) })
  const first = reserveOk(limits, 'client:b')
  const second = reserveOk(limits, 'client:b')
  for (const key of ['client:c', 'client:d', 'client:e', 'client:f']) reserveOk(limits, key)()
  assert.deepEqual(keysOf(limits), ['ip', 'client:f', 'client:b'])
  assert.deepEqual(
    limits.snapshot().map((entry) => [entry.key, entry.inFlight]),
    [
      ['ip', 2],
      ['client:f', 0],
      ['client:b', 2],
    ],
  )
  first()
  second()
  second()
  assert.deepEqual(
    limits.snapshot().map((entry) => [entry.key, entry.inFlight]),
    [
      ['ip', 0],
      ['client:f', 0],
      ['client:b', 0],
    ],
  )
  // Idle now, b is the least recently used and the next new key replaces it.
  reserveOk(limits, 'client:g')()
  assert.deepEqual(keysOf(limits), ['ip', 'client:g', 'client:f'])
})

test("evictions around a key's in-flight uploads leave its budget accounting exact", () => {
  const limits = new Budgets({ maxEntries: 2 })
  limits.update('client:b', { client: budget(20) })
  const first = reserveOk(limits, 'client:b')
  reserveOk(limits, 'client:b')
  for (const key of ['client:c', 'client:d', 'client:e']) reserveOk(limits, key)()
  // Both uploads still count against b's 20 credits: a third would overdraw.
  assert.equal(limits.reserve('client:b', NOW).ok, false)
  first()
  reserveOk(limits, 'client:b')
  assert.equal(limits.reserve('client:b', NOW).ok, false)
})

test('when every key has uploads in flight the table grows by at most those, and shrinks on release', () => {
  const limits = new Budgets({ maxEntries: 1 })
  const a = reserveOk(limits, 'client:a')
  const b = reserveOk(limits, 'client:b')
  const c = reserveOk(limits, 'client:c')
  assert.deepEqual(keysOf(limits), ['client:c', 'client:b', 'client:a'])
  b()
  assert.deepEqual(keysOf(limits), ['client:c', 'client:a'])
  c() // the only idle key goes: a is still in flight
  assert.deepEqual(keysOf(limits), ['client:a'])
  a()
  reserveOk(limits, 'client:d')()
  assert.deepEqual(keysOf(limits), ['client:d'])
  a() // released twice after its entry is gone: nothing changes
  assert.deepEqual(
    limits.snapshot().map((entry) => [entry.key, entry.inFlight]),
    [['client:d', 0]],
  )
})

test('maxEntries is checked at construction', () => {
  for (const maxEntries of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new Budgets({ maxEntries }), {
      code: 'imgur_invalid_options',
      message: `Expected \`maxEntries\` to be an integer >= 1, got \`${maxEntries}\``,
    })
  }
})
