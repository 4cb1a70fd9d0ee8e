/**
 * What every JobStore must do, as tests any implementation runs (memory: test/jobs/
 * store-contract.test.ts; Redis: test/fleet/store.test.ts). What a store shows is checked
 * against the model's own transitions applied to a copy of the job, with the store's clock.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, type TestContext, test } from 'node:test'
import type { JobStore, JobView } from '../../src/jobs/contract.ts'
import {
  completeItem,
  createJob,
  failItem,
  type Item,
  itemBytes,
  type Job,
  type JobOptions,
  jobStatus,
  type Outcome,
  type Reason,
  settleAlbum,
  startItem,
} from '../../src/jobs/model.ts'

export type ContractOptions = { retentionCount: number; retentionMs: number; now: () => number }
export type MakeStore = (options: ContractOptions) => Promise<{ store: JobStore; close(): Promise<void> }>

const REASON: Reason = { code: 'download_http_status', message: 'The origin answered 404' }
const CANCELLED: Reason = { code: 'cancelled', message: 'The job was cancelled' }

function outcome(link: string): Outcome {
  return { link, reused: false, imageId: link.slice(-11, -4), deletehash: `dh-${link.slice(-11, -4)}` }
}

function at(job: Job, index: number): Item {
  const item = job.items[index]
  assert.ok(item, `item ${index}`)
  return item
}

/** Positions in each of the API's lists. */
function lists(job: JobView | undefined) {
  assert.ok(job)
  const positions = (state: string) => job.items.flatMap((item, i) => (item.state === state ? [i] : []))
  return { pending: positions('pending'), complete: positions('complete'), failed: positions('failed') }
}

/** Resolves with the job once a listener of its hears `version` (or a later one). */
function heard(store: JobStore, id: string, version: number): Promise<JobView> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop()
      reject(new Error(`version ${version} of ${id} was not heard within 5 s`))
    }, 5_000)
    const stop = store.subscribe(id, (job) => {
      if (job.version < version) return
      clearTimeout(timer)
      stop()
      resolve(job)
    })
  })
}

/** The events a store emits, as (event, job id, status then). */
function events(store: JobStore) {
  const seen: [string, string, string][] = []
  store.on('itemsSettled', (job) => seen.push(['itemsSettled', job.id, jobStatus(job as Job)]))
  store.on('complete', (job) => seen.push(['complete', job.id, jobStatus(job as Job)]))
  return seen
}

export function storeContract(name: string, make: MakeStore): void {
  describe(`JobStore contract: ${name}`, () => {
    async function open(t: TestContext, retention: Partial<Omit<ContractOptions, 'now'>> = {}) {
      const clock = { now: 1_750_000_000_000 }
      const options = { retentionCount: 100, retentionMs: 60_000, ...retention, now: () => clock.now }
      const { store, close } = await make(options)
      t.after(close)
      /** A job added to the store, and the copy the model's transitions keep as expected. */
      async function add(count: number, options: JobOptions = {}) {
        const urls = Array.from(
          { length: count },
          (_, i) => `https://images.example/${randomUUID()}/${i}.png`,
        )
        const job = createJob(urls, urls, options, clock.now)
        const expected = structuredClone(job)
        await store.add(job)
        return { id: job.id, expected }
      }
      /** A job whose only item completes with `link`. */
      async function finished(link: string, options: JobOptions = {}) {
        const { id } = await add(1, options)
        assert.equal(await store.complete(id, 0, outcome(link)), true)
        return id
      }
      return { store, clock, add, finished }
    }

    test('add then get gives the job back; an unknown id gives undefined', async (t) => {
      const { store, clock } = await open(t)
      const job = createJob(
        ['https://a.example/1.png', 'https://a.example/2.webp?x=1'],
        ['https://a.example/1.png', 'https://b.example/2.webp'],
        { clientId: 'c1', owner: 'alice', album: { title: 'Trip' }, webhookUrl: 'https://hooks.example/h' },
        clock.now,
      )
      const expected = structuredClone(job)
      await store.add(job)
      assert.deepEqual(await store.get(expected.id), expected)
      assert.equal(await store.get(randomUUID()), undefined)
    })

    test('start counts attempts; complete and fail move items into the three lists', async (t) => {
      const { store, clock, add } = await open(t)
      const { id, expected } = await add(3)
      assert.equal(await store.start(id, 0), 1)
      assert.equal(await store.start(id, 0), 2)
      assert.equal(await store.start(id, 1), 1)
      startItem(expected, at(expected, 0))
      startItem(expected, at(expected, 0))
      startItem(expected, at(expected, 1))
      const done: Outcome = {
        link: 'https://i.imgur.com/aaaaaaa.png',
        reused: true,
        imageId: 'aaaaaaa',
        deletehash: undefined,
        converted: { from: 'image/webp', to: 'image/jpeg' },
        reencoded: { fromBytes: 30_000_000, toBytes: 9_000_000 },
      }
      clock.now += 10
      assert.equal(await store.complete(id, 0, done), true)
      completeItem(expected, at(expected, 0), done, clock.now)
      assert.equal(await store.fail(id, 1, REASON), true)
      failItem(expected, at(expected, 1), REASON, clock.now)
      const job = await store.get(id)
      assert.deepEqual(job, expected)
      assert.deepEqual(lists(job), { pending: [2], complete: [0], failed: [1] })
      assert.equal(jobStatus(job as Job), 'in-progress')
    })

    test('complete, fail and start on an item no longer pending answer no and change nothing', async (t) => {
      const { store, add } = await open(t)
      const { id } = await add(2)
      assert.equal(await store.complete(id, 0, outcome('https://i.imgur.com/bbbbbbb.png')), true)
      assert.equal(await store.fail(id, 1, REASON), true)
      const before = structuredClone(await store.get(id))
      const stats = await store.stats()
      assert.equal(await store.complete(id, 0, outcome('https://i.imgur.com/ccccccc.png')), false)
      assert.equal(await store.complete(id, 1, outcome('https://i.imgur.com/ccccccc.png')), false)
      assert.equal(await store.fail(id, 0, CANCELLED), false)
      assert.equal(await store.start(id, 1), undefined)
      assert.deepEqual(await store.get(id), before)
      assert.deepEqual(await store.stats(), stats)
      assert.deepEqual(await store.links(), ['https://i.imgur.com/bbbbbbb.png'])
    })

    test('every change moves the version', async (t) => {
      const { store, add } = await open(t)
      const { id } = await add(2, { album: {}, webhookUrl: 'https://hooks.example/h' })
      const versions = [(await store.get(id))?.version]
      const version = async () => versions.push((await store.get(id))?.version)
      await store.start(id, 0)
      await version()
      await store.retrying(id, 0)
      await version()
      await store.complete(id, 0, outcome('https://i.imgur.com/ddddddd.png'))
      await version()
      await store.fail(id, 1, REASON)
      await version()
      await store.settleAlbum(id, { reason: { code: 'album_empty', message: 'No image to put in it' } })
      await version()
      await store.webhookChanged(id, { state: 'delivered', attempts: 1 })
      await version()
      assert.deepEqual(versions, [0, 1, 2, 3, 4, 5, 6])
    })

    test('cancel fails every pending item, keeps complete ones, and answers the positions', async (t) => {
      const { store, clock, add } = await open(t)
      const { id, expected } = await add(4)
      await store.start(id, 1)
      startItem(expected, at(expected, 1))
      await store.complete(id, 0, outcome('https://i.imgur.com/eeeeeee.png'))
      completeItem(expected, at(expected, 0), outcome('https://i.imgur.com/eeeeeee.png'), clock.now)
      clock.now += 5
      assert.deepEqual(await store.cancel(id, CANCELLED), [1, 2, 3])
      for (const index of [1, 2, 3]) failItem(expected, at(expected, index), CANCELLED, clock.now)
      assert.deepEqual(await store.get(id), expected)
      assert.deepEqual(await store.cancel(id, CANCELLED), [])
      assert.equal(await store.complete(id, 2, outcome('https://i.imgur.com/eeeeee2.png')), false)
      assert.equal(await store.start(id, 3), undefined)
      assert.deepEqual(await store.get(id), expected, 'nothing changes a cancelled item')
      assert.deepEqual(await store.stats(), { pendingItems: 0, pendingBytes: 0, jobs: 1 })
    })

    test('the last item settled emits complete once, or itemsSettled while an album is pending', async (t) => {
      const { store, add } = await open(t)
      const seen = events(store)
      const plain = await add(2)
      const album = await add(1, { album: { title: 'A' } })
      const cancelled = await add(2)
      await store.complete(plain.id, 0, outcome('https://i.imgur.com/fffffff.png'))
      assert.deepEqual(seen, [])
      await store.fail(plain.id, 1, REASON)
      await store.fail(plain.id, 1, REASON)
      await store.complete(album.id, 0, outcome('https://i.imgur.com/ggggggg.png'))
      await store.settleAlbum(album.id, {
        link: 'https://imgur.com/a/hhhhhhh',
        id: 'hhhhhhh',
        deletehash: 'x',
      })
      await store.cancel(cancelled.id, CANCELLED)
      await store.cancel(cancelled.id, CANCELLED)
      assert.deepEqual(seen, [
        ['complete', plain.id, 'complete'],
        ['itemsSettled', album.id, 'in-progress'],
        ['complete', album.id, 'complete'],
        ['complete', cancelled.id, 'complete'],
      ])
    })

    test('settleAlbum records the album made or failed, and the job is complete', async (t) => {
      const { store, clock, add } = await open(t)
      const made = await add(1, { album: { title: 'Made', description: 'ok' } })
      const failed = await add(1, { album: {} })
      for (const { id, expected } of [made, failed]) {
        await store.complete(id, 0, outcome('https://i.imgur.com/iiiiiii.png'))
        completeItem(expected, at(expected, 0), outcome('https://i.imgur.com/iiiiiii.png'), clock.now)
      }
      clock.now += 1_000
      const album = { link: 'https://imgur.com/a/jjjjjjj', id: 'jjjjjjj', deletehash: undefined }
      await store.settleAlbum(made.id, album)
      settleAlbum(made.expected, album, clock.now)
      const reason = { code: 'imgur_rejected', message: 'Imgur refused the album' }
      await store.settleAlbum(failed.id, { reason })
      settleAlbum(failed.expected, { reason }, clock.now)
      assert.deepEqual(await store.get(made.id), made.expected)
      assert.deepEqual(await store.get(failed.id), failed.expected)
      assert.deepEqual(await store.counts(), { pending: 0, 'in-progress': 0, complete: 2 })
    })

    test('webhookChanged records how the delivery goes', async (t) => {
      const { store, add } = await open(t)
      const { id, expected } = await add(1, { webhookUrl: 'https://hooks.example/h' })
      await store.webhookChanged(id, { state: 'pending', attempts: 1, lastError: 'HTTP 500' })
      await store.webhookChanged(id, { attempts: 2 })
      Object.assign(expected, { version: 2 })
      Object.assign(expected.webhook ?? {}, { attempts: 2, lastError: 'HTTP 500' })
      assert.deepEqual(await store.get(id), expected)
    })

    test('links are kept each once, in upload order, and per owner', async (t) => {
      const { store, add } = await open(t)
      const link = (n: number) => `https://i.imgur.com/link${n}00.png`
      const alice = await add(2, { owner: 'alice' })
      const bob = await add(2, { owner: 'bob' })
      const anonymous = await add(2)
      await store.complete(alice.id, 0, outcome(link(1)))
      await store.complete(bob.id, 0, outcome(link(2)))
      await store.complete(alice.id, 1, outcome(link(2)))
      await store.complete(anonymous.id, 0, outcome(link(1)))
      await store.complete(bob.id, 1, outcome(link(3)))
      await store.complete(anonymous.id, 1, outcome(link(4)))
      assert.deepEqual(await store.links(), [link(1), link(2), link(3), link(4)])
      assert.deepEqual(await store.links('alice'), [link(1), link(2)])
      assert.deepEqual(await store.links('bob'), [link(2), link(3)])
      assert.deepEqual(await store.links('carol'), [])
    })

    test('counts and stats give the jobs held by status and the pending items and bytes', async (t) => {
      const { store, add, finished } = await open(t)
      const waiting = await add(2)
      const running = await add(3)
      await finished('https://i.imgur.com/kkkkkkk.png')
      await store.start(running.id, 0)
      await store.complete(running.id, 1, outcome('https://i.imgur.com/lllllll.png'))
      const pending = [...waiting.expected.items, at(running.expected, 0), at(running.expected, 2)]
      assert.deepEqual(await store.counts(), { pending: 1, 'in-progress': 1, complete: 1 })
      assert.deepEqual(await store.stats(), {
        pendingItems: 4,
        pendingBytes: pending.reduce((sum, item) => sum + itemBytes(item), 0),
        jobs: 3,
      })
    })

    test('past the retention count the oldest finished jobs go; pending ones and links stay', async (t) => {
      const { store, clock, add, finished } = await open(t, { retentionCount: 2 })
      const waiting = await add(1)
      const ids: string[] = []
      for (const n of [1, 2, 3]) {
        clock.now += 1
        ids.push(await finished(`https://i.imgur.com/mmmmmm${n}.png`))
      }
      const [first, second, third] = ids as [string, string, string]
      assert.equal(await store.get(first), undefined)
      assert.ok(await store.get(second))
      assert.ok(await store.get(third))
      assert.ok(await store.get(waiting.id))
      assert.deepEqual(await store.counts(), { pending: 1, 'in-progress': 0, complete: 2 })
      assert.equal((await store.stats()).jobs, 3)
      assert.equal((await store.links()).length, 3)
    })

    test('finished jobs older than the retention age go; pending ones never', async (t) => {
      const { store, clock, add, finished } = await open(t, { retentionMs: 60_000 })
      const waiting = await add(1)
      const old = await finished('https://i.imgur.com/nnnnnn1.png')
      clock.now += 59_999
      const newer = await finished('https://i.imgur.com/nnnnnn2.png')
      assert.ok(await store.get(old), 'kept until it is retentionMs old')
      clock.now += 1
      const newest = await finished('https://i.imgur.com/nnnnnn3.png')
      assert.equal(await store.get(old), undefined)
      assert.ok(await store.get(newer))
      assert.ok(await store.get(newest))
      assert.ok(await store.get(waiting.id))
      assert.deepEqual(await store.counts(), { pending: 1, 'in-progress': 0, complete: 2 })
    })

    test('subscribers hear changes until they unsubscribe', async (t) => {
      const { store, add } = await open(t)
      const { id } = await add(3)
      const versions: number[] = []
      const stop = store.subscribe(id, (job) => versions.push(job.version))
      let next = heard(store, id, 1)
      await store.fail(id, 0, REASON)
      assert.equal((await next).version, 1)
      assert.deepEqual(versions, [1])
      stop()
      next = heard(store, id, 2)
      await store.complete(id, 1, outcome('https://i.imgur.com/ooooooo.png'))
      await next
      assert.deepEqual(versions, [1], 'not called after its unsubscribe')
    })

    test('the epoch is a stable name', async (t) => {
      const { store, finished } = await open(t)
      const { epoch } = store
      assert.equal(typeof epoch, 'string')
      assert.ok(epoch.length > 0)
      await finished('https://i.imgur.com/ppppppp.png')
      assert.equal(store.epoch, epoch)
    })
  })
}
