import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Budget, parseRateLimitHeaders, RateLimits } from '../../src/imgur/rate-limits.ts'

const NOW = 1_700_000_000_000
const HOUR = 3_600_000
const budget = (remaining: number, resetAt = NOW + HOUR, limit = 12_500): Budget => ({
  limit,
  remaining,
  resetAt,
})
const reserveOk = (limits: RateLimits, key: string, now = NOW) => {
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
  const limits = new RateLimits()
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
  const limits = new RateLimits()
  limits.update('client:a', { client: budget(9, NOW + 600_000) })
  assert.deepEqual(limits.reserve('client:a', NOW), { ok: false, waitMs: 600_000, resetAt: NOW + 600_000 })
  assert.equal(limits.reserve('client:a', NOW + 599_999).ok, false)
  reserveOk(limits, 'client:a', NOW + 600_000)
})

test('refused only because of in-flight uploads: look again soon, not at the reset', () => {
  const limits = new RateLimits()
  limits.update('client:a', { client: budget(10, NOW + 5 * HOUR) })
  reserveOk(limits, 'client:a')
  const refused = limits.reserve('client:a', NOW)
  assert.ok(!refused.ok && refused.waitMs > 0 && refused.waitMs <= 1000)
})

test('Bearer keys spend user credits, Client-ID keys client credits', () => {
  const limits = new RateLimits()
  limits.update('account:a', { client: budget(0), user: budget(100) })
  limits.update('client:b', { client: budget(100), user: budget(0) })
  reserveOk(limits, 'account:a')
  reserveOk(limits, 'client:b')
})

test('budgets are per key, the POST budget is shared by every key', () => {
  const limits = new RateLimits()
  limits.update('client:a', { client: budget(0) })
  reserveOk(limits, 'client:b')
  assert.equal(limits.reserve('client:a', NOW).ok, false)
  limits.update('client:b', { post: budget(2, NOW + 60_000, 1250) })
  reserveOk(limits, 'client:c')
  const refused = limits.reserve('client:d', NOW)
  assert.deepEqual(refused, { ok: false, waitMs: 1000, resetAt: NOW + 1000 })
})

test('on429 blocks the key until the reset it names, or a short backoff', () => {
  const limits = new RateLimits({ unknown429BackoffMs: 30_000 })
  limits.on429('client:a', 120_000, NOW)
  limits.on429('client:b', undefined, NOW)
  assert.deepEqual(limits.reserve('client:a', NOW), { ok: false, waitMs: 120_000, resetAt: NOW + 120_000 })
  assert.deepEqual(limits.reserve('client:b', NOW), { ok: false, waitMs: 30_000, resetAt: NOW + 30_000 })
  reserveOk(limits, 'client:c')
  reserveOk(limits, 'client:b', NOW + 30_000)
})

test('a stale reading from the same window cannot raise the budget; a new window replaces it', () => {
  const limits = new RateLimits()
  limits.update('client:a', { client: budget(80, NOW + HOUR) })
  limits.update('client:a', { client: budget(90, NOW + HOUR + 500) })
  assert.equal(limits.snapshot()[0]?.client?.remaining, 80)
  limits.update('client:a', { client: budget(12_500, NOW + 25 * HOUR) })
  assert.equal(limits.snapshot()[0]?.client?.remaining, 12_500)
})

test('snapshot lists hashed keys, the shared POST budget once, blocks and in-flight counts', () => {
  const limits = new RateLimits()
  limits.update('client:a', { post: budget(1200, NOW + HOUR, 1250), client: budget(500) })
  limits.on429('account:b', 1000, NOW)
  reserveOk(limits, 'client:a')
  assert.deepEqual(limits.snapshot(), [
    { key: 'ip', post: budget(1200, NOW + HOUR, 1250), inFlight: 1 },
    { key: 'client:a', client: budget(500), inFlight: 1 },
    { key: 'account:b', blockedUntil: NOW + 1000, inFlight: 0 },
  ])
})
