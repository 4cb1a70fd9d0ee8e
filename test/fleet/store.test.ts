import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { after, before, type TestContext, test } from 'node:test'
import { isServiceError } from '../../src/errors.ts'
import { connectRedis, whenReady } from '../../src/fleet/redis.ts'
import { RedisJobStore } from '../../src/fleet/store.ts'
import type { JobStore, JobView } from '../../src/jobs/contract.ts'
import { completeItem, createJob, failItem, settleAlbum, startItem } from '../../src/jobs/model.ts'
import { storeContract } from '../contract/store.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'

let server: RedisServer
before(async () => {
  server = await startRedis()
})
after(() => server.stop())

/** A store on its own connection; `prefix` shared makes it another replica of the same fleet. */
async function replica(
  url: string,
  prefix: string,
  retention = { retentionCount: 100, retentionMs: 60_000 },
  albumLeaseMs?: number,
) {
  const redis = connectRedis(url)
  const store = await RedisJobStore.open(redis, {
    prefix,
    ...retention,
    ...(albumLeaseMs && { albumLeaseMs }),
  })
  return {
    store,
    redis,
    async close() {
      await store.close()
      await redis.quit()
    },
  }
}

storeContract('redis', async (options) => {
  const redis = connectRedis(server.url)
  const store = await RedisJobStore.open(redis, { prefix: `t-${randomUUID()}`, ...options })
  return {
    store,
    async close() {
      await store.close()
      await redis.quit()
    },
  }
})

async function fleet(t: TestContext) {
  const prefix = `t-${randomUUID()}`
  const a = await replica(server.url, prefix)
  const b = await replica(server.url, prefix)
  t.after(() => Promise.all([a.close(), b.close()]))
  return { a: a.store, b: b.store, prefix }
}

function job(count: number, options: Parameters<typeof createJob>[2] = {}) {
  const urls = Array.from({ length: count }, (_, i) => `https://images.example/${randomUUID()}/${i}.jpg`)
  return createJob(urls, urls, options)
}

function heard(store: JobStore, id: string, version: number): Promise<JobView> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`version ${version} not heard`)), 5_000)
    const stop = store.subscribe(id, (view) => {
      if (view.version < version) return
      clearTimeout(timer)
      stop()
      resolve(view)
    })
  })
}

function tally(...stores: JobStore[]) {
  const seen = new Map<string, string[]>()
  for (const store of stores) {
    for (const event of ['itemsSettled', 'complete'] as const) {
      store.on(event, (view) => seen.set(view.id, [...(seen.get(view.id) ?? []), event]))
    }
  }
  return seen
}

const link = (n: number) => `https://i.imgur.com/${String(n).padStart(7, '0')}.png`

test('two replicas on one prefix see each other’s jobs, links, changes and epoch', async (t) => {
  const { a, b } = await fleet(t)
  const added = job(2, { owner: 'alice' })
  await a.add(added)
  assert.equal((await b.get(added.id))?.id, added.id)
  const change = heard(a, added.id, 1)
  assert.equal(await b.complete(added.id, 0, { link: link(1), reused: false }), true)
  const seen = await change
  assert.equal(seen.items[0]?.link, link(1), 'a subscriber at one hears a change made at the other')
  assert.deepEqual(await a.links(), [link(1)])
  assert.deepEqual(await a.links('alice'), [link(1)])
  assert.deepEqual(await a.stats(), await b.stats())
  assert.equal(a.epoch, b.epoch)
})

test('items survive the scripts’ JSON whatever their characters', async (t) => {
  const { a } = await fleet(t)
  const urls = [
    'https://a.example/p\\/q\\\\/r//s?x="1"',
    'https://ü.example/日本/😀.png',
    'https://a.example/\u2028',
  ]
  const added = createJob(
    urls,
    urls.map((url) => `${url}#t`),
  )
  const expected = structuredClone(added)
  await a.add(added)
  const done = { link: 'https://i.imgur.com/a\\/b.png', reused: false, deletehash: '/\\"' }
  for (const [index, item] of expected.items.entries()) {
    await a.start(added.id, index)
    await a.complete(added.id, index, done)
    startItem(expected, item)
    completeItem(expected, item, done)
  }
  const view = await a.get(added.id)
  assert.deepEqual(view?.items, expected.items)
})

test("nested objects read back in the model's key order, whatever order the scripts' cjson wrote", async (t) => {
  const { a } = await fleet(t)
  const added = job(2, { album: { title: 'order' } })
  const expected = structuredClone(added)
  await a.add(added)
  const outcome = {
    link: 'https://i.imgur.com/c.png',
    reused: false,
    deletehash: 'd',
    converted: { from: 'image/webp', to: 'image/png' },
    reencoded: { fromBytes: 30_000_000, toBytes: 19_000_000 },
  }
  const reason = { code: 'download_http_status', message: 'origin answered HTTP 404' }
  const [first, second] = expected.items
  await a.start(added.id, 0)
  await a.complete(added.id, 0, outcome)
  startItem(expected, first as (typeof expected.items)[number])
  completeItem(expected, first as (typeof expected.items)[number], outcome)
  await a.start(added.id, 1)
  await a.fail(added.id, 1, reason)
  startItem(expected, second as (typeof expected.items)[number])
  failItem(expected, second as (typeof expected.items)[number], reason)
  const albumReason = { code: 'imgur_server_error', message: 'Imgur answered HTTP 500' }
  await a.settleAlbum(added.id, { reason: albumReason })
  settleAlbum(expected, { reason: albumReason })
  const view = await a.get(added.id)
  // Byte for byte, as the status document serialises them (deepEqual ignores key order).
  assert.equal(JSON.stringify(view?.items), JSON.stringify(expected.items))
  assert.equal(JSON.stringify(view?.album?.reason), JSON.stringify(albumReason))
})

test('each event is emitted once across the fleet', async (t) => {
  const { a, b } = await fleet(t)
  const seen = tally(a, b)
  const jobs = Array.from({ length: 20 }, (_, n) => job(3, n % 2 ? { album: { title: `${n}` } } : {}))
  for (const added of jobs) await a.add(added)
  await Promise.all(
    jobs.flatMap((added) =>
      [0, 1, 2].flatMap((i) => [
        a.complete(added.id, i, { link: link(i), reused: false }),
        b.fail(added.id, i, { code: 'download_timeout', message: 'too slow' }),
      ]),
    ),
  )
  const albums = jobs.filter((added) => added.album !== undefined)
  const settled = await Promise.allSettled(
    albums.flatMap((added) =>
      [a, b].map((store) => store.settleAlbum(added.id, { link: 'https://imgur.com/a/x', id: 'x' })),
    ),
  )
  assert.equal(settled.filter(({ status }) => status === 'fulfilled').length, albums.length)
  for (const added of jobs) {
    const expected = added.album ? ['itemsSettled', 'complete'] : ['complete']
    assert.deepEqual(seen.get(added.id), expected, added.id)
  }
})

test('transitions stay atomic under concurrency: counters exact, each link once', async (t) => {
  const { a, b } = await fleet(t)
  const seen = tally(a, b)
  const added = job(200)
  await a.add(added)
  assert.equal((await b.stats()).pendingItems, 200)
  const attempts = await Promise.all(
    Array.from({ length: 100 }, (_, n) => (n % 2 ? a : b).start(added.id, 7)),
  )
  assert.deepEqual(
    attempts.toSorted((x, y) => (x ?? 0) - (y ?? 0)),
    Array.from({ length: 100 }, (_, n) => n + 1),
  )
  const won = await Promise.all(
    added.items.flatMap((_, i) => [
      (i % 2 ? a : b).complete(added.id, i, { link: link(i % 50), reused: false }),
      (i % 2 ? b : a).fail(added.id, i, { code: 'download_timeout', message: 'too slow' }),
    ]),
  )
  for (let i = 0; i < 200; i += 1) assert.equal(Number(won[2 * i]) + Number(won[2 * i + 1]), 1, `item ${i}`)
  const view = await a.get(added.id)
  assert.ok(view)
  assert.equal(view.pending, 0)
  assert.equal(view.version, 100 + 200)
  assert.equal(view.items[7]?.attempts, 100)
  assert.deepEqual(await b.stats(), { pendingItems: 0, pendingBytes: 0, jobs: 1 })
  assert.deepEqual(await b.counts(), { pending: 0, 'in-progress': 0, complete: 1 })
  const links = await b.links()
  const uploaded = new Set(view.items.flatMap((item) => (item.link === undefined ? [] : [item.link])))
  assert.equal(links.length, new Set(links).size, 'each link once')
  assert.deepEqual(new Set(links), uploaded)
  assert.deepEqual(seen.get(added.id), ['complete'])
})

test('a replica listens to the changes channel only while it watches a job', async (t) => {
  const { a, b, prefix } = await fleet(t)
  const probe = connectRedis(server.url)
  t.after(() => probe.quit())
  await whenReady(probe)
  const listeners = async () => ((await probe.pubsub('NUMSUB', `${prefix}:changed`)) as [string, number])[1]
  const until = async (count: number, what: string) => {
    for (const deadline = Date.now() + 5_000; (await listeners()) !== count; ) {
      assert.ok(Date.now() < deadline, what)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  const added = job(2)
  await a.add(added)
  assert.equal(await listeners(), 0, 'nobody watches: no replica is woken by each change')
  // Published before the subscription holds (here, before the watch): the job is read once it holds.
  await b.complete(added.id, 0, { link: link(1), reused: false })
  assert.equal((await heard(a, added.id, 1)).items[0]?.state, 'complete')
  await until(0, 'heard, the watch ended and so did the subscription')
  const versions: number[] = []
  const stop = a.subscribe(added.id, (view) => versions.push(view.version))
  await until(1, 'subscribed again while watched')
  await b.fail(added.id, 1, { code: 'download_timeout', message: 'too slow' })
  const settled = (await b.get(added.id))?.version as number
  for (const deadline = Date.now() + 5_000; versions.at(-1) !== settled; ) {
    assert.ok(Date.now() < deadline, `version ${settled} heard, got ${versions}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  stop()
  await until(0, 'unsubscribed once nothing is watched')
})

test('without Redis operations fail fast with store_unavailable, and work again once it is back', async (t) => {
  const own = await startRedis()
  const { store, redis, close } = await replica(own.url, 'fail')
  t.after(close)
  const added = job(2)
  await store.add(added)
  const epoch = store.epoch
  await own.stop()
  const began = performance.now()
  const unavailable = (error: unknown) =>
    isServiceError(error) && error.code === 'store_unavailable' && error.retryAfterMs === 5_000
  await assert.rejects(store.get(added.id), unavailable)
  await assert.rejects(store.complete(added.id, 0, { link: link(1), reused: false }), unavailable)
  await assert.rejects(store.add(job(1)), unavailable)
  await assert.rejects(store.stats(), unavailable)
  await assert.rejects(store.links(), unavailable)
  assert.ok(performance.now() - began < 1_000, `failed within ${performance.now() - began} ms`)

  const again = await startRedis(own.port)
  t.after(() => again.stop())
  if (redis.status !== 'ready') await once(redis, 'ready')
  // Nothing was persisted: the fleet starts over, with a new list of links and so a new epoch.
  assert.equal(await store.get(added.id), undefined)
  const fresh = job(1)
  await store.add(fresh)
  const change = heard(store, fresh.id, 1)
  await store.fail(fresh.id, 0, { code: 'download_timeout', message: 'too slow' })
  assert.equal((await change).items[0]?.state, 'failed', 'the subscriber is back too')
  assert.notEqual(store.epoch, epoch)
})

test('counts leave out finished jobs past the retention age that no later finish has swept', async (t) => {
  const clock = { now: 1_700_000_000_000 }
  const redis = connectRedis(server.url)
  const store = await RedisJobStore.open(redis, {
    prefix: `t-${randomUUID()}`,
    retentionCount: 100,
    retentionMs: 60_000,
    now: () => clock.now,
  })
  t.after(async () => {
    await store.close()
    await redis.quit()
  })
  for (const offset of [0, 1]) {
    clock.now += offset
    const added = job(1)
    await store.add(added)
    await store.complete(added.id, 0, { link: link(offset), reused: false })
  }
  await store.add(job(1))
  assert.deepEqual(await store.counts(), { pending: 1, 'in-progress': 0, complete: 2 })
  // The first finished 60 s ago to the millisecond: no longer held; the second one still is.
  clock.now += 59_999
  assert.deepEqual(await store.counts(), { pending: 1, 'in-progress': 0, complete: 1 })
  const { pendingItems, jobs } = await store.stats()
  assert.deepEqual({ pendingItems, jobs }, { pendingItems: 1, jobs: 2 })
  clock.now += 1
  assert.deepEqual(await store.counts(), { pending: 1, 'in-progress': 0, complete: 0 })
})

test('an album owed by a replica that stopped before making it is taken up by another after the lease', async (t) => {
  const prefix = `t-${randomUUID()}`
  // Replica a settles the last item, then dies: nothing of its own listens (no album is made).
  const a = await replica(server.url, prefix)
  const b = await replica(server.url, prefix, undefined, 100)
  t.after(() => Promise.all([a.close(), b.close()]))
  const added = job(1, { album: { title: 'owed' } })
  await a.store.add(added)
  await a.store.start(added.id, 0)
  await a.store.complete(added.id, 0, { link: 'https://i.imgur.com/a.png', reused: false })
  const taken: string[] = []
  b.store.on('itemsSettled', (view) => taken.push(view.id))

  assert.deepEqual(await b.store.reclaim(), [], 'within the lease, its replica may still be making it')
  await new Promise((resolve) => setTimeout(resolve, 150))
  const [view] = await b.store.reclaim()
  assert.equal(view?.id, added.id)
  assert.equal(view?.album?.state, 'pending')
  assert.deepEqual(taken, [added.id], 'emitted where albums are made')
  assert.deepEqual(await b.store.reclaim(), [], 'taken for a lease of its own')

  // Made at last: nothing is owed any more, however long one waits.
  await b.store.settleAlbum(added.id, { link: 'https://imgur.com/a/x', id: 'x' })
  await new Promise((resolve) => setTimeout(resolve, 150))
  assert.deepEqual(await b.store.reclaim(), [])
  assert.equal((await b.store.get(added.id))?.album?.state, 'complete')
  assert.deepEqual(taken, [added.id])
})

test('a store where nothing makes albums takes none up', async (t) => {
  const prefix = `t-${randomUUID()}`
  const a = await replica(server.url, prefix, undefined, 1)
  t.after(() => a.close())
  const added = job(1, { album: { title: 'api only' } })
  await a.store.add(added)
  await a.store.fail(added.id, 0, { code: 'download_failed', message: 'gone' })
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.deepEqual(await a.store.reclaim(), [])
  a.store.on('itemsSettled', () => {})
  assert.deepEqual(
    (await a.store.reclaim()).map((view) => view.id),
    [added.id],
  )
})
