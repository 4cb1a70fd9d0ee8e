/**
 * A Lua script Redis runs atomically (nothing else runs meanwhile), sent by its SHA1 (EVALSHA) and
 * in full only when Redis does not know it yet (NOSCRIPT: a new or restarted server).
 * https://redis.io/docs/latest/develop/interact/programmability/eval-intro/
 */
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'

export type Script = (
  redis: Redis,
  keys: readonly string[],
  args: readonly (string | number)[],
) => Promise<unknown>

export function script(source: string): Script {
  const sha = createHash('sha1').update(source).digest('hex')
  return async (redis, keys, args) => {
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args)
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
      return redis.eval(source, keys.length, ...keys, ...args)
    }
  }
}
