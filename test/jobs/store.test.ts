import assert from 'node:assert/strict'
import { test } from 'node:test'
import { viewJob } from '../../src/http/status.ts'
import type { JobView } from '../../src/jobs/contract.ts'
import { createJob, itemBytes, JOB_OVERHEAD_BYTES } from '../../src/jobs/model.ts'
import { MemoryJobStore } from '../../src/jobs/store.ts'

async function finishedJob(store: MemoryJobStore, link: string, owner?: string) {
  const job = createJob([`https://a.test/${link}`], [`https://a.test/${link}`], { owner })
  await store.add(job)
  assert.equal(await store.start(job.id, 0), 1)
  assert.equal(await store.complete(job.id, 0, { link: link, reused: false }), true)
  return job
}

/** The job as the store hands it out now. */
async function viewOf(store: MemoryJobStore, id: string): Promise<JobView> {
  const job = await store.get(id)
  assert.ok(job, `the store holds job ${id}`)
  return job
}

test('options are checked at construction with exact messages', () => {
  assert.throws(
    () => new MemoryJobStore({ retentionCount: 0, retentionMs: 1 }),
    /Expected `retentionCount` to be an integer >= 1, got `0`/,
  )
})

test('links are kept once each, in upload order, even after their jobs are forgotten', async (t) => {
  const store = new MemoryJobStore({ retentionCount: 1, retentionMs: 60_000 })
  t.after(() => store.close())
  const first = await finishedJob(store, 'https://i.imgur.com/a.png')
  const second = await finishedJob(store, 'https://i.imgur.com/b.png')
  await finishedJob(store, 'https://i.imgur.com/a.png')
  assert.deepEqual(await store.links(), ['https://i.imgur.com/a.png', 'https://i.imgur.com/b.png'])
  assert.equal(await store.get(first.id), undefined, 'the oldest finished job is dropped beyond the count')
  assert.equal(await store.get(second.id), undefined)
  assert.equal(store.size, 1)
})

test('finished jobs older than the retention age are swept; unfinished ones never', async (t) => {
  let now = 1_000
  const store = new MemoryJobStore({ retentionCount: 100, retentionMs: 500, now: () => now })
  t.after(() => store.close())
  const done = await finishedJob(store, 'https://i.imgur.com/a.png')
  const open = createJob(['https://a.test/x'], ['https://a.test/x'])
  await store.add(open)
  now = 1_499
  store.sweep()
  assert.ok(await store.get(done.id))
  now = 1_500
  store.sweep()
  assert.equal(await store.get(done.id), undefined)
  assert.equal(await store.get(open.id), open)
  assert.equal(store.pendingItems, 1)
})

test('subscribers hear every change of their job until they unsubscribe', async (t) => {
  const store = new MemoryJobStore({ retentionCount: 10, retentionMs: 60_000 })
  t.after(() => store.close())
  const job = createJob(['https://a.test/1', 'https://a.test/2'], ['https://a.test/1', 'https://a.test/2'])
  await store.add(job)
  const seen: string[] = []
  const stop = store.subscribe(job.id, (changed) => seen.push(viewJob(changed).status))
  await store.start(job.id, 0)
  await store.fail(job.id, 0, { code: 'x', message: 'y' })
  stop()
  await store.start(job.id, 1)
  await store.complete(job.id, 1, { link: 'https://i.imgur.com/z.png', reused: false })
  assert.deepEqual(seen, ['in-progress', 'in-progress'])
  assert.equal(store.pendingItems, 0)
})

test('counts gives the jobs held by status', async (t) => {
  const store = new MemoryJobStore({ retentionCount: 10, retentionMs: 60_000 })
  t.after(() => store.close())
  await finishedJob(store, 'https://i.imgur.com/a.png')
  const waiting = createJob(['https://a.test/1'], ['https://a.test/1'])
  await store.add(waiting)
  const running = createJob(
    ['https://a.test/2', 'https://a.test/3'],
    ['https://a.test/2', 'https://a.test/3'],
  )
  await store.add(running)
  await store.start(running.id, 0)
  assert.deepEqual(await store.counts(), { pending: 1, 'in-progress': 1, complete: 1 })
  assert.deepEqual(await store.stats(), {
    pendingItems: 3,
    pendingBytes: store.pendingBytes,
    jobs: 3,
  })
})

test('each owner sees only the links of its own jobs; the full list holds all of them once', async (t) => {
  const store = new MemoryJobStore({ retentionCount: 100, retentionMs: 60_000 })
  t.after(() => store.close())
  await finishedJob(store, 'https://i.imgur.com/a.png', 'alice')
  await finishedJob(store, 'https://i.imgur.com/b.png', 'bob')
  await finishedJob(store, 'https://i.imgur.com/a.png', 'bob')
  await finishedJob(store, 'https://i.imgur.com/a.png', 'alice')
  assert.deepEqual(await store.links('alice'), ['https://i.imgur.com/a.png'])
  assert.deepEqual(await store.links('bob'), ['https://i.imgur.com/b.png', 'https://i.imgur.com/a.png'])
  assert.deepEqual(await store.links('carol'), [])
  assert.deepEqual(await store.links(), ['https://i.imgur.com/a.png', 'https://i.imgur.com/b.png'])
})

test('the version of a job changes with every change its status document shows', async (t) => {
  const store = new MemoryJobStore({ retentionCount: 100, retentionMs: 60_000 })
  t.after(() => store.close())
  const job = createJob(['https://a.test/1'], ['https://a.test/1'])
  await store.add(job)
  const version = async () => (await viewOf(store, job.id)).version
  const seen = [await version()]
  assert.equal(await store.start(job.id, 0), 1, 'the first attempt')
  seen.push(await version())
  await store.retrying(job.id, 0)
  seen.push(await version())
  assert.equal(await store.start(job.id, 0), 2, 'the second attempt')
  seen.push(await version())
  await store.fail(job.id, 0, { code: 'x', message: 'x' })
  seen.push(await version())
  assert.equal(new Set(seen).size, seen.length, `versions ${seen.join(',')} must all differ`)
})

test('an item no longer pending is neither started, completed nor failed again', async (t) => {
  const store = new MemoryJobStore({ retentionCount: 100, retentionMs: 60_000 })
  t.after(() => store.close())
  const job = createJob(['https://a.test/1'], ['https://a.test/1'])
  await store.add(job)
  await store.start(job.id, 0)
  assert.equal(await store.fail(job.id, 0, { code: 'x', message: 'first' }), true)
  const before = await viewOf(store, job.id)
  const { version } = before
  assert.equal(await store.start(job.id, 0), undefined)
  assert.equal(await store.complete(job.id, 0, { link: 'https://i.imgur.com/1.png', reused: false }), false)
  assert.equal(await store.fail(job.id, 0, { code: 'y', message: 'second' }), false)
  const after = await viewOf(store, job.id)
  assert.equal(after.version, version)
  assert.deepEqual(viewJob(after).items[0], {
    url: 'https://a.test/1',
    state: 'failed',
    attempts: 1,
    reason: { code: 'x', message: 'first' },
  })
  assert.deepEqual(await store.links(), [])
  assert.equal(await store.start('no-such-job', 0), undefined)
  assert.equal(await store.fail(job.id, 5, { code: 'x', message: 'no such item' }), false)
})

test('pending bytes count the items not yet settled and return to zero', async (t) => {
  const store = new MemoryJobStore({ retentionCount: 100, retentionMs: 60_000 })
  t.after(() => store.close())
  const urls = ['https://a.test/1', 'https://a.test/2']
  const job = createJob(urls, urls)
  await store.add(job)
  const [first, second] = job.items
  assert.ok(first && second)
  assert.equal(store.pendingBytes, itemBytes(first) + itemBytes(second))
  await store.start(job.id, 0)
  await store.complete(job.id, 0, { link: 'https://i.imgur.com/1.png', reused: false })
  assert.equal(store.pendingBytes, itemBytes(second))
  await store.start(job.id, 1)
  await store.fail(job.id, 1, { code: 'x', message: 'failed' })
  assert.equal(store.pendingBytes, 0)
  assert.equal(store.retainedBytes, JOB_OVERHEAD_BYTES + itemBytes(first) + itemBytes(second))
})

test('finished jobs beyond the byte budget are forgotten oldest first', async (t) => {
  const probe = new MemoryJobStore({ retentionCount: 100, retentionMs: 60_000 })
  await finishedJob(probe, 'https://i.imgur.com/0.png')
  await probe.close()
  const one = probe.retainedBytes
  const store = new MemoryJobStore({ retentionCount: 100, retentionMs: 60_000, retentionBytes: one * 2 })
  t.after(() => store.close())
  const first = await finishedJob(store, 'https://i.imgur.com/1.png')
  const second = await finishedJob(store, 'https://i.imgur.com/2.png')
  const third = await finishedJob(store, 'https://i.imgur.com/3.png')
  assert.equal(await store.get(first.id), undefined)
  assert.ok(await store.get(second.id))
  assert.ok(await store.get(third.id))
  assert.ok(store.retainedBytes <= one * 2)
})

test('an item counts the normalised URL only when it differs, and two-byte strings twice', () => {
  const [same] = createJob(['https://a.test/x'], ['https://a.test/x']).items
  const [fragment] = createJob(['https://a.test/x#f'], ['https://a.test/x']).items
  const [wide] = createJob(['https://a.test/ж'], ['https://a.test/ж']).items
  assert.ok(same && fragment && wide)
  assert.equal(itemBytes(fragment) - itemBytes(same), 2 * ('#f'.length + 'https://a.test/x'.length))
  assert.equal(itemBytes(wide) - itemBytes(same), 2 * 'https://a.test/ж'.length)
})

test('cancel fails every pending item at once, keeps complete ones, and announces the job once', async (t) => {
  const store = new MemoryJobStore({ retentionCount: 10, retentionMs: 60_000 })
  t.after(() => store.close())
  const urls = ['https://a.test/1', 'https://a.test/2', 'https://a.test/3']
  const reason = { code: 'cancelled', message: 'the client cancelled the job before this URL finished' }
  const job = createJob(urls, urls)
  await store.add(job)
  await store.start(job.id, 0)
  await store.complete(job.id, 0, { link: 'https://i.imgur.com/a.png', reused: false })
  await store.start(job.id, 1)
  const changes: string[] = []
  store.subscribe(job.id, (changed) => changes.push(viewJob(changed).status))
  const completed: string[] = []
  store.on('complete', (finished) => completed.push(finished.id))

  const cancelled = await store.cancel(job.id, reason)
  assert.deepEqual(
    cancelled.map((index) => urls[index]),
    urls.slice(1),
  )
  const view = viewJob(await viewOf(store, job.id))
  assert.equal(view.status, 'complete')
  assert.deepEqual(view.uploaded, {
    pending: [],
    complete: ['https://i.imgur.com/a.png'],
    failed: urls.slice(1),
  })
  assert.deepEqual(view.items[2]?.reason, reason)
  assert.deepEqual(changes, ['complete'], 'one change for the whole cancellation')
  assert.deepEqual(completed, [job.id])
  assert.equal(store.pendingItems, 0)
  assert.equal(store.pendingBytes, 0)
  assert.deepEqual(await store.cancel(job.id, reason), [], 'a second cancel finds nothing to do')
  assert.equal(
    await store.complete(job.id, 1, { link: 'https://i.imgur.com/late.png', reused: false }),
    false,
    'an upload that finishes after the cancellation changes nothing',
  )
  assert.deepEqual(await store.links(), ['https://i.imgur.com/a.png'])
  assert.deepEqual(changes, ['complete'])
})

test('a cancelled job that asked for an album leaves the album to be made of what completed', async (t) => {
  const store = new MemoryJobStore({ retentionCount: 10, retentionMs: 60_000 })
  t.after(() => store.close())
  const urls = ['https://a.test/1', 'https://a.test/2']
  const job = createJob(urls, urls, { album: { title: 'trip' } })
  await store.add(job)
  await store.start(job.id, 0)
  await store.complete(job.id, 0, { link: 'https://i.imgur.com/a.png', reused: false, imageId: 'a' })
  const settled: string[] = []
  store.on('itemsSettled', (ready) => settled.push(ready.id))
  assert.deepEqual(await store.cancel(job.id, { code: 'cancelled', message: 'cancelled' }), [1])
  assert.deepEqual(settled, [job.id])
  assert.equal(viewJob(await viewOf(store, job.id)).status, 'in-progress', 'the album is still to be made')
  await store.settleAlbum(job.id, { link: 'https://imgur.com/a/x', id: 'x' })
  assert.equal(viewJob(await viewOf(store, job.id)).status, 'complete')
})
