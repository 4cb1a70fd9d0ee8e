/** The submission limits: per minute and per UTC day, per key (per IP without keys), with a moved clock. */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { type TestContext, test } from 'node:test'
import { isServiceError } from '../../src/errors.ts'
import { addressClient } from '../../src/http/access.ts'
import { Quotas } from '../../src/http/quotas.ts'
import { offline } from '../helpers/downloaders.ts'
import { apiKeys } from '../helpers/keys.ts'
import { startService } from '../helpers/service.ts'

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
const { keys: KEYS, API_KEYS } = apiKeys('alice', 'bob')

/** A clock the test moves. */
function clock(start: string) {
  let now = Date.parse(start)
  return {
    now: () => now,
    set: (iso: string) => {
      now = Date.parse(iso)
    },
  }
}

async function limited(t: TestContext, env: Record<string, string>, now: () => number) {
  const h = await startService(t, { env, now, overrides: { downloader: offline } })
  let n = 0
  /** Submits `count` distinct URLs (or the given ones) as `as` (a key name or an IP address). */
  const post = (as: string, count: number | string[] = 1) => {
    const urls =
      typeof count === 'number' ? Array.from({ length: count }, () => `https://e.com/${n++}.png`) : count
    return h.app.inject({
      method: 'POST',
      url: '/v1/images/upload',
      payload: { urls },
      ...(as in KEYS
        ? { headers: { authorization: `Bearer ${KEYS[as as keyof typeof KEYS]}` } }
        : { remoteAddress: as }),
    })
  }
  return { ...h, post }
}

const limits = (response: { headers: Record<string, unknown> }) => ({
  limit: response.headers['ratelimit-limit'],
  remaining: response.headers['ratelimit-remaining'],
  reset: response.headers['ratelimit-reset'],
})

test('SUBMIT_RATE_LIMIT per minute per key: 429 with Retry-After and RateLimit-*, reset at the next minute', async (t) => {
  const time = clock('2026-11-27T10:00:30.000Z')
  const { post, service } = await limited(t, { API_KEYS, SUBMIT_RATE_LIMIT: '2' }, time.now)

  const first = await post('alice')
  assert.equal(first.statusCode, 202)
  assert.deepEqual(limits(first), { limit: '2', remaining: '1', reset: '30' })
  const second = await post('alice')
  assert.equal(second.statusCode, 202)
  assert.deepEqual(limits(second), { limit: '2', remaining: '0', reset: '30' })

  time.set('2026-11-27T10:00:45.500Z')
  const jobs = (await service.store.stats()).jobs
  const refused = await post('alice')
  assert.equal(refused.statusCode, 429)
  assert.equal(refused.headers['retry-after'], '15')
  assert.deepEqual(limits(refused), { limit: '2', remaining: '0', reset: '15' })
  assert.deepEqual(refused.json(), {
    error: 'submit_rate_limited',
    message:
      "2 submissions per minute are allowed and this minute's are spent; submit again after 2026-11-27T10:01:00.000Z",
    details: { limit: 'submit_rate', max: 2, remaining: 0, resetAt: '2026-11-27T10:01:00.000Z' },
  })
  assert.equal((await service.store.stats()).jobs, jobs, 'no job was created')

  assert.equal((await post('bob')).statusCode, 202, 'another key has its own allowance')

  time.set('2026-11-27T10:01:00.000Z')
  const next = await post('alice')
  assert.equal(next.statusCode, 202, 'a new minute, a new allowance')
  assert.deepEqual(limits(next), { limit: '2', remaining: '1', reset: '60' })
})

test('without keys the limits count per client IP', async (t) => {
  const time = clock('2026-11-27T23:59:59.000Z')
  const { post } = await limited(t, { SUBMIT_RATE_LIMIT: '1' }, time.now)
  assert.equal((await post('203.0.113.7')).statusCode, 202)
  const refused = await post('203.0.113.7')
  assert.equal(refused.statusCode, 429)
  assert.equal(refused.json().error, 'submit_rate_limited')
  assert.equal(refused.headers['retry-after'], '1')
  assert.equal((await post('203.0.113.8')).statusCode, 202, 'another address is another client')
  assert.equal((await post('2001:db8::1')).statusCode, 202)
})

test('DAILY_URL_QUOTA per UTC day: refused whole, refusals cost nothing, reset at UTC midnight', async (t) => {
  const time = clock('2026-11-27T22:00:00.000Z')
  const { post } = await limited(t, { API_KEYS, DAILY_URL_QUOTA: '5', SUBMIT_RATE_LIMIT: '100' }, time.now)
  const toMidnight = String(2 * 3600)

  const first = await post('alice', 3)
  assert.equal(first.statusCode, 202)
  // 2 of 5 URLs left is nearer exhaustion than 99 of 100 submissions: the headers tell the quota.
  assert.deepEqual(limits(first), { limit: '5', remaining: '2', reset: toMidnight })

  const tooMany = await post('alice', 3)
  assert.equal(tooMany.statusCode, 429)
  assert.equal(tooMany.headers['retry-after'], toMidnight)
  assert.deepEqual(limits(tooMany), { limit: '5', remaining: '2', reset: toMidnight })
  assert.deepEqual(tooMany.json(), {
    error: 'daily_quota_exceeded',
    message:
      'this submission of 3 URLs would pass the daily quota of 5 URLs (3 used today, UTC); it resets at 2026-11-28T00:00:00.000Z',
    details: {
      limit: 'daily_quota',
      max: 5,
      remaining: 2,
      requested: 3,
      resetAt: '2026-11-28T00:00:00.000Z',
    },
  })

  // Refused submissions, by the quota or by validation, leave the quota as it was.
  const invalid = await post('alice', ['https://e.com/ok.png', 'ftp://e.com/no.png'])
  assert.equal(invalid.statusCode, 400)
  // Duplicates are merged before counting: two lines, one URL.
  const merged = await post('alice', ['https://e.com/same.png', 'https://e.com/same.png#again'])
  assert.equal(merged.statusCode, 202)
  assert.deepEqual(limits(merged), { limit: '5', remaining: '1', reset: toMidnight })
  assert.equal((await post('alice', 1)).statusCode, 202)
  const spent = await post('alice', 1)
  assert.equal(spent.statusCode, 429)
  assert.equal(spent.json().details.remaining, 0)
  assert.equal((await post('bob', 5)).statusCode, 202, 'another key has its own quota')

  time.set('2026-11-28T00:00:00.000Z')
  const tomorrow = await post('alice', 5)
  assert.equal(tomorrow.statusCode, 202, 'a new UTC day, a new quota')
  assert.deepEqual(limits(tomorrow), { limit: '5', remaining: '0', reset: String(24 * 3600) })
})

test('DAILY_URL_QUOTA=0 means no quota: only the per-minute limit shows', async (t) => {
  const time = clock('2026-11-27T10:00:00.000Z')
  const { post } = await limited(t, { DAILY_URL_QUOTA: '0', SUBMIT_RATE_LIMIT: '3' }, time.now)
  const response = await post('198.51.100.1', 500)
  assert.equal(response.statusCode, 202)
  assert.deepEqual(limits(response), { limit: '3', remaining: '2', reset: '60' })
})

test('/metrics counts submissions and refusals by key name and limit, never by key or address', async (t) => {
  const time = clock('2026-11-27T10:00:00.000Z')
  const h = await limited(t, { API_KEYS, SUBMIT_RATE_LIMIT: '1', DAILY_URL_QUOTA: '3' }, time.now)
  assert.equal((await h.post('alice', 2)).statusCode, 202)
  assert.equal((await h.post('alice', 1)).statusCode, 429)
  assert.equal((await h.post('bob', 4)).statusCode, 429)
  assert.equal((await h.app.inject({ url: '/v1/images', remoteAddress: '192.0.2.55' })).statusCode, 401)

  const text = (await h.app.inject('/metrics')).body
  const sample = (name: string, labels: string) =>
    Number(text.match(new RegExp(`^imgur_upload_${name}\\{${labels}\\} (\\S+)$`, 'm'))?.[1])
  assert.equal(sample('submissions_total', 'key="alice"'), 1)
  assert.equal(sample('submitted_urls_total', 'key="alice"'), 2)
  assert.equal(sample('submissions_total', 'key="bob"'), 0)
  assert.equal(sample('submissions_refused_total', 'key="alice",limit="submit_rate"'), 1)
  assert.equal(sample('submissions_refused_total', 'key="alice",limit="daily_quota"'), 0)
  assert.equal(sample('submissions_refused_total', 'key="bob",limit="daily_quota"'), 1)
  const keyLabels = new Set([...text.matchAll(/\bkey="([^"]*)"/g)].map((m) => m[1]))
  keyLabels.delete('ip') // the Imgur budget gauges' own `key` (see /health), never an address
  assert.deepEqual([...keyLabels].sort(), ['alice', 'bob'])
  for (const secret of [KEYS.alice, KEYS.bob, sha256(KEYS.alice), '127.0.0.1', '192.0.2.55'])
    assert.ok(!text.includes(secret), 'no key, hash or address in the metrics')
})

test('/metrics labels every client `anonymous` without keys', async (t) => {
  const time = clock('2026-11-27T10:00:00.000Z')
  const h = await limited(t, { SUBMIT_RATE_LIMIT: '1' }, time.now)
  assert.equal((await h.post('192.0.2.1')).statusCode, 202)
  assert.equal((await h.post('192.0.2.1')).statusCode, 429)
  assert.equal((await h.post('192.0.2.2')).statusCode, 202)
  const text = (await h.app.inject('/metrics')).body
  assert.match(text, /^imgur_upload_submissions_total\{key="anonymous"\} 2$/m)
  assert.match(text, /^imgur_upload_submissions_refused_total\{key="anonymous",limit="submit_rate"\} 1$/m)
  assert.ok(!text.includes('192.0.2.'))
})

test('the per-client table is bounded: the least recently submitting client is forgotten first', () => {
  const now = () => Date.parse('2026-11-27T10:00:00.000Z')
  // A quota of 2 URLs a day: a client remembered with 1 URL used cannot submit 2 more.
  const quotas = new Quotas({ submitRateLimit: 100, dailyUrlQuota: 2, maxClients: 3, now })
  const submit = (client: string, urls: number) => quotas.admit(client, undefined, urls).commit()
  const refused = (client: string, urls: number) =>
    assert.throws(
      () => quotas.admit(client, undefined, urls),
      (error) => isServiceError(error) && error.code === 'daily_quota_exceeded',
      client,
    )
  for (const client of ['a', 'b', 'c']) submit(client, 1)
  submit('a', 1) // `a` is now the most recent, `b` the least
  submit('d', 2) // a fourth client: `b` is forgotten
  assert.equal(quotas.size, 3)
  refused('a', 1)
  refused('d', 1)
  refused('c', 2)
  submit('b', 2) // counted afresh, since forgotten; this pushes out `c`, the least recent now
  assert.equal(quotas.size, 3)
  refused('a', 1)
  refused('b', 1)
  submit('c', 2)

  // A flood of addresses never grows the table past its bound.
  const big = new Quotas({ submitRateLimit: 1, dailyUrlQuota: 0, maxClients: 1000, now })
  for (let i = 0; i < 5000; i++) big.admit(`10.0.${i >> 8}.${i & 255}`, undefined, 1).commit()
  assert.equal(big.size, 1000)
})

test('Quotas checks its options with exact messages', () => {
  assert.throws(() => new Quotas({ submitRateLimit: 0, dailyUrlQuota: 1 }), {
    message: 'Expected `submitRateLimit` to be an integer >= 1, got `0`',
  })
  assert.throws(() => new Quotas({ submitRateLimit: 1, dailyUrlQuota: -1 }), {
    message: 'Expected `dailyUrlQuota` to be an integer >= 0, got `-1`',
  })
  assert.throws(() => new Quotas({ submitRateLimit: 1, dailyUrlQuota: 0, maxClients: 1.5 }), {
    message: 'Expected `maxClients` to be an integer >= 1, got `1.5`',
  })
})

test('a submission counts from its admission: those still on their way count, a failed one is taken back', () => {
  const now = () => Date.parse('2026-11-27T10:00:00.000Z')
  const quotas = new Quotas({ submitRateLimit: 2, dailyUrlQuota: 10, now })
  const limited = (client: string, urls: number, code: string) =>
    assert.throws(
      () => quotas.admit(client, undefined, urls),
      (error) => isServiceError(error) && error.code === code,
    )
  // Two submissions waiting on their queue (a fleet's Redis): a third is refused meanwhile.
  const first = quotas.admit('a', undefined, 4)
  const second = quotas.admit('a', undefined, 4)
  limited('a', 1, 'submit_rate_limited')
  // The second is not accepted (its queue refused it): its submission and URLs are given back.
  second.cancel()
  second.cancel()
  assert.equal(first.commit()['ratelimit-remaining'], '1')
  limited('a', 7, 'daily_quota_exceeded')
  quotas.admit('a', undefined, 6).commit()
  limited('a', 1, 'submit_rate_limited')
  // A client whose only submission failed is not remembered.
  quotas.admit('b', undefined, 1).cancel()
  assert.equal(quotas.size, 1)
})

test('an IPv6 client is its /64: rotating addresses within it shares one limit; IPv4-mapped is IPv4', async (t) => {
  assert.equal(addressClient('192.0.2.7'), '192.0.2.7')
  assert.equal(addressClient('::ffff:192.0.2.7'), '192.0.2.7')
  assert.equal(addressClient('2001:db8:1:2::1'), '2001:db8:1:2::/64')
  assert.equal(addressClient('2001:0db8:0001:0002:ffff:0:0:9'), '2001:db8:1:2::/64')
  assert.equal(addressClient('fe80::1%eth0'), 'fe80:0:0:0::/64')
  assert.equal(addressClient('::1'), '0:0:0:0::/64')

  const time = clock('2026-11-27T10:00:30.000Z')
  const { post } = await limited(t, { SUBMIT_RATE_LIMIT: '2' }, time.now)
  assert.equal((await post('2001:db8:1:2::1')).statusCode, 202)
  assert.equal((await post('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).statusCode, 202)
  assert.equal((await post('2001:db8:1:2::99')).statusCode, 429, 'the same /64')
  assert.equal((await post('2001:db8:1:3::1')).statusCode, 202, 'the next /64 is another client')
  assert.equal((await post('192.0.2.7')).statusCode, 202)
  assert.equal((await post('::ffff:192.0.2.7')).statusCode, 202)
  assert.equal((await post('192.0.2.7')).statusCode, 429, 'a mapped address is its IPv4 address')
})
