/**
 * Starts the whole service against real local servers on port 0 — the Imgur sandbox and a fake
 * origin — exactly as server.ts wires it, and tears everything down after the test. With
 * TEST_REDIS_URL set (test/helpers/redis-setup.ts sets it for `npm run test:fleet`) the service is
 * a one-replica fleet on that Redis, under a prefix of its own, so tests never see each other's jobs.
 */
import { randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import type { TestContext } from 'node:test'
import { loadConfig } from '../../src/config.ts'
import { buildApp } from '../../src/http/app.ts'
import type { StatusDocument } from '../../src/http/schemas.ts'
import { viewJob } from '../../src/http/status.ts'
import { createLogger } from '../../src/log.ts'
import { createSandbox, type SandboxOptions } from '../../src/sandbox/sandbox.ts'
import { createService, type ServiceOverrides } from '../../src/service.ts'
import { type Origin, startOrigin } from './origin.ts'

export type Harness = Awaited<ReturnType<typeof startService>>

/** The Redis the service runs on in fleet mode; undefined: the memory mode. */
export const testRedisUrl = process.env.TEST_REDIS_URL || undefined

/**
 * Why a test (or part of one) does not apply in fleet mode, for a test's `skip` option, which
 * shows it in the report; undefined in the memory mode. Only facts of the memory mode's
 * internals qualify, never a fleet contract.
 */
export function memoryOnly(reason: string): string | undefined {
  return testRedisUrl === undefined ? undefined : `memory mode only: ${reason}`
}

export async function startService(
  t: TestContext,
  options: {
    env?: Record<string, string>
    sandbox?: SandboxOptions
    overrides?: ServiceOverrides
    /** The app's clock (the submission limits' windows). */
    now?: () => number
  } = {},
) {
  const sandbox = createSandbox(options.sandbox)
  await sandbox.listen()
  const origin: Origin = await startOrigin()
  const config = loadConfig({
    IMGUR_API_URL: sandbox.url,
    IMGUR_CLIENT_ID: 'configured-client-id',
    FETCH_ALLOW_PRIVATE_NETWORKS: 'true',
    RETRY_BASE_DELAY_MS: '1',
    RETRY_MAX_DELAY_MS: '5',
    LOG_LEVEL: 'info',
    ...(testRedisUrl !== undefined && {
      REDIS_URL: testRedisUrl,
      REDIS_PREFIX: `t-${randomUUID()}`,
      // Short (30 s by default), yet long enough that a test busy on a loaded CPU never has its
      // own items taken for those of a stopped replica and run again.
      FLEET_LOCK_MS: '5000',
    }),
    ...options.env,
  })
  const logs: string[] = []
  const log = createLogger(
    config.logLevel,
    new Writable({
      write(chunk, _encoding, done) {
        logs.push(String(chunk))
        done()
      },
    }),
  )
  const service = await createService(config, log, { random: () => 0.5, ...options.overrides })
  const app = buildApp({ config, log, ...service, ...(options.now && { now: options.now }) })
  await app.ready()
  t.after(async () => {
    await app.close()
    await service.close(0)
    await Promise.all([sandbox.close(), origin.close()])
  })

  const submit = async (urls: unknown[], extra: Record<string, unknown> = {}) => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/images/upload',
      payload: { urls, ...extra },
    })
    if (response.statusCode !== 202)
      throw new Error(`submit answered ${response.statusCode}: ${response.body}`)
    return response.json<{ jobId: string }>().jobId
  }
  const status = async (jobId: string) => {
    const response = await app.inject({ method: 'GET', url: `/v1/images/upload/${jobId}` })
    return response.json<StatusBody>()
  }
  /** Submits, waits for the queue and any album to finish (no polling), and returns the final status. */
  const run = async (urls: unknown[], extra: Record<string, unknown> = {}) => {
    const jobId = await submit(urls, extra)
    await service.queue.onIdle()
    await service.albums.onIdle()
    return status(jobId)
  }
  /**
   * The status once `service.close` has run: the memory store still answers the route; a fleet's
   * job outlives its replica in Redis, where another reader finds it.
   */
  const statusAfterClose = async (jobId: string): Promise<StatusBody | undefined> => {
    if (config.redisUrl === undefined) return status(jobId)
    const [{ connectRedis }, { RedisJobStore }] = await Promise.all([
      import('../../src/fleet/redis.ts'),
      import('../../src/fleet/store.ts'),
    ])
    const redis = connectRedis(config.redisUrl)
    try {
      const store = await RedisJobStore.open(redis, {
        prefix: config.redisPrefix,
        retentionCount: config.jobRetentionCount,
        retentionMs: config.jobRetentionMs,
      })
      const job = await store.get(jobId)
      await store.close()
      return job && viewJob(job)
    } finally {
      redis.disconnect()
    }
  }
  return { app, config, service, sandbox, origin, logs, submit, status, run, statusAfterClose }
}

/** What the status route answers: the schema's own type. */
export type StatusBody = StatusDocument

/** Each submitted URL is in exactly one list, and the lists keep submission order. */
export function assertPartition(body: StatusBody, submitted: string[]): void {
  const { pending, complete, failed } = body.uploaded
  const listed = [...pending, ...failed].length + complete.length
  if (listed !== submitted.length) throw new Error(`${listed} URLs listed, ${submitted.length} submitted`)
  const order = (list: string[]) => list.map((url) => submitted.indexOf(url))
  for (const list of [pending, failed]) {
    const indexes = order(list)
    if (indexes.some((i) => i < 0)) throw new Error(`a listed URL was not submitted: ${list}`)
    if (indexes.some((i, k) => k > 0 && i <= (indexes[k - 1] as number)))
      throw new Error('lists out of order')
  }
  const links = body.items.filter((item) => item.state === 'complete').map((item) => item.link)
  if (JSON.stringify(links) !== JSON.stringify(complete))
    throw new Error('complete does not follow submission order')
}
