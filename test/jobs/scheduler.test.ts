import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import pino from 'pino'
import { ServiceError } from '../../src/errors.ts'
import { viewJob } from '../../src/http/status.ts'
import type { ItemView, JobView, Work } from '../../src/jobs/contract.ts'
import { Scheduler, type SchedulerOptions } from '../../src/jobs/scheduler.ts'
import { MemoryJobStore } from '../../src/jobs/store.ts'

type Call = {
  job: JobView
  item: ItemView
  /** The item's position in its job. */
  index: number
  signal: AbortSignal
  resolve: (link: string) => void
  reject: (e: unknown) => void
}

type Budget = { ok: true; release: () => void } | { ok: false; waitMs: number; resetAt: number }

function setup(
  t: { after: (fn: () => unknown) => void },
  options: Partial<SchedulerOptions> = {},
  budget?: () => Budget,
  givesUp = true,
) {
  const store = new MemoryJobStore({ retentionCount: 100, retentionMs: 60_000 })
  const calls: Call[] = []
  // Like the real worker: holds its host until it settles, and gives up when cancelled.
  const work: Work = ({ jobId, index }, signal, downloaded) =>
    new Promise<{ link: string; reused: boolean }>((resolve, reject) => {
      if (givesUp) signal.addEventListener('abort', () => reject(signal.reason), { once: true })
      const job = store.peek(jobId)
      const item = job?.items[index]
      assert.ok(job && item, 'the worker runs an item the store holds')
      calls.push({
        job,
        item,
        index,
        signal,
        resolve: (link) => resolve({ link, reused: false }),
        reject,
      })
    }).finally(downloaded)
  const queue = new Scheduler(
    {
      concurrency: 2,
      perHostConcurrency: 10,
      maxPendingItems: 100,
      maxRateLimitWaitMs: 60_000,
      retry: { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 },
      ...options,
    },
    {
      store,
      budgets: { reserve: budget ?? (() => ({ ok: true, release: () => {} })) },
      credentialKey: (clientId) => `client:${clientId ?? 'configured'}`,
      work,
      log: pino({ level: 'silent' }),
    },
  )
  t.after(async () => {
    await queue.close(0)
    await store.close()
  })
  const submit = (urls: string[], clientId?: string) => queue.submit(urls, urls, { clientId })
  const nextCall = async () => {
    while (calls.length === 0) await once(queue, 'attempt')
    return calls.shift() as Call
  }
  return { store, queue, calls, submit, nextCall }
}

const urls = (host: string, n: number) => Array.from({ length: n }, (_, i) => `https://${host}/${i}.png`)

test('options are checked at construction with exact messages', () => {
  assert.throws(
    () =>
      new Scheduler(
        {
          concurrency: 0,
          perHostConcurrency: 1,
          maxPendingItems: 1,
          maxRateLimitWaitMs: 0,
          retry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
        },
        {} as never,
      ),
    /Expected `concurrency` to be an integer >= 1, got `0`/,
  )
})

test('nothing runs before submit returns, then at most `concurrency` items at once', async (t) => {
  const { queue, calls, submit } = setup(t)
  const job = await submit(urls('a.test', 5))
  assert.equal(calls.length, 0)
  assert.equal(viewJob(job).status, 'pending')
  await once(queue, 'attempt')
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(calls.length, 2)
  assert.equal(queue.active, 2)
  assert.equal(viewJob(job).status, 'in-progress')
})

test('jobs take turns: a small job behind a large one starts with the next free worker', async (t) => {
  const { queue, submit, nextCall } = setup(t, { concurrency: 1 })
  const big = await submit(urls('big.test', 50))
  const small = await submit(['https://small.test/only.png'])
  const first = await nextCall()
  assert.equal(first.job.id, big.id)
  first.resolve('https://i.imgur.com/1.png')
  const second = await nextCall()
  assert.equal(second.job.id, small.id)
  second.resolve('https://i.imgur.com/2.png')
  await once(queue, 'settled')
  assert.equal(viewJob(small).status, 'complete')
})

test('a host never has more than perHostConcurrency downloads; items of free hosts go past it', async (t) => {
  const { calls, submit, nextCall } = setup(t, { concurrency: 4, perHostConcurrency: 1 })
  await submit([...urls('slow.test', 3), 'https://fast.test/0.png'])
  await submit(['https://slow.test/other.png', 'https://fast.test/1.png'])
  const first = await nextCall()
  await new Promise((resolve) => setImmediate(resolve))
  // The second job's slow.test item waits for its host; its fast.test item goes past it, and
  // then the first job's fast.test item waits for that host in turn.
  assert.deepEqual(
    [first, ...calls].map((call) => call.item.target),
    ['https://slow.test/0.png', 'https://fast.test/1.png'],
  )
  calls.length = 0
  first.resolve('https://i.imgur.com/s0.png')
  const next = await nextCall()
  assert.equal(next.item.target, 'https://slow.test/1.png', 'the freed host goes to the next item in turn')
})

test('retryable failures are retried and stay pending meanwhile; permanent ones fail at once', async (t) => {
  const { queue, submit, nextCall } = setup(t)
  const job = await submit(['https://a.test/flaky.png', 'https://a.test/missing.png'])
  const [x, y] = [await nextCall(), await nextCall()]
  const flaky = x.item.url.endsWith('flaky.png') ? x : y
  const missing = flaky === x ? y : x
  const retry = once(queue, 'retry')
  flaky.reject(new ServiceError('imgur_unavailable', 'Imgur answered 503', { retryable: true }))
  missing.reject(new ServiceError('download_http_status', 'origin answered HTTP 404'))
  await retry
  assert.deepEqual(viewJob(job).uploaded.pending, ['https://a.test/flaky.png'])
  const again = await nextCall()
  assert.deepEqual([again.job.id, again.index], [flaky.job.id, flaky.index])
  again.resolve('https://i.imgur.com/ok.png')
  await queue.onIdle()
  const view = viewJob(job)
  assert.equal(view.status, 'complete')
  assert.deepEqual(view.uploaded, {
    pending: [],
    complete: ['https://i.imgur.com/ok.png'],
    failed: ['https://a.test/missing.png'],
  })
  assert.equal(view.items[0]?.attempts, 2)
  assert.deepEqual(view.items[1]?.reason, {
    code: 'download_http_status',
    message: 'origin answered HTTP 404',
  })
})

test('attempts are bounded: the last retryable failure fails the item with its reason', async (t) => {
  const { queue, submit, nextCall } = setup(t)
  const job = await submit(['https://a.test/down.png'])
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    const call = await nextCall()
    call.reject(new ServiceError('imgur_unavailable', 'Imgur answered 500', { retryable: true }))
  }
  await queue.onIdle()
  assert.deepEqual(viewJob(job).items[0], {
    url: 'https://a.test/down.png',
    state: 'failed',
    attempts: 3,
    reason: { code: 'imgur_unavailable', message: 'Imgur answered 500' },
  })
})

test("a refused client id fails the job's remaining items at once, not one by one", async (t) => {
  const { queue, submit, nextCall } = setup(t, { concurrency: 1 })
  const job = await submit(urls('a.test', 20), 'bad-id')
  const call = await nextCall()
  call.reject(
    new ServiceError('imgur_client_id_refused', 'Imgur refused the client id (403 Invalid client_id)'),
  )
  await queue.onIdle()
  const view = viewJob(job)
  assert.equal(view.uploaded.failed.length, 20)
  assert.equal(view.items.filter((item) => item.attempts > 0).length, 1)
  assert.ok(view.items.every((item) => item.reason?.code === 'imgur_client_id_refused'))
})

test('a spent budget holds items back until its reset; a reset too far away fails them saying when', async (t) => {
  let budget: Budget = { ok: false, waitMs: 5, resetAt: 0 }
  let refusals = 0
  const reserve = (): Budget => {
    const answer = budget
    if (!answer.ok && answer.waitMs === 5) {
      // The budget resets once it has held the item back.
      refusals += 1
      budget = { ok: true, release: () => {} }
    }
    return answer
  }
  const { queue, submit, nextCall } = setup(t, { maxRateLimitWaitMs: 1_000 }, reserve)
  const held = await submit(['https://a.test/held.png'])
  const call = await nextCall()
  assert.equal(call.job.id, held.id)
  assert.equal(refusals, 1, 'the item waited for the reset before it started')
  call.resolve('https://i.imgur.com/held.png')
  await queue.onIdle()

  budget = { ok: false, waitMs: 3_600_000, resetAt: Date.UTC(2026, 10, 27, 12) }
  const events: string[] = []
  queue.on('settled', ({ index, code }) => events.push(`settled ${index} ${code}`))
  queue.on('idle', () => events.push('idle'))
  const doomed = await submit(['https://a.test/1.png', 'https://a.test/2.png'])
  await queue.onIdle()
  assert.deepEqual(
    events,
    ['settled 0 imgur_rate_limited', 'settled 1 imgur_rate_limited', 'idle'],
    'idle comes once every failure is announced',
  )
  const view = viewJob(doomed)
  assert.equal(view.status, 'complete')
  assert.equal(view.uploaded.failed.length, 2)
  assert.equal(view.items[0]?.reason?.code, 'imgur_rate_limited')
  assert.match(view.items[0]?.reason?.message ?? '', /2026-11-27T12:00:00.000Z/)
})

test('a full queue refuses new jobs with 503 and a Retry-After', async (t) => {
  const { submit } = setup(t, { maxPendingItems: 3 })
  await submit(urls('a.test', 2))
  await assert.rejects(
    submit(urls('b.test', 2)),
    (error: unknown) =>
      error instanceof ServiceError &&
      error.code === 'queue_full' &&
      error.statusCode === 503 &&
      error.retryAfterMs !== undefined,
  )
})

test('close stops new work and cancels what is still running after the grace period', async (t) => {
  const { queue, submit, nextCall, store } = setup(t)
  await submit(['https://a.test/1.png'])
  const call = await nextCall()
  call.signal.addEventListener('abort', () => call.reject(call.signal.reason))
  await queue.close(10)
  assert.equal(call.signal.aborted, true)
  assert.equal(store.pendingItems, 0)
  await assert.rejects(submit(['https://a.test/2.png']), /shutting down/)
})

test('admission refuses a job whose URLs would pass the pending-bytes budget', async (t) => {
  const { submit, store } = setup(t, { maxPendingBytes: 1_000 })
  await submit(urls('a.test', 2))
  assert.ok(store.pendingBytes > 0 && store.pendingBytes < 1_000)
  await assert.rejects(
    submit(urls('b.test', 6)),
    (error: unknown) =>
      error instanceof ServiceError &&
      error.code === 'queue_full' &&
      error.statusCode === 503 &&
      error.retryAfterMs !== undefined,
  )
  assert.equal(store.size, 1, 'the refused job is not kept')
})

test('a refused client id ends every job that uses it and no other', async (t) => {
  const { queue, submit, nextCall } = setup(t, { concurrency: 1 })
  const bad = await submit(urls('a.test', 5), 'bad-id')
  const other = await submit(urls('b.test', 3), 'good-id')
  const alsoBad = await submit(urls('c.test', 4), 'bad-id')
  const mine = await submit(urls('d.test', 2))
  const call = await nextCall()
  assert.equal(call.job.id, bad.id)
  call.reject(
    new ServiceError('imgur_client_id_refused', 'Imgur refused the client id (403 Invalid client_id)'),
  )
  const served = new Set<string>()
  for (let left = 3 + 2; left > 0; left -= 1) {
    const next = await nextCall()
    served.add(next.job.id)
    next.resolve(`https://i.imgur.com/${next.item.url.split('/')[2]}-${left}.png`)
  }
  await queue.onIdle()
  for (const job of [bad, alsoBad]) {
    const view = viewJob(job)
    assert.equal(view.uploaded.failed.length, job.items.length)
    assert.ok(view.items.every((item) => item.reason?.code === 'imgur_client_id_refused'))
  }
  assert.equal(viewJob(alsoBad).items.filter((item) => item.attempts > 0).length, 0)
  assert.ok(served.size === 2 && served.has(other.id) && served.has(mine.id), 'only the other jobs ran')
  assert.equal(viewJob(other).uploaded.complete.length, 3)
  assert.equal(viewJob(mine).uploaded.complete.length, 2)
})

test("cancel aborts the job's items in flight, fails the rest at once, and leaves other jobs running", async (t) => {
  // This worker finishes what it started even when aborted, as an upload already sent may.
  const { queue, store, submit, nextCall, calls } = setup(t, { concurrency: 3 }, undefined, false)
  const job = await submit(urls('a.test', 5))
  const other = await submit(['https://b.test/0.png'])
  const done = await nextCall()
  done.resolve('https://i.imgur.com/done.png')
  await once(queue, 'settled')
  const running = [await nextCall(), await nextCall(), await nextCall()]
  const mine = running.filter((call) => call.job.id === job.id)
  assert.equal(mine.length, 2)
  const theirs = running.find((call) => call.job.id === other.id)
  assert.ok(theirs)
  const settled: string[] = []
  queue.on('settled', ({ jobId, index, code }) =>
    settled.push(`${store.peek(jobId)?.items[index]?.url} ${code}`),
  )

  assert.equal(await queue.cancel(job.id), 4)
  assert.ok(
    mine.every((call) => call.signal.aborted),
    'each in-flight item of the job is aborted',
  )
  assert.equal(theirs.signal.aborted, false, "only that job's items")
  const view = viewJob(job)
  assert.equal(view.status, 'complete')
  assert.deepEqual(view.uploaded.complete, ['https://i.imgur.com/done.png'])
  assert.ok(view.items.slice(1).every((item) => item.reason?.code === 'cancelled'))
  assert.deepEqual(
    settled,
    job.items.slice(1).map((item) => `${item.url} cancelled`),
  )
  // An upload that finishes anyway does not undo the cancellation.
  mine[0]?.resolve('https://i.imgur.com/late.png')
  mine[1]?.reject(mine[1].signal.reason)
  theirs.resolve('https://i.imgur.com/other.png')
  await queue.onIdle()
  assert.equal(calls.length, 0, 'nothing of the cancelled job started again')
  assert.deepEqual(viewJob(job), view)
  assert.equal(viewJob(other).uploaded.complete[0], 'https://i.imgur.com/other.png')
  assert.deepEqual(await store.links(), ['https://i.imgur.com/done.png', 'https://i.imgur.com/other.png'])
  assert.equal(await queue.cancel(job.id), 0, 'nothing left to cancel')
})

test('cancel fails an item waiting for its retry, and the retry never comes', async (t) => {
  const { queue, submit, nextCall, calls } = setup(t, {
    retry: { maxAttempts: 3, baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 0.5 },
  })
  const job = await submit(['https://a.test/0.png'])
  const call = await nextCall()
  const retry = once(queue, 'retry')
  call.reject(new ServiceError('download_http_status', 'origin answered HTTP 503', { retryable: true }))
  const [{ delayMs }] = await retry
  assert.equal(delayMs, 30_000)
  assert.equal(await queue.cancel(job.id), 1)
  await queue.onIdle()
  const item = viewJob(job).items[0]
  assert.equal(item?.state, 'failed')
  assert.equal(item?.reason?.code, 'cancelled')
  assert.equal(item?.attempts, 1)
  assert.equal(calls.length, 0)
})

test('an item stopped by shutdown says so, unlike one its client cancelled', async (t) => {
  const { queue, submit, nextCall } = setup(t)
  const job = await submit(['https://a.test/0.png'])
  await nextCall()
  await queue.close(0)
  assert.deepEqual(viewJob(job).items[0]?.reason, {
    code: 'cancelled',
    message: 'the service shut down before this URL finished; submit it again',
  })
})
