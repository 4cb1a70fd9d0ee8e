import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setImmediate } from 'node:timers/promises'
import { Redis } from 'ioredis'
import pino from 'pino'
import type { Budget, Reservation } from '../../src/budgets.ts'
import { readHash } from '../../src/fleet/budget-scripts.ts'
import { RedisBudgets, type RedisBudgetsOptions } from '../../src/fleet/budgets.ts'
import { createImgurClient } from '../../src/imgur/client.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { classic, startFakeImgur } from '../imgur/fake-imgur.ts'

const NOW = 1_700_000_000_000
const HOUR = 3_600_000
const PREFIX = `test-budgets-${process.pid}`
const budget = (remaining: number, resetAt = NOW + HOUR, limit = 12_500): Budget => ({
  limit,
  remaining,
  resetAt,
})

let server: RedisServer
const connections: Redis[] = []
before(async () => {
  server = await startRedis()
})
after(async () => {
  for (const redis of connections) redis.disconnect()
  await server.stop()
})

/** A replica's connection: fails fast instead of queueing commands while Redis is away. */
function connect(url = server.url): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 1000 })
  redis.on('error', () => {})
  connections.push(redis)
  return redis
}

/** Warn lines, and a promise of the next one. */
function captureLog() {
  const lines: Array<Record<string, unknown>> = []
  let next: (line: Record<string, unknown>) => void = () => {}
  const log = pino(
    { level: 'warn' },
    {
      write(text: string) {
        const line = JSON.parse(text) as Record<string, unknown>
        lines.push(line)
        next(line)
      },
    },
  )
  const warned = () => new Promise<Record<string, unknown>>((resolve) => (next = resolve))
  return { log, lines, warned }
}

let fleets = 0
/** `replicas` ledgers on one Redis, each with its own connection, under a prefix of their own. */
function fleet(replicas = 1, options: Partial<RedisBudgetsOptions> = {}) {
  const prefix = `${PREFIX}:${fleets++}`
  const captured = captureLog()
  const members = Array.from({ length: replicas }, () => {
    const redis = connect()
    const budgets = new RedisBudgets({
      redis,
      prefix,
      log: captured.log,
      leaseMs: 60_000,
      now: () => NOW,
      ...options,
    })
    // What waits for a reservation is written now. Commands of one connection run in order: once
    // PING answers, the background writes before it (a 429) are done, and a turn of the event loop
    // later the mirror has adopted their answers.
    const written = async () => {
      await budgets.flush()
      await redis.ping()
      await setImmediate()
    }
    return Object.assign(budgets, { redis, written })
  })
  return { prefix, members, ...captured }
}

const member = (members: ReturnType<typeof fleet>['members'], index = 0) => {
  const found = members[index]
  assert.ok(found)
  return found
}

async function reserveOk(limits: RedisBudgets, key: string, now = NOW) {
  const reservation = await limits.reserve(key, now)
  assert.ok(reservation.ok, `expected ${key} to be reservable`)
  return reservation.release
}

test('reserve refuses before a budget reaches zero, counting in-flight reservations', async () => {
  const limits = member(fleet().members)
  limits.update('client:a', { client: budget(30) })
  const first = await reserveOk(limits, 'client:a')
  await reserveOk(limits, 'client:a')
  await reserveOk(limits, 'client:a')
  assert.equal((await limits.reserve('client:a', NOW)).ok, false)
  first()
  first() // release is idempotent: a second call must not free a slot it does not hold
  await reserveOk(limits, 'client:a')
  assert.equal((await limits.reserve('client:a', NOW)).ok, false)
})

test('an exhausted budget waits for its reset and is refilled at resetAt', async () => {
  const limits = member(fleet().members)
  limits.update('client:a', { client: budget(9, NOW + 600_000) })
  assert.deepEqual(await limits.reserve('client:a', NOW), {
    ok: false,
    waitMs: 600_000,
    resetAt: NOW + 600_000,
  })
  assert.equal((await limits.reserve('client:a', NOW + 599_999)).ok, false)
  await reserveOk(limits, 'client:a', NOW + 600_000)
})

test('refused only because of in-flight uploads: look again soon, not at the reset', async () => {
  const limits = member(fleet().members)
  limits.update('client:a', { client: budget(10, NOW + 5 * HOUR) })
  await reserveOk(limits, 'client:a')
  assert.deepEqual(await limits.reserve('client:a', NOW), { ok: false, waitMs: 1000, resetAt: NOW + 1000 })
})

test('Bearer keys spend user credits, Client-ID keys client credits', async () => {
  const limits = member(fleet().members)
  limits.update('account:a', { client: budget(0), user: budget(100) })
  limits.update('client:b', { client: budget(100), user: budget(0) })
  await reserveOk(limits, 'account:a')
  await reserveOk(limits, 'client:b')
})

test('budgets are per key, the POST budget is shared by every key of every replica', async () => {
  const { members } = fleet(2)
  const [a, b] = [member(members, 0), member(members, 1)]
  a.update('client:a', { client: budget(0) })
  await a.written()
  await reserveOk(b, 'client:b')
  assert.equal((await b.reserve('client:a', NOW)).ok, false)
  a.update('client:b', { post: budget(2, NOW + 60_000, 1250) })
  await a.written()
  // Two POSTs left, one of them held by b's reservation for client:b.
  await reserveOk(a, 'client:c')
  assert.deepEqual(await b.reserve('client:d', NOW), { ok: false, waitMs: 1000, resetAt: NOW + 1000 })
})

test('a 429 recorded by one replica refuses reservations on the other until it passes', async () => {
  const { members } = fleet(2, { unknown429BackoffMs: 30_000 })
  const [a, b] = [member(members, 0), member(members, 1)]
  a.on429('client:a', 120_000, NOW)
  a.on429('client:b', undefined, NOW)
  a.on429('client:a', 60_000, NOW) // a shorter block never shortens a longer one
  await a.written()
  assert.deepEqual(await b.reserve('client:a', NOW), { ok: false, waitMs: 120_000, resetAt: NOW + 120_000 })
  assert.deepEqual(await b.reserve('client:b', NOW), { ok: false, waitMs: 30_000, resetAt: NOW + 30_000 })
  await reserveOk(b, 'client:c')
  assert.equal((await b.reserve('client:a', NOW + 119_999)).ok, false)
  await reserveOk(b, 'client:a', NOW + 120_000)
  await reserveOk(b, 'client:b', NOW + 30_000)
  assert.equal(b.snapshot().find((entry) => entry.key === 'client:a')?.blockedUntil, NOW + 120_000)
})

test("a 429 answered to one replica's client holds back the other replica", async (t) => {
  const { members } = fleet(2)
  const [a, b] = [member(members, 0), member(members, 1)]
  const imgur = await startFakeImgur(() =>
    classic(429, 'Too Many Requests', { 'retry-after': '120', 'x-ratelimit-clientremaining': '500' }),
  )
  const client = createImgurClient({
    apiUrl: imgur.url,
    clientId: 'fleet0client0id',
    timeoutMs: 2000,
    userAgent: 't',
    budgets: a,
    now: () => NOW,
  })
  t.after(() => Promise.all([imgur.close(), client.close()]))
  const image = { bytes: new Uint8Array([0x89, 0x50, 0x4e, 0x47]), mime: 'image/png', filename: 'a.png' }
  await assert.rejects(client.upload(image), { code: 'imgur_rate_limited' })
  assert.equal(client.budgets, a, 'the client keeps the injected ledger, with its own type')
  await a.written()
  const key = client.credentialKey()
  assert.deepEqual(await b.reserve(key, NOW), { ok: false, waitMs: 120_000, resetAt: NOW + 120_000 })
  assert.equal(b.snapshot().find((entry) => entry.key === key)?.client?.remaining, 500)
})

test('concurrent reservations across two replicas never exceed the budget', async () => {
  const { members } = fleet(2)
  const [a, b] = [member(members, 0), member(members, 1)]
  a.update('client:a', { client: budget(50, NOW + HOUR) })
  await a.written()
  const all = await Promise.all(
    Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).reserve('client:a', NOW)),
  )
  const granted = all.filter(
    (reservation): reservation is Extract<Reservation, { ok: true }> => reservation.ok,
  )
  assert.equal(granted.length, 5)
  for (const reservation of all) {
    if (!reservation.ok) assert.deepEqual(reservation, { ok: false, waitMs: 1000, resetAt: NOW + 1000 })
  }
  for (const reservation of granted) reservation.release()
  await Promise.all([a.written(), b.written()])
  await reserveOk(a, 'client:a')
})

test("readings and releases go with the replica's next reservation of their key, or after writeDelayMs", async () => {
  const { prefix, members } = fleet(2, { writeDelayMs: 60_000 })
  const [a, b] = [member(members, 0), member(members, 1)]
  const held = () => a.redis.zcard(`${prefix}:budget:key:client:a:reservations`)
  const reading = async () =>
    readHash(Object.entries(await a.redis.hgetall(`${prefix}:budget:key:client:a`)).flat()).client
  const scripts = async () =>
    Number(/cmdstat_evalsha:calls=(\d+)/.exec(await a.redis.info('commandstats'))?.[1])
  a.update('client:a', { client: budget(20) })
  const release = await reserveOk(a, 'client:a')
  assert.equal(await held(), 1)
  const before = await scripts()
  release()
  a.update('client:a', { client: budget(10) })
  a.update('client:a', { client: budget(12) }) // a late answer of the same window: the lowest stands
  // Nothing written yet: Redis counts the upload in flight against the older reading.
  assert.equal(await held(), 1)
  assert.deepEqual(await reading(), budget(20))
  // a's next reservation carries both, in its one script, applied before it reserves.
  await reserveOk(a, 'client:a')
  assert.equal((await scripts()) - before, 1)
  assert.equal(await held(), 1)
  assert.deepEqual(await reading(), budget(10))
  assert.deepEqual(await b.reserve('client:a', NOW), { ok: false, waitMs: 1000, resetAt: NOW + 1000 })

  // With no reservation of the key coming, the timer writes them.
  const timed = fleet(1, { writeDelayMs: 20 })
  const quick = member(timed.members)
  quick.update('client:b', { client: budget(20) })
  const releaseB = await reserveOk(quick, 'client:b')
  releaseB()
  quick.update('client:b', { client: budget(10) })
  const key = `${timed.prefix}:budget:key:client:b`
  for (const deadline = Date.now() + 5_000; ; await new Promise((resolve) => setTimeout(resolve, 10))) {
    const remaining = await quick.redis.hget(key, 'client.remaining')
    if (remaining === '10' && (await quick.redis.zcard(`${key}:reservations`)) === 0) break
    assert.ok(Date.now() < deadline, 'the timer writes what waited')
  }
})

test('a reservation never released stops counting when its lease ends', async () => {
  const { members } = fleet(2, { leaseMs: 1000 })
  const [dead, alive] = [member(members, 0), member(members, 1)]
  alive.update('client:a', { post: budget(1000, NOW + HOUR, 1250), client: budget(10) })
  await alive.written()
  await reserveOk(dead, 'client:a') // its replica is killed mid-upload: never released
  assert.equal((await alive.reserve('client:a', NOW + 999)).ok, false)
  await reserveOk(alive, 'client:a', NOW + 1000)
})

test('a stale reading from the same window cannot raise the budget, whichever replica sends it', async () => {
  const { members } = fleet(2)
  const [a, b] = [member(members, 0), member(members, 1)]
  a.update('client:a', { client: budget(80, NOW + HOUR) })
  await a.written()
  b.update('client:a', { client: budget(90, NOW + HOUR + 500) })
  await b.written()
  assert.equal(b.snapshot()[0]?.client?.remaining, 80, "b's mirror adopts what Redis answered")
  b.update('client:a', { client: budget(12_500, NOW + 25 * HOUR) })
  await b.written()
  await reserveOk(a, 'client:a')
  assert.deepEqual(a.snapshot()[0]?.client, budget(12_500, NOW + 25 * HOUR))
  // A guessed reset slides with every reading: the latest reading wins.
  a.update('client:g', { client: { ...budget(40, NOW + 24 * HOUR, 40), resetAssumed: true } })
  a.update('client:g', { client: { ...budget(50, NOW + 24 * HOUR, 50), resetAssumed: true } })
  await a.written()
  await reserveOk(b, 'client:g')
  assert.deepEqual(b.snapshot()[0], {
    key: 'client:g',
    client: { ...budget(50, NOW + 24 * HOUR, 50), resetAssumed: true },
    inFlight: 1,
  })
})

test('snapshot lists hashed keys, the shared POST budget once, blocks and in-flight counts', async () => {
  const limits = member(fleet().members)
  limits.update('client:a', { post: budget(1200, NOW + HOUR, 1250), client: budget(500) })
  limits.on429('account:b', 1000, NOW)
  await reserveOk(limits, 'client:a')
  assert.deepEqual(limits.snapshot(), [
    { key: 'ip', post: budget(1200, NOW + HOUR, 1250), inFlight: 1 },
    { key: 'client:a', client: budget(500), inFlight: 1 },
    { key: 'account:b', blockedUntil: NOW + 1000, inFlight: 0 },
  ])
})

test('entries live under the prefix and expire some time after their reset or lease', async () => {
  const { prefix, members } = fleet(1, { leaseMs: 5000 })
  const limits = member(members)
  limits.update('client:a', { post: budget(1000, NOW + HOUR, 1250), client: budget(100, NOW + 2 * HOUR) })
  limits.on429('client:b', 1000, NOW)
  const release = await reserveOk(limits, 'client:c')
  await limits.written()
  const keys = (await limits.redis.keys(`${prefix}:*`)).sort()
  assert.deepEqual(keys, [
    `${prefix}:budget:ip`,
    `${prefix}:budget:ip:reservations`,
    `${prefix}:budget:key:client:a`,
    `${prefix}:budget:key:client:b`,
    `${prefix}:budget:key:client:c:reservations`,
  ])
  const ttl = async (key: string) => limits.redis.pttl(`${prefix}:budget:${key}`)
  const keep = HOUR
  const near = (actual: number, expected: number) =>
    assert.ok(actual > expected - 5000 && actual <= expected, `${actual} ≈ ${expected}`)
  near(await ttl('key:client:a'), 2 * HOUR + keep)
  near(await ttl('key:client:b'), 1000 + keep)
  near(await ttl('ip'), HOUR + keep)
  near(await ttl('key:client:c:reservations'), 5000 + keep)
  release()
  // A reset header with a fraction of a second gives a fractional reset; the expiry is rounded up.
  limits.update('client:f', { client: budget(100, NOW + 1500.5) })
  await limits.written()
  assert.equal(await limits.redis.zcard(`${prefix}:budget:key:client:c:reservations`), 0)
  near(await ttl('key:client:f'), 1501 + keep)
  assert.equal(limits.snapshot().find((entry) => entry.key === 'client:f')?.client?.resetAt, NOW + 1500.5)
})

test('scripts are sent again when Redis has forgotten them (a restarted server)', async () => {
  const limits = member(fleet().members)
  await limits.redis.script('FLUSH')
  limits.update('client:a', { client: budget(10) })
  await reserveOk(limits, 'client:a')
  assert.equal((await limits.reserve('client:a', NOW)).ok, false)
})

test('options are checked at construction with exact messages', () => {
  const redis = connect()
  const base = { redis, prefix: PREFIX, log: pino({ level: 'silent' }), leaseMs: 1000 }
  for (const [name, value] of [
    ['leaseMs', 0],
    ['timeoutMs', 1.5],
    ['maxEntries', -1],
    ['writeDelayMs', 0],
  ] as const) {
    assert.throws(() => new RedisBudgets({ ...base, [name]: value }), {
      code: 'imgur_invalid_options',
      message: `Expected \`${name}\` to be an integer >= 1, got \`${value}\``,
    })
  }
})

test('with Redis down, update and on429 log a warning and reserve rejects with store_unavailable', async () => {
  const lonely = await startRedis()
  try {
    const redis = connect(lonely.url)
    const { log, lines, warned } = captureLog()
    const limits = new RedisBudgets({
      redis,
      prefix: PREFIX,
      log,
      leaseMs: 1000,
      timeoutMs: 500,
      now: () => NOW,
    })
    const release = await reserveOk(limits, 'client:a')
    await lonely.stop()
    let warning = warned()
    limits.update('client:a', { client: budget(100) })
    assert.equal((await warning).msg, 'budget reading not written to Redis')
    warning = warned()
    limits.on429('client:a', 1000, NOW)
    assert.equal((await warning).msg, 'budget 429 not written to Redis')
    warning = warned()
    release()
    assert.equal((await warning).msg, 'budget reservation not released in Redis')
    await assert.rejects(limits.reserve('client:a', NOW), { code: 'store_unavailable', retryable: true })
    assert.ok(lines.every((line) => line.level === 40 && line.key === 'client:a'))
    // The mirror still answers /health.
    assert.deepEqual(limits.snapshot(), [
      { key: 'client:a', client: budget(100), blockedUntil: NOW + 1000, inFlight: 0 },
    ])
  } finally {
    await lonely.stop()
  }
})
