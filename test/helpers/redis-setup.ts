/**
 * `node --test --test-global-setup` module for `npm run test:fleet`: one redis-server for the
 * whole run, its URL in TEST_REDIS_URL, which the test files inherit (they run as child
 * processes started after this), so `startService` builds each service as a fleet on it.
 * A TEST_REDIS_URL already set is used as it is: a throwaway Redis, since the tests leave their
 * keys (each under its own prefix).
 */
import { type RedisServer, startRedis } from './redis.ts'

let server: RedisServer | undefined

export async function globalSetup(): Promise<void> {
  if (process.env.TEST_REDIS_URL) return
  server = await startRedis()
  process.env.TEST_REDIS_URL = server.url
}

export async function globalTeardown(): Promise<void> {
  await server?.stop()
}
