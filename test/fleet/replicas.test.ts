/**
 * A fleet as it runs: replicas are real `src/server.ts` processes on one real redis-server, with
 * one Imgur sandbox and one origin of slow images for all of them. Replicas are killed, stopped
 * and cut off from Redis mid-job; what the clients see must stay right.
 */
import assert from 'node:assert/strict'
import { createHash, randomUUID } from 'node:crypto'
import { after, before, type TestContext, test } from 'node:test'
import { Redis } from 'ioredis'
import type { StatusDocument } from '../../src/http/schemas.ts'
import { createSandbox, type Sandbox } from '../../src/sandbox/sandbox.ts'
import {
  call,
  complete,
  completedBy,
  fleetOf,
  type Replica,
  status,
  submit,
  until,
} from '../helpers/fleet.ts'
import { png } from '../helpers/images.ts'
import { type Origin, startOrigin } from '../helpers/origin.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { assertPartition } from '../helpers/service.ts'

const CLIENT_ID = 'fleet-replicas-client'
/** The lock of an item: a replica silent this long has its items taken up by the others. */
const LOCK_MS = 1500
/** Items each replica works on at once (UPLOAD_CONCURRENCY), unless a test says otherwise. */
const CONCURRENCY = 2

let redis: RedisServer
let sandbox: Sandbox
let origin: Origin
before(async () => {
  sandbox = createSandbox({ clientIds: [CLIENT_ID] })
  ;[redis, origin] = await Promise.all([startRedis(), startOrigin(), sandbox.listen()])
})
after(async () => {
  await Promise.all([redis.stop(), sandbox.close(), origin.close()])
})

/** Replicas of a fleet of their own (a fresh prefix) on the shared Redis, sandbox and origin. */
function fleet(t: TestContext, env: Record<string, string> = {}) {
  return fleetOf(t, {
    REDIS_URL: redis.url,
    REDIS_PREFIX: `replicas-${randomUUID()}`,
    FLEET_LOCK_MS: String(LOCK_MS),
    FETCH_ALLOW_PRIVATE_NETWORKS: 'true',
    IMGUR_API_URL: sandbox.url,
    IMGUR_CLIENT_ID: CLIENT_ID,
    RETRY_BASE_DELAY_MS: '10',
    RETRY_MAX_DELAY_MS: '50',
    UPLOAD_CONCURRENCY: String(CONCURRENCY),
    ...env,
  })
}

let nextSeed = 1
const seeds = new Map<string, number>()
/** `count` URLs of distinct PNGs (never seen by the sandbox before), each answered after `ms`. */
function slowUrls(count: number, ms: number, query = ''): string[] {
  return Array.from({ length: count }, () => {
    const seed = nextSeed++
    const url = `${origin.url}/slow/${seed}.png?ms=${ms}${query}`
    seeds.set(url, seed)
    return url
  })
}

/** How many times the sandbox received the image of each URL. */
function uploadsOf(urls: string[]): number[] {
  const counts = new Map<string, number>()
  for (const upload of sandbox.uploads) counts.set(upload.sha256, (counts.get(upload.sha256) ?? 0) + 1)
  return urls.map((url) => {
    const sha = createHash('sha256')
      .update(png(seeds.get(url) as number))
      .digest('hex')
    return counts.get(sha) ?? 0
  })
}

function assertAllComplete(document: StatusDocument, urls: string[]): void {
  assert.equal(document.status, 'complete')
  assert.deepEqual(document.uploaded.failed, [], JSON.stringify(document.items.filter((i) => i.reason)))
  assert.deepEqual(document.uploaded.pending, [])
  assert.equal(document.uploaded.complete.length, urls.length)
  assertPartition(document, urls)
}

type Health = { status: string; reason?: string; workers: { active: number; concurrency: number } }
const health = (replica: Replica, path = '/health') => call<Health>(replica.url, path)

/** Resolves once `replica` works on `count` items at once. */
function busy(replica: Replica, count: number, timeoutMs = 20_000): Promise<true> {
  return until(
    `${replica.name} to have ${count} items in flight`,
    async () => ((await health(replica)).body.workers.active >= count ? true : undefined),
    timeoutMs,
    10,
  )
}

test('three replicas share one job: every replica answers the same status and the same links, and items run on several', async (t) => {
  const { start } = fleet(t)
  const [a, b, c] = await Promise.all([start('a'), start('b'), start('c')])
  const urls = slowUrls(30, 150)
  const jobId = await submit(a, urls)

  const done = await complete(b, jobId)
  assertAllComplete(done, urls)
  const [fromA, fromC] = await Promise.all([status(a, jobId), status(c, jobId)])
  assert.deepEqual(fromA, done)
  assert.deepEqual(fromC, done)

  const lists = await Promise.all([a, b, c].map((r) => call<{ uploaded: string[] }>(r.url, '/v1/images')))
  for (const list of lists) {
    assert.equal(list.status, 200)
    assert.deepEqual(
      list.body.uploaded,
      lists[0]?.body.uploaded,
      'every replica lists the links in one order',
    )
  }
  const links = lists[0]?.body.uploaded ?? []
  assert.equal(new Set(links).size, links.length, 'each link listed once')
  assert.deepEqual([...links].sort(), [...done.uploaded.complete].sort())

  // A replica logs an item after the store has it: the status may be read before the log line.
  const byReplica = await until('every item in the logs', () => {
    const indexes = [a, b, c].map((r) => completedBy(r, jobId))
    return indexes.flat().length >= urls.length ? indexes : undefined
  })
  const workers = byReplica.filter((indexes) => indexes.length > 0).length
  assert(workers >= 2, `items ran on ${workers} replica(s): ${JSON.stringify(byReplica)}`)
  const all = byReplica.flat().sort((x, y) => x - y)
  assert.deepEqual(
    all,
    urls.map((_, i) => i),
    'each item completed by exactly one replica',
  )
  assert.deepEqual(
    uploadsOf(urls),
    urls.map(() => 1),
    'each image uploaded once',
  )
})

test('a replica killed with SIGKILL mid-job: the others take up its items, the job completes, at most its in-flight items are uploaded twice', async (t) => {
  const { start } = fleet(t)
  const [a, b, victim] = await Promise.all([start('a'), start('b'), start('victim')])
  const urls = slowUrls(24, 400)
  const jobId = await submit(a, urls)
  await busy(victim, CONCURRENCY)
  const exit = await victim.stop('SIGKILL')
  assert.equal(exit.signal, 'SIGKILL')

  const done = await complete(b, jobId)
  assertAllComplete(done, urls)
  const retaken = done.items.filter((item) => item.attempts > 1).length
  assert(retaken >= 1, 'the items in flight at the kill ran again')
  // Started by the victim: those it transferred, and those waiting for a transfer slot (BullMQ
  // hands a replica twice its UPLOAD_CONCURRENCY).
  assert(retaken <= 2 * CONCURRENCY, `${retaken} items ran twice; the victim held at most ${2 * CONCURRENCY}`)
  const uploads = uploadsOf(urls)
  assert(
    uploads.every((count) => count >= 1),
    `every image reached the sandbox: ${uploads}`,
  )
  const twice = uploads.filter((count) => count > 1).length
  assert(twice <= CONCURRENCY, `${twice} images uploaded twice; the victim had ${CONCURRENCY} in flight`)
  assert(
    uploads.every((count, i) => count === 1 || (done.items[i]?.attempts ?? 0) > 1),
    'only an item that ran again may have been uploaded twice',
  )
  assert(a.running && b.running)
})

test('every replica killed mid-job, new ones started on the same Redis: the job completes', async (t) => {
  const { start } = fleet(t)
  const first = await Promise.all([start('a'), start('b')])
  const urls = slowUrls(16, 400)
  const jobId = await submit(first[0], urls)
  const midway = await until('a few items to complete', async () => {
    const document = await status(first[1], jobId)
    return document.uploaded.complete.length >= 3 ? document : undefined
  })
  await Promise.all(first.map((replica) => replica.stop('SIGKILL')))
  assert(midway.uploaded.pending.length > 0, 'stopped mid-job')

  const [c] = await Promise.all([start('c'), start('d')])
  const done = await complete(c, jobId)
  assertAllComplete(done, urls)
  // What was complete before the stop stays as it was.
  for (const [i, item] of midway.items.entries()) {
    if (item.state === 'complete') assert.equal(done.items[i]?.link, item.link)
  }
  const twice = uploadsOf(urls).filter((count) => count > 1).length
  assert(twice <= 2 * CONCURRENCY, `${twice} images uploaded twice; only those in flight at the kill may be`)
})

test('SIGTERM mid-job: the replica lets its in-flight items finish, hands the rest back, and exits 0 in time', async (t) => {
  const shutdownMs = 3500
  const { start } = fleet(t, { SHUTDOWN_TIMEOUT_MS: String(shutdownMs) })
  // Alone when the job comes, the stopping replica takes the first items: two whose first
  // download hangs far past its grace (the next one is quick), then the others one by one.
  const stopping = await start('stopping', { UPLOAD_CONCURRENCY: '3' })
  const urls = [...slowUrls(2, 600, '&first=60000'), ...slowUrls(20, 600)]
  const jobId = await submit(stopping, urls)
  await busy(stopping, 3)
  const staying = await start('staying')
  await busy(stopping, 3)

  const signalled = Date.now()
  const exit = await stopping.stop('SIGTERM')
  const tookMs = Date.now() - signalled
  assert.deepEqual(exit, { code: 0, signal: null })
  assert(tookMs < shutdownMs + 1500, `exited after ${tookMs} ms`)
  const stoppedAt = stopping.logs.findIndex((line) => line.msg === 'shutting down')
  assert(stoppedAt >= 0)
  assert(
    stopping.logs.slice(stoppedAt).some((line) => line.msg === 'item complete'),
    'an item in flight at SIGTERM finished before the exit',
  )
  assert(!stopping.logs.some((line) => line.msg === 'item failed'))

  const done = await complete(staying, jobId)
  assertAllComplete(done, urls)
  // The hanging items were handed back, not failed: the other replica ran them again.
  assert.deepEqual(
    done.items.slice(0, 2).map((item) => item.attempts),
    [2, 2],
  )
  const byStaying = await until('the staying replica to log its items', () => {
    const indexes = completedBy(staying, jobId)
    return indexes.includes(0) && indexes.includes(1) ? indexes : undefined
  })
  assert.deepEqual(
    completedBy(stopping, jobId).filter((index) => index < 2),
    [],
    `the staying replica completed ${byStaying}; the stopping one none of the hanging items`,
  )
})

test('Redis down: submissions and status reads answer 503 store_unavailable, /ready says so, the replicas stay up (or stop in time on SIGTERM) and recover when Redis returns', async (t) => {
  const shutdownMs = 3000
  const { start } = fleet(t, { SHUTDOWN_TIMEOUT_MS: String(shutdownMs) })
  const [a, b] = await Promise.all([start('a'), start('b')])
  const earlier = await submit(a, slowUrls(2, 10))
  await complete(b, earlier)
  const firstPage = await call<{ next: string | null }>(a.url, '/v1/images?limit=1')
  assert(firstPage.body.next)

  await redis.stop()
  // The next tests need Redis back, also when this one fails before it restarts it.
  t.after(async () => {
    if (redis.process.exitCode !== null || redis.process.signalCode !== null) {
      redis = await startRedis(redis.port)
    }
  })
  const refused = await until('a submission to be refused', async () => {
    const answer = await call<{ error: string; message: string }>(a.url, '/v1/images/upload', {
      method: 'POST',
      body: { urls: slowUrls(1, 10) },
    })
    return answer.status === 503 ? answer : undefined
  })
  assert.equal(refused.body.error, 'store_unavailable')
  assert.match(refused.headers.get('retry-after') ?? '', /^\d+$/)
  const read = await call<{ error: string }>(b.url, `/v1/images/upload/${earlier}`)
  assert.equal(read.status, 503)
  assert.equal(read.body.error, 'store_unavailable')
  assert(read.headers.get('retry-after'))
  for (const replica of [a, b]) {
    const ready = await health(replica, '/ready')
    assert.equal(ready.status, 503)
    assert.equal(ready.body.reason, 'store_unavailable')
    assert.equal((await health(replica)).status, 200)
  }
  // Long enough for several reconnection attempts to fail: neither process gives up.
  await new Promise((resolve) => setTimeout(resolve, 2000))
  assert(a.running && b.running)
  assert.equal((await health(a)).status, 200)
  // Stopped while Redis is away, a replica still exits 0 within its shutdown timeout.
  const signalled = Date.now()
  assert.deepEqual(await b.stop('SIGTERM'), { code: 0, signal: null })
  assert(Date.now() - signalled < shutdownMs, `exited after ${Date.now() - signalled} ms`)

  redis = await startRedis(redis.port)
  await until('the replica to be ready again', async () =>
    (await health(a, '/ready')).status === 200 ? true : undefined,
  )
  const urls = slowUrls(6, 100)
  const jobId = await submit(a, urls)
  assertAllComplete(await complete(a, jobId), urls)
  assert(a.running, 'recovered without a restart')

  await t.test(
    'a cursor given before Redis lost its links is refused after, not a page of the new list',
    async () => {
      const answer = await call<{ error: string }>(a.url, `/v1/images?limit=1&cursor=${firstPage.body.next}`)
      assert.equal(answer.status, 400)
      assert.equal(answer.body.error, 'invalid_cursor')
    },
  )
})

test('ROLE=api and ROLE=worker: a status stream on the API replica follows items processed on the worker replica', async (t) => {
  const { start } = fleet(t)
  const [api, worker] = await Promise.all([
    start('api', { ROLE: 'api' }),
    start('worker', { ROLE: 'worker' }),
  ])
  assert.equal((await health(worker)).status, 200)
  assert.equal((await call(worker.url, '/v1/images')).status, 404)
  assert.equal(
    (await call(worker.url, '/v1/images/upload', { method: 'POST', body: { urls: slowUrls(1, 10) } })).status,
    404,
  )

  const urls = slowUrls(8, 200)
  const jobId = await submit(api, urls)
  const response = await fetch(`${api.url}/v1/images/upload/${jobId}/events`, {
    signal: AbortSignal.timeout(30_000),
  })
  assert.equal(response.status, 200)
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/)
  const events: StatusDocument[] = []
  let text = ''
  const decoder = new TextDecoder()
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true })
    for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
      const data = text
        .slice(0, end)
        .split('\n')
        .find((line) => line.startsWith('data: '))
      text = text.slice(end + 2)
      if (data !== undefined) events.push(JSON.parse(data.slice(6)) as StatusDocument)
    }
  }
  const last = events.at(-1)
  assert(last)
  assertAllComplete(last, urls)
  const progress = new Set(events.map((event) => event.uploaded.complete.length))
  assert(progress.size >= 3, `the stream followed the items one by one: ${[...progress]}`)
  await until('the worker replica to log every item', () =>
    completedBy(worker, jobId).length === urls.length ? true : undefined,
  )
  assert.deepEqual(completedBy(api, jobId), [], 'the API replica runs no item')
})

test('fairness across replicas: a one-URL job submitted behind a big job completes while most of the big job is pending', async (t) => {
  const { start } = fleet(t)
  const [a, b] = await Promise.all([start('a'), start('b')])
  const big = slowUrls(40, 300)
  const bigId = await submit(a, big)
  await until('the big job to be under way', async () =>
    (await status(b, bigId)).uploaded.complete.length >= 2 ? true : undefined,
  )
  const small = slowUrls(1, 300)
  const smallId = await submit(b, small)
  assertAllComplete(await complete(a, smallId, 10_000), small)
  const meanwhile = await status(a, bigId)
  assert(
    meanwhile.uploaded.pending.length > big.length / 2,
    `${meanwhile.uploaded.pending.length} of ${big.length} still pending`,
  )
  assertAllComplete(await complete(b, bigId), big)
})

test('Redis connections dropped again and again mid-job: no item is stranded, the job completes', async (t) => {
  // Each drop may cost an item an attempt (its start was counted before a later call failed).
  const { start } = fleet(t, { RETRY_MAX_ATTEMPTS: '10', UPLOAD_CONCURRENCY: '4' })
  const a = await start('a')
  const urls = slowUrls(12, 500)
  const jobId = await submit(a, urls)
  await busy(a, 4)
  // Every connection of the replica is cut, ten times in two seconds: reservations, starts and
  // settlements fail while their connection is down, and BullMQ's own calls wait for it.
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  for (let drop = 0; drop < 10; drop++) {
    await admin.call('CLIENT', 'KILL', 'TYPE', 'normal')
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  assertAllComplete(await complete(a, jobId), urls)
})
