import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import pino from 'pino'
import { isServiceError } from '../../src/errors.ts'
import { RedisIdempotencyKeys } from '../../src/fleet/idempotency.ts'
import { connectRedis, whenReady } from '../../src/fleet/redis.ts'
import type { Claim, Found } from '../../src/http/idempotency.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'

let server: RedisServer
before(async () => {
  server = await startRedis()
})
after(() => server.stop())

const log = pino({ level: 'silent' })
const ANSWER = { statusCode: 202, location: '/v1/images/upload/j1', body: '{"jobId":"j1"}' }

/** Two replicas' key tables on one Redis and prefix. */
async function replicas(ttlMs = 60_000, claimMs?: number) {
  const prefix = `i-${randomUUID()}`
  const connections = [connectRedis(server.url), connectRedis(server.url)]
  await Promise.all(connections.map((redis) => whenReady(redis)))
  const [a, b] = connections.map(
    (redis) => new RedisIdempotencyKeys({ redis, prefix, ttlMs, log, ...(claimMs && { claimMs }) }),
  ) as [RedisIdempotencyKeys, RedisIdempotencyKeys]
  return {
    a,
    b,
    close: () => {
      for (const redis of connections) redis.disconnect()
    },
  }
}

function claimed(found: Found): Claim {
  assert.ok('claim' in found, 'a new key is claimed')
  return found.claim
}

const rejectsWith = (code: string, status: number) => (error: unknown) =>
  isServiceError(error) && error.code === code && error.statusCode === status

/** Resolves once `read` answers something other than `undefined`. */
async function eventually<T>(read: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i += 1) {
    const value = await read()
    if (value !== undefined) return value
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error('never happened')
}

test('a key claimed at one replica is answered at another: replay, 409 while in progress, 422 for another body', async (t) => {
  const { a, b, close } = await replicas()
  t.after(close)
  const claim = claimed(await a.claim('alice', 'k1', { urls: ['https://a.test/1.png'] }))
  await assert.rejects(
    b.claim('alice', 'k1', { urls: ['https://a.test/1.png'] }),
    rejectsWith('idempotency_request_in_progress', 409),
  )
  claim.remember(ANSWER)
  // The answer is written in the background: the other replica replays it once it is there.
  const replay = await eventually(async () => {
    const found = await b.claim('alice', 'k1', { urls: ['https://a.test/1.png'] }).catch(() => undefined)
    return found && 'replay' in found ? found.replay : undefined
  })
  assert.deepEqual(replay, ANSWER)
  await assert.rejects(
    b.claim('alice', 'k1', { urls: ['https://a.test/2.png'] }),
    rejectsWith('idempotency_key_reused', 422),
  )
  // Another client's key of the same name is its own.
  claimed(await b.claim('bob', 'k1', { urls: ['https://a.test/1.png'] }))
})

test('a forgotten claim (an error answer) frees the key for a corrected retry, at any replica', async (t) => {
  const { a, b, close } = await replicas()
  t.after(close)
  claimed(await a.claim('s', 'k', { urls: ['bad'] })).forget()
  const retry = await eventually(async () => {
    const found = await b.claim('s', 'k', { urls: ['good'] }).catch(() => undefined)
    return found && 'claim' in found ? found.claim : undefined
  })
  retry.remember(ANSWER)
  assert.deepEqual(
    await eventually(async () => {
      const found = await a.claim('s', 'k', { urls: ['good'] }).catch(() => undefined)
      return found && 'replay' in found ? found.replay : undefined
    }),
    ANSWER,
  )
})

test('a claim never answered (its replica died) frees its key after the claim time; an answer is kept for the whole TTL', async (t) => {
  const { a, b, close } = await replicas(60_000, 200)
  t.after(close)
  claimed(await a.claim('s', 'lost', { n: 1 }))
  await assert.rejects(b.claim('s', 'lost', { n: 1 }), rejectsWith('idempotency_request_in_progress', 409))
  // No remember, no forget: as if the replica had died mid-request.
  await new Promise((resolve) => setTimeout(resolve, 300))
  claimed(await b.claim('s', 'lost', { n: 1 })).remember(ANSWER)
  // Answered: kept well past the claim time, for the TTL.
  await eventually(async () => {
    const found = await a.claim('s', 'lost', { n: 1 }).catch(() => undefined)
    return found && 'replay' in found ? found.replay : undefined
  })
  await new Promise((resolve) => setTimeout(resolve, 300))
  const found = await a.claim('s', 'lost', { n: 1 })
  assert.ok('replay' in found, 'the answer outlives the claim time')
  assert.deepEqual(found.replay, ANSWER)
})

test('keys expire after the TTL; Redis down answers store_unavailable', async (t) => {
  const { a, close } = await replicas(200)
  t.after(close)
  claimed(await a.claim('s', 'old', { n: 1 })).remember(ANSWER)
  await new Promise((resolve) => setTimeout(resolve, 300))
  claimed(await a.claim('s', 'old', { n: 2 }))

  const lonely = await startRedis()
  const redis = connectRedis(lonely.url)
  t.after(() => redis.disconnect())
  await whenReady(redis)
  const keys = new RedisIdempotencyKeys({ redis, prefix: 'down', ttlMs: 1_000, log })
  await lonely.stop()
  await assert.rejects(keys.claim('s', 'k', {}), rejectsWith('store_unavailable', 503))
})
