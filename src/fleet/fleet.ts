/**
 * A replica of a fleet: its connections to Redis and what every replica shares through it — the
 * store, Imgur's budgets, the links of bytes already uploaded, and the queue. Loaded only with
 * REDIS_URL, so the memory mode never pays for BullMQ or ioredis.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import type { Work } from '../jobs/contract.ts'
import type { RetryPolicy } from '../jobs/retry.ts'
import { withTimeout } from '../signals.ts'
import { RedisBudgets } from './budgets.ts'
import { RedisIdempotencyKeys } from './idempotency.ts'
import { FleetQueue } from './queue.ts'
import { connectRedis, whenReady } from './redis.ts'
import { RedisJobStore } from './store.ts'
import { SharedUploads } from './uploads.ts'

export type Fleet = Awaited<ReturnType<typeof joinFleet>>

/**
 * Connects to the fleet's Redis, waiting (and saying so in the log) while it cannot be reached:
 * a replica started before its Redis starts working once Redis is up.
 */
export async function joinFleet(config: Config, log: Logger) {
  const url = config.redisUrl as string
  const fleetLog = log.child({ redis: redactUrl(url) })
  let warned = 0
  const redis = connectRedis(url, (error) => {
    // One line per outage second at most: a down Redis must not flood the log.
    if (Date.now() - warned < 1_000) return
    warned = Date.now()
    fleetLog.warn({ err: error }, 'Redis cannot be reached')
  })
  for (let wait = 100; ; wait = Math.min(wait * 2, 5_000)) {
    try {
      await whenReady(redis)
      break
    } catch {
      fleetLog.warn({ retryInMs: wait }, 'waiting for Redis')
      await sleep(wait)
    }
  }
  const policy = await redis.config('GET', 'maxmemory-policy').catch(() => [])
  if (Array.isArray(policy) && policy[1] !== undefined && policy[1] !== 'noeviction') {
    fleetLog.warn(
      { policy: policy[1] },
      'Redis should run with maxmemory-policy noeviction: an evicted key loses work',
    )
  }
  const prefix = config.redisPrefix
  const store = await RedisJobStore.open(redis, {
    prefix,
    retentionCount: config.jobRetentionCount,
    retentionMs: config.jobRetentionMs,
  })
  const budgets = new RedisBudgets({
    redis,
    prefix,
    log: fleetLog,
    // A reservation counts while an upload may still be running: its item may first wait for a
    // transfer slot until the items begun before it end (src/fleet/queue.ts), then take as long.
    leaseMs: 2 * Math.max(config.uploadTimeoutMs, config.videoTimeoutMs, config.itemTimeoutMs),
    maxEntries: config.budgetMaxEntries,
  })
  const uploads = new SharedUploads({ redis, prefix, log: fleetLog })
  const idempotency = new RedisIdempotencyKeys({
    redis,
    prefix,
    ttlMs: config.idempotencyTtlMs,
    log: fleetLog,
  })
  // BullMQ's workers block on Redis and must never give up a command (`maxRetriesPerRequest: null`).
  const workerRedis = config.role === 'api' ? undefined : new Redis(url, { maxRetriesPerRequest: null })
  workerRedis?.on('error', () => {})
  fleetLog.info({ role: config.role, prefix }, 'joined the fleet')

  return {
    store,
    budgets,
    uploads,
    idempotency,
    /** The queue, once the worker it runs is known. */
    queue(work: Work, credentialKey: (clientId: string | undefined) => string, retry: RetryPolicy) {
      return new FleetQueue(
        {
          prefix,
          concurrency: config.role === 'api' ? 0 : config.uploadConcurrency,
          perHostConcurrency: config.perHostConcurrency,
          maxPendingItems: config.maxPendingItems,
          maxPendingBytes: config.maxPendingBytes,
          maxRateLimitWaitMs: config.maxRateLimitWaitMs,
          retry,
          lockMs: config.fleetLockMs,
        },
        { store, redis, workerRedis, budgets, credentialKey, work, log: fleetLog },
      )
    },
    async close(): Promise<void> {
      // Budget readings, released reservations and links still waiting: the other replicas need
      // them now. Bounded, so a Redis that is away cannot hold up the shutdown.
      await withTimeout(Promise.all([budgets.flush(), uploads.flush()]), 1_000).catch(() => {})
      await store.close()
      workerRedis?.disconnect()
      redis.disconnect()
    },
  }
}

/** The URL without its password, for the log. */
function redactUrl(url: string): string {
  const parsed = URL.parse(url)
  if (parsed === null) return 'redis'
  if (parsed.password) parsed.password = '***'
  return parsed.toString()
}
