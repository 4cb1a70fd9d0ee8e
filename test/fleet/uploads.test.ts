import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { Redis } from 'ioredis'
import pino from 'pino'
import { SharedUploads, type SharedUploadsOptions } from '../../src/fleet/uploads.ts'
import type { Known } from '../../src/jobs/uploads.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'

const PREFIX = `test-uploads-${process.pid}`
const known = (name: string): Known => ({
  link: `https://i.imgur.com/${name}.png`,
  imageId: name,
  deletehash: `d-${name}`,
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

function connect(url = server.url): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 1000 })
  redis.on('error', () => {})
  connections.push(redis)
  return redis
}

function captureLog() {
  const lines: Array<Record<string, unknown>> = []
  const log = pino({ level: 'warn' }, { write: (text: string) => void lines.push(JSON.parse(text)) })
  return { log, lines }
}

/** A replica's table, on its own connection. */
function replica(options: Partial<SharedUploadsOptions> = {}) {
  const redis = connect()
  const { log, lines } = captureLog()
  return { shared: new SharedUploads({ redis, prefix: PREFIX, log, ...options }), redis, lines }
}

test('a link set by one replica is found by another; unknown bytes are a miss', async () => {
  const [a, b] = [replica(), replica()]
  await a.shared.set('client:abc:hash1', known('one'))
  assert.deepEqual(await b.shared.get('client:abc:hash1'), known('one'))
  assert.equal(await b.shared.get('client:abc:hash2'), undefined)
  assert.equal(await b.shared.get('client:other:hash1'), undefined, 'a link never crosses credentials')
  assert.deepEqual([...a.lines, ...b.lines], [])
})

test('links live under the prefix for ttlMs, 7 days by default', async () => {
  const { shared, redis } = replica()
  await shared.set('client:abc:week', known('week'))
  const week = await redis.pttl(`${PREFIX}:upload:client:abc:week`)
  assert.ok(week > 7 * 86_400_000 - 5000 && week <= 7 * 86_400_000, String(week))
  const short = replica({ ttlMs: 60_000 })
  await short.shared.set('client:abc:minute', known('minute'))
  const minute = await redis.pttl(`${PREFIX}:upload:client:abc:minute`)
  assert.ok(minute > 55_000 && minute <= 60_000, String(minute))
})

test('only the link, image id and deletehash are kept; anything unreadable is a miss', async () => {
  const { shared, redis, lines } = replica()
  await shared.set('client:abc:extra', { ...known('extra'), secret: 'x' } as Known)
  assert.equal(await redis.get(`${PREFIX}:upload:client:abc:extra`), JSON.stringify(known('extra')))
  await redis.set(`${PREFIX}:upload:client:abc:bad`, '{"link": 1}')
  await redis.set(`${PREFIX}:upload:client:abc:worse`, 'not json')
  assert.equal(await shared.get('client:abc:bad'), undefined)
  assert.equal(await shared.get('client:abc:worse'), undefined)
  assert.deepEqual(
    lines.map((line) => line.msg),
    ['shared upload unreadable in Redis', 'shared upload unreadable in Redis'],
  )
})

test('with Redis down, get is a miss and set resolves, each with a warning', async () => {
  const lonely = await startRedis()
  try {
    const redis = connect(lonely.url)
    const { log, lines } = captureLog()
    const shared = new SharedUploads({ redis, prefix: PREFIX, log })
    await shared.set('client:abc:down', known('down'))
    await lonely.stop()
    assert.equal(await shared.get('client:abc:down'), undefined)
    await shared.set('client:abc:down', known('down'))
    assert.deepEqual(
      lines.map((line) => [line.level, line.msg, line.key ?? line.keys]),
      [
        [40, 'shared upload not read from Redis', 'client:abc:down'],
        [40, 'shared uploads not written to Redis', ['client:abc:down']],
      ],
    )
  } finally {
    await lonely.stop()
  }
})

test('links set within writeDelayMs are written together, and read back before', async () => {
  // The timer's own path is the other tests' (50 ms); here flush() stands for it.
  const { shared, redis } = replica({ writeDelayMs: 60_000 })
  const sets = async () =>
    Number(/^cmdstat_set:calls=(\d+)/m.exec(await redis.info('commandstats'))?.[1] ?? 0)
  const before = await sets()
  const writes = ['b1', 'b2', 'b3'].map((name) => shared.set(`client:abc:${name}`, known(name)))
  // Not written yet, but this replica answers from what waits.
  assert.equal(await redis.exists(`${PREFIX}:upload:client:abc:b1`), 0)
  assert.deepEqual(await shared.get('client:abc:b2'), known('b2'))
  assert.equal(await sets(), before)
  await shared.flush()
  await Promise.all(writes)
  assert.equal((await sets()) - before, 3)
  const other = replica()
  for (const name of ['b1', 'b2', 'b3']) {
    assert.deepEqual(await other.shared.get(`client:abc:${name}`), known(name))
  }
})

test('options are checked at construction with exact messages', () => {
  const base = { redis: connect(), prefix: PREFIX, log: pino({ level: 'silent' }) }
  assert.throws(() => new SharedUploads({ ...base, ttlMs: 0 }), {
    message: 'Expected `ttlMs` to be an integer >= 1, got `0`',
  })
  assert.throws(() => new SharedUploads({ ...base, timeoutMs: 2.5 }), {
    message: 'Expected `timeoutMs` to be an integer >= 1, got `2.5`',
  })
  assert.throws(() => new SharedUploads({ ...base, writeDelayMs: 0 }), {
    message: 'Expected `writeDelayMs` to be an integer >= 1, got `0`',
  })
})
