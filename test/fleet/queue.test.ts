import { randomUUID } from 'node:crypto'
import { after, before } from 'node:test'
import { Redis } from 'ioredis'
import pino from 'pino'
import { FleetQueue } from '../../src/fleet/queue.ts'
import { connectRedis } from '../../src/fleet/redis.ts'
import { RedisJobStore } from '../../src/fleet/store.ts'
import { queueContract } from '../contract/queue.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'

let server: RedisServer
before(async () => {
  server = await startRedis()
})
after(() => server.stop())

queueContract('fleet', async (work, { concurrency, maxAttempts }) => {
  const prefix = `q-${randomUUID()}`
  const redis = connectRedis(server.url)
  const workerRedis = new Redis(server.url, { maxRetriesPerRequest: null })
  const store = await RedisJobStore.open(redis, { prefix, retentionCount: 100, retentionMs: 60_000 })
  const queue = new FleetQueue(
    {
      prefix,
      concurrency,
      perHostConcurrency: 10,
      maxPendingItems: 10_000,
      maxPendingBytes: 64 * 1024 * 1024,
      maxRateLimitWaitMs: 60_000,
      retry: { maxAttempts, baseDelayMs: 0, maxDelayMs: 0 },
      lockMs: 5_000,
    },
    {
      store,
      redis,
      workerRedis,
      budgets: { reserve: () => ({ ok: true, release: () => {} }) },
      credentialKey: (clientId) => `client:${clientId ?? 'configured'}`,
      work,
      log: pino({ level: 'silent' }),
    },
  )
  return {
    queue,
    store,
    async close() {
      await queue.close(0)
      await store.close()
      workerRedis.disconnect()
      redis.disconnect()
    },
  }
})
