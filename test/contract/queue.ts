/**
 * What every queue (the memory Scheduler, the fleet's BullMQ queue) must do, run against each:
 * items run and settle through the store, retries follow the policy, a permanent failure is
 * final, a cancel fails what is left and aborts what runs, and jobs take turns.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ServiceError } from '../../src/errors.ts'
import type { JobQueue, JobStore, JobView, Work, WorkInput } from '../../src/jobs/contract.ts'

export type QueueUnderTest = { queue: JobQueue; store: JobStore; close(): Promise<void> }
export type MakeQueue = (
  work: Work,
  options: { concurrency: number; maxAttempts: number },
) => Promise<QueueUnderTest>

type Call = WorkInput & { signal: AbortSignal; resolve(link: string): void; reject(error: unknown): void }

/** A work function that waits for the test to settle each call, in the order they were made. */
function scripted() {
  const calls: Call[] = []
  const waiting: Array<(call: Call) => void> = []
  const work: Work = (input, signal, downloaded) =>
    new Promise<{ link: string; reused: boolean }>((resolve, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason), { once: true })
      const call: Call = { ...input, signal, resolve: (link) => resolve({ link, reused: false }), reject }
      const next = waiting.shift()
      if (next) next(call)
      else calls.push(call)
    }).finally(downloaded)
  const nextCall = (): Promise<Call> => {
    const call = calls.shift()
    if (call) return Promise.resolve(call)
    return new Promise((resolve) => waiting.push(resolve))
  }
  return { work, nextCall }
}

/** Resolves with the job once `done` says so, reading it after each change. */
async function until(store: JobStore, jobId: string, done: (job: JobView) => boolean): Promise<JobView> {
  const now = await store.get(jobId)
  if (now && done(now)) return now
  return new Promise((resolve, reject) => {
    const stop = store.subscribe(jobId, (job) => {
      if (!done(job)) return
      stop()
      resolve(job)
    })
    // A change between the read and the subscription is not missed.
    store.get(jobId).then((job) => {
      if (job && done(job)) {
        stop()
        resolve(job)
      }
    }, reject)
  })
}

export function queueContract(name: string, make: MakeQueue): void {
  test(`${name} queue: every item runs and settles through the store, in the three lists`, async (t) => {
    const { work, nextCall } = scripted()
    const subject = await make(work, { concurrency: 2, maxAttempts: 3 })
    t.after(() => subject.close())
    const urls = ['https://a.test/1.png', 'https://b.test/2.png', 'https://c.test/3.png']
    const job = await subject.queue.submit(urls, urls)
    for (let i = 0; i < 3; i += 1) {
      const call = await nextCall()
      assert.equal(call.jobId, job.id)
      assert.equal(call.target, urls[call.index])
      if (call.index === 1) call.reject(new ServiceError('download_http_status', 'origin answered 404'))
      else call.resolve(`https://i.imgur.com/${call.index}.png`)
    }
    const done = await until(subject.store, job.id, (view) => view.pending === 0)
    assert.deepEqual(
      done.items.map((item) => item.state),
      ['complete', 'failed', 'complete'],
    )
    assert.equal(done.items[1]?.reason?.code, 'download_http_status')
    assert.deepEqual(done.items[0]?.link, 'https://i.imgur.com/0.png')
    await subject.queue.onIdle()
    assert.equal(subject.queue.active, 0)
  })

  test(`${name} queue: a retryable failure is tried again, up to the policy's attempts`, async (t) => {
    const { work, nextCall } = scripted()
    const subject = await make(work, { concurrency: 1, maxAttempts: 2 })
    t.after(() => subject.close())
    const urls = ['https://a.test/1.png', 'https://a.test/2.png']
    const job = await subject.queue.submit(urls, urls)
    const seen: number[] = []
    for (let i = 0; i < 4; i += 1) {
      const call = await nextCall()
      seen.push(call.index)
      // The first URL fails twice (then for good); the second fails once, then uploads.
      if (call.index === 0 || seen.filter((index) => index === 1).length === 1) {
        call.reject(new ServiceError('download_network', 'connection reset', { retryable: true }))
      } else call.resolve('https://i.imgur.com/ok.png')
    }
    const done = await until(subject.store, job.id, (view) => view.pending === 0)
    assert.equal(done.items[0]?.state, 'failed')
    assert.equal(done.items[0]?.reason?.code, 'download_network')
    assert.equal(done.items[0]?.attempts, 2)
    assert.equal(done.items[1]?.state, 'complete')
    assert.equal(done.items[1]?.attempts, 2)
  })

  test(`${name} queue: cancel fails what is left at once and aborts what runs`, async (t) => {
    const { work, nextCall } = scripted()
    const subject = await make(work, { concurrency: 1, maxAttempts: 3 })
    t.after(() => subject.close())
    const urls = ['https://a.test/1.png', 'https://a.test/2.png', 'https://a.test/3.png']
    const job = await subject.queue.submit(urls, urls)
    const first = await nextCall()
    first.resolve('https://i.imgur.com/1.png')
    const second = await nextCall()
    await until(subject.store, job.id, (view) => view.items[0]?.state === 'complete')
    assert.equal(await subject.queue.cancel(job.id), 2)
    assert.ok(second.signal.aborted, 'the running item is aborted')
    const done = await until(subject.store, job.id, (view) => view.pending === 0)
    assert.deepEqual(
      done.items.map((item) => [item.state, item.reason?.code]),
      [
        ['complete', undefined],
        ['failed', 'cancelled'],
        ['failed', 'cancelled'],
      ],
    )
    assert.equal(await subject.queue.cancel(job.id), 0, 'a second cancel finds nothing to do')
  })

  test(`${name} queue: a one-URL job submitted behind a large one starts on the next free worker`, async (t) => {
    const { work, nextCall } = scripted()
    const subject = await make(work, { concurrency: 1, maxAttempts: 3 })
    t.after(() => subject.close())
    const many = Array.from({ length: 50 }, (_, i) => `https://a.test/big/${i}.png`)
    const big = await subject.queue.submit(many, many)
    const running = await nextCall()
    const small = await subject.queue.submit(['https://b.test/small.png'], ['https://b.test/small.png'])
    running.resolve('https://i.imgur.com/0.png')
    // Within a couple of items of the big job, the small job's URL runs.
    const order: string[] = []
    for (let i = 0; i < 3; i += 1) {
      const call = await nextCall()
      order.push(call.jobId)
      call.resolve(`https://i.imgur.com/${call.jobId}-${call.index}.png`)
      if (call.jobId === small.id) break
    }
    assert.ok(order.includes(small.id), `the small job waited behind ${order.length} items`)
    await subject.queue.cancel(big.id)
  })
}
