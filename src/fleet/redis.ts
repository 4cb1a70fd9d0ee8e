/**
 * The fleet's connection to Redis, configured to fail fast: while Redis cannot be reached a
 * request gets `store_unavailable` at once (the client retries) instead of waiting in memory
 * for a server that may not come back, and the connection keeps trying to reconnect.
 */
import { Redis } from 'ioredis'
import { ServiceError } from '../errors.ts'

/** Reconnection backoff: 50 ms doubling, at most this, forever. */
const MAX_BACKOFF_MS = 2_000

/**
 * A client for the store (not for blocking commands: BullMQ's workers need their own, with
 * `maxRetriesPerRequest: null`). `onError` hears connection errors, for the log; requests
 * learn of them through their own rejections.
 */
export function connectRedis(url: string, onError: (error: Error) => void = () => {}): Redis {
  const redis = new Redis(url, {
    // A command sent while disconnected fails at once instead of queueing until reconnection.
    enableOfflineQueue: false,
    // A command in flight when the connection drops fails at once and is never sent again: a
    // transition may have run before the drop, and a replay could count an attempt twice.
    maxRetriesPerRequest: 0,
    // A server that stops answering without closing the connection fails commands too.
    commandTimeout: 5_000,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(50 * 2 ** (times - 1), MAX_BACKOFF_MS),
  })
  redis.on('error', onError)
  return redis
}

/** Resolves when `redis` can take commands; `store_unavailable` if it cannot within `timeoutMs`. */
export async function whenReady(redis: Redis, timeoutMs = 5_000): Promise<void> {
  if (redis.status === 'ready') return
  if (redis.status === 'wait') {
    await redis.connect().catch((error: unknown) => Promise.reject(unavailable(error)))
    return
  }
  await new Promise<void>((resolve, reject) => {
    const done = (error?: unknown) => {
      clearTimeout(timer)
      redis.off('ready', done)
      redis.off('end', ended)
      if (error === undefined) resolve()
      else reject(unavailable(error))
    }
    const ended = () => done(new Error('the connection was closed'))
    const timer = setTimeout(() => done(new Error(`not ready within ${timeoutMs} ms`)), timeoutMs)
    redis.once('ready', done)
    redis.once('end', ended)
  })
}

/** Replies that mean Redis cannot serve now, not that the command was wrong. */
const OUTAGE_REPLY = /^(OOM|LOADING|BUSY|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/

/**
 * The error a store operation rejects with: `store_unavailable` for a connection that is down,
 * timed out or refused, or a server that cannot serve now; any other error reply (a bug in a
 * command or a script) as it is.
 */
export function unavailable(error: unknown): unknown {
  if (error instanceof ServiceError) return error
  if (error instanceof Error && error.name === 'ReplyError' && !OUTAGE_REPLY.test(error.message)) return error
  return new ServiceError('store_unavailable', 'Redis cannot be reached; try again shortly', {
    retryAfterMs: 5_000,
    cause: error,
  })
}
