import assert from 'node:assert/strict'
import { test } from 'node:test'
import { viewJob } from '../../src/http/status.ts'
import { createJob, itemBytes, JOB_OVERHEAD_BYTES } from '../../src/jobs/model.ts'
import { JobStore } from '../../src/jobs/store.ts'

function finishedJob(store: JobStore, link: string, owner?: string) {
  const job = createJob([`https://a.test/${link}`], [`https://a.test/${link}`], { owner })
  store.add(job)
  const item = job.items[0]
  assert.ok(item)
  store.start(job, item)
  store.complete(job, item, { link: link, reused: false })
  return job
}

test('options are checked at construction with exact messages', () => {
  assert.throws(
    () => new JobStore({ retentionCount: 0, retentionMs: 1 }),
    /Expected `retentionCount` to be an integer >= 1, got `0`/,
  )
})

test('links are kept once each, in upload order, even after their jobs are forgotten', (t) => {
  const store = new JobStore({ retentionCount: 1, retentionMs: 60_000 })
  t.after(() => store.close())
  const first = finishedJob(store, 'https://i.imgur.com/a.png')
  const second = finishedJob(store, 'https://i.imgur.com/b.png')
  finishedJob(store, 'https://i.imgur.com/a.png')
  assert.deepEqual(store.links(), ['https://i.imgur.com/a.png', 'https://i.imgur.com/b.png'])
  assert.equal(store.get(first.id), undefined, 'the oldest finished job is dropped beyond the count')
  assert.equal(store.get(second.id), undefined)
  assert.equal(store.size, 1)
})

test('finished jobs older than the retention age are swept; unfinished ones never', (t) => {
  let now = 1_000
  const store = new JobStore({ retentionCount: 100, retentionMs: 500, now: () => now })
  t.after(() => store.close())
  const done = finishedJob(store, 'https://i.imgur.com/a.png')
  const open = createJob(['https://a.test/x'], ['https://a.test/x'])
  store.add(open)
  now = 1_499
  store.sweep()
  assert.ok(store.get(done.id))
  now = 1_500
  store.sweep()
  assert.equal(store.get(done.id), undefined)
  assert.equal(store.get(open.id), open)
  assert.equal(store.pendingItems, 1)
})

test('subscribers hear every change of their job until they unsubscribe', (t) => {
  const store = new JobStore({ retentionCount: 10, retentionMs: 60_000 })
  t.after(() => store.close())
  const job = createJob(['https://a.test/1', 'https://a.test/2'], ['https://a.test/1', 'https://a.test/2'])
  store.add(job)
  const seen: string[] = []
  const stop = store.subscribe(job.id, (changed) => seen.push(viewJob(changed).status))
  const [a, b] = job.items
  assert.ok(a && b)
  store.start(job, a)
  store.fail(job, a, { code: 'x', message: 'y' })
  stop()
  store.start(job, b)
  store.complete(job, b, { link: 'https://i.imgur.com/z.png', reused: false })
  assert.deepEqual(seen, ['in-progress', 'in-progress'])
  assert.equal(store.pendingItems, 0)
})

test('counts gives the jobs held by status', (t) => {
  const store = new JobStore({ retentionCount: 10, retentionMs: 60_000 })
  t.after(() => store.close())
  finishedJob(store, 'https://i.imgur.com/a.png')
  const waiting = createJob(['https://a.test/1'], ['https://a.test/1'])
  store.add(waiting)
  const running = createJob(
    ['https://a.test/2', 'https://a.test/3'],
    ['https://a.test/2', 'https://a.test/3'],
  )
  store.add(running)
  store.start(running, running.items[0] as (typeof running.items)[number])
  assert.deepEqual(store.counts(), { pending: 1, 'in-progress': 1, complete: 1 })
})

test('each owner sees only the links of its own jobs; the full list holds all of them once', (t) => {
  const store = new JobStore({ retentionCount: 100, retentionMs: 60_000 })
  t.after(() => store.close())
  finishedJob(store, 'https://i.imgur.com/a.png', 'alice')
  finishedJob(store, 'https://i.imgur.com/b.png', 'bob')
  finishedJob(store, 'https://i.imgur.com/a.png', 'bob')
  finishedJob(store, 'https://i.imgur.com/a.png', 'alice')
  assert.deepEqual(store.links('alice'), ['https://i.imgur.com/a.png'])
  assert.deepEqual(store.links('bob'), ['https://i.imgur.com/b.png', 'https://i.imgur.com/a.png'])
  assert.deepEqual(store.links('carol'), [])
  assert.deepEqual(store.links(), ['https://i.imgur.com/a.png', 'https://i.imgur.com/b.png'])
})

test('the version of a job changes with every change its status document shows', (t) => {
  const store = new JobStore({ retentionCount: 100, retentionMs: 60_000 })
  t.after(() => store.close())
  const job = createJob(['https://a.test/1'], ['https://a.test/1'])
  store.add(job)
  const item = job.items[0]
  assert.ok(item)
  const seen = [job.version]
  store.start(job, item)
  seen.push(job.version)
  store.retrying(job)
  seen.push(job.version)
  store.start(job, item)
  seen.push(job.version)
  store.fail(job, item, { code: 'x', message: 'x' })
  seen.push(job.version)
  assert.equal(new Set(seen).size, seen.length, `versions ${seen.join(',')} must all differ`)
})

test('pending bytes count the items not yet settled and return to zero', (t) => {
  const store = new JobStore({ retentionCount: 100, retentionMs: 60_000 })
  t.after(() => store.close())
  const urls = ['https://a.test/1', 'https://a.test/2']
  const job = createJob(urls, urls)
  store.add(job)
  const [first, second] = job.items
  assert.ok(first && second)
  assert.equal(store.pendingBytes, itemBytes(first) + itemBytes(second))
  store.start(job, first)
  store.complete(job, first, { link: 'https://i.imgur.com/1.png', reused: false })
  assert.equal(store.pendingBytes, itemBytes(second))
  store.start(job, second)
  store.fail(job, second, { code: 'x', message: 'failed' })
  assert.equal(store.pendingBytes, 0)
  assert.equal(store.retainedBytes, JOB_OVERHEAD_BYTES + itemBytes(first) + itemBytes(second))
})

test('finished jobs beyond the byte budget are forgotten oldest first', (t) => {
  const one = (() => {
    const probe = new JobStore({ retentionCount: 100, retentionMs: 60_000 })
    finishedJob(probe, 'https://i.imgur.com/0.png')
    probe.close()
    return probe.retainedBytes
  })()
  const store = new JobStore({ retentionCount: 100, retentionMs: 60_000, retentionBytes: one * 2 })
  t.after(() => store.close())
  const first = finishedJob(store, 'https://i.imgur.com/1.png')
  const second = finishedJob(store, 'https://i.imgur.com/2.png')
  const third = finishedJob(store, 'https://i.imgur.com/3.png')
  assert.equal(store.get(first.id), undefined)
  assert.ok(store.get(second.id))
  assert.ok(store.get(third.id))
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

test('cancel fails every pending item at once, keeps complete ones, and announces the job once', (t) => {
  const store = new JobStore({ retentionCount: 10, retentionMs: 60_000 })
  t.after(() => store.close())
  const urls = ['https://a.test/1', 'https://a.test/2', 'https://a.test/3']
  const reason = { code: 'cancelled', message: 'the client cancelled the job before this URL finished' }
  const job = createJob(urls, urls)
  store.add(job)
  const [done, running] = job.items
  assert.ok(done && running)
  store.start(job, done)
  store.complete(job, done, { link: 'https://i.imgur.com/a.png', reused: false })
  store.start(job, running)
  const changes: string[] = []
  store.subscribe(job.id, (changed) => changes.push(viewJob(changed).status))
  const completed: string[] = []
  store.on('complete', (finished) => completed.push(finished.id))

  const cancelled = store.cancel(job, reason)
  assert.deepEqual(
    cancelled.map((item) => item.url),
    urls.slice(1),
  )
  const view = viewJob(job)
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
  assert.deepEqual(store.cancel(job, reason), [], 'a second cancel finds nothing to do')
  assert.deepEqual(changes, ['complete'])
})

test('a cancelled job that asked for an album leaves the album to be made of what completed', (t) => {
  const store = new JobStore({ retentionCount: 10, retentionMs: 60_000 })
  t.after(() => store.close())
  const urls = ['https://a.test/1', 'https://a.test/2']
  const job = createJob(urls, urls, { album: { title: 'trip' } })
  store.add(job)
  const [done] = job.items
  assert.ok(done)
  store.start(job, done)
  store.complete(job, done, { link: 'https://i.imgur.com/a.png', reused: false, imageId: 'a' })
  const settled: string[] = []
  store.on('itemsSettled', (ready) => settled.push(ready.id))
  store.cancel(job, { code: 'cancelled', message: 'cancelled' })
  assert.deepEqual(settled, [job.id])
  assert.equal(viewJob(job).status, 'in-progress', 'the album is still to be made')
  store.settleAlbum(job, { link: 'https://imgur.com/a/x', id: 'x' })
  assert.equal(viewJob(job).status, 'complete')
})
