import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import pino from 'pino'
import type { Reservation } from '../../src/budgets.ts'
import { ServiceError } from '../../src/errors.ts'
import type { AlbumInput, CreatedAlbum } from '../../src/imgur/client.ts'
import { type AlbumOptions, Albums } from '../../src/jobs/albums.ts'
import type { JobView } from '../../src/jobs/contract.ts'
import { createJob, jobStatus } from '../../src/jobs/model.ts'
import { MemoryJobStore } from '../../src/jobs/store.ts'

type Call = {
  input: AlbumInput
  resolve: (album: CreatedAlbum) => void
  reject: (error: unknown) => void
}

const MADE = { id: 'AlB1234', deletehash: 'aLbUmDeLeTeHaSh', link: 'https://imgur.com/a/AlB1234' }

/** A real store and album step around a fake client whose calls the test answers one by one. */
function setup(
  t: { after: (fn: () => unknown) => void },
  options: { account?: boolean; reserve?: () => Reservation } & Partial<AlbumOptions> = {},
) {
  const store = new MemoryJobStore({ retentionCount: 100, retentionMs: 60_000 })
  const calls: Call[] = []
  const reserved = { taken: 0, released: 0 }
  const imgur = {
    usesAccount: (clientId?: string) => options.account === true && !clientId,
    credentialKey: (clientId?: string) => `client:${clientId ?? 'configured'}`,
    createAlbum: (input: AlbumInput) =>
      new Promise<CreatedAlbum>((resolve, reject) => {
        input.signal?.addEventListener('abort', () => reject(input.signal?.reason), { once: true })
        calls.push({ input, resolve, reject })
      }),
  }
  const budgets = {
    reserve: (): Reservation => {
      const given = options.reserve?.()
      if (given !== undefined && !given.ok) return given
      reserved.taken += 1
      return { ok: true, release: () => (reserved.released += 1) }
    },
  }
  const albums = new Albums(
    { retry: { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 }, maxRateLimitWaitMs: 60_000, ...options },
    { store, imgur, budgets, log: pino({ level: 'silent' }) },
  )
  t.after(async () => {
    await albums.close(0)
    await store.close()
  })
  const nextCall = async () => {
    while (calls.length === 0) await once(albums, 'attempt')
    return calls.shift() as Call
  }
  return { store, albums, calls, nextCall, reserved }
}

/** A job that asked for an album, its items settled as given: a link (and handles) or a failure. */
async function settle(
  store: MemoryJobStore,
  outcomes: Array<{ id: string } | 'failed'>,
  album: { title?: string; description?: string } = { title: 'Trip' },
  clientId?: string,
): Promise<JobView> {
  const urls = outcomes.map((_, index) => `https://origin.example/${index}.png`)
  const job = createJob(urls, urls, { album, clientId })
  await store.add(job)
  for (const [index, outcome] of outcomes.entries()) {
    await store.start(job.id, index)
    if (outcome === 'failed') {
      await store.fail(job.id, index, { code: 'download_http_error', message: 'the origin answered 404' })
    } else {
      const link = `https://i.imgur.com/${outcome.id}.png`
      await store.complete(job.id, index, {
        link,
        reused: false,
        imageId: outcome.id,
        deletehash: `dh-${outcome.id}`,
      })
    }
  }
  // The memory store's view is the live job: the album step's changes show in it.
  const view = await store.get(job.id)
  assert.ok(view)
  return view
}

test('an anonymous album gets every uploaded image once, by deletehash, in submission order', async (t) => {
  const { store, albums, nextCall, reserved } = setup(t)
  const job = await settle(store, [{ id: 'b' }, 'failed', { id: 'a' }, { id: 'b' }], {
    title: 'Trip',
    description: 'days',
  })
  assert.equal(jobStatus(job), 'in-progress', 'every item settled, the album still to be made')
  assert.equal(job.finished, undefined)
  const call = await nextCall()
  assert.deepEqual(
    { ...call.input, signal: undefined },
    {
      title: 'Trip',
      description: 'days',
      deletehashes: ['dh-b', 'dh-a'],
      clientId: undefined,
      signal: undefined,
    },
  )
  call.resolve(MADE)
  await albums.onIdle()
  assert.deepEqual(job.album, { title: 'Trip', description: 'days', state: 'complete', ...MADE })
  assert.equal(jobStatus(job), 'complete')
  assert.ok(job.finished !== undefined)
  assert.deepEqual(reserved, { taken: 1, released: 1 })
})

test("in account mode the album names image ids; a job's own client id stays anonymous", async (t) => {
  const { store, nextCall } = setup(t, { account: true })
  await settle(store, [{ id: 'x' }, { id: 'y' }])
  const call = await nextCall()
  assert.deepEqual(call.input.ids, ['x', 'y'])
  assert.equal(call.input.deletehashes, undefined)
  call.resolve({ id: 'AlB1234', link: 'https://imgur.com/a/AlB1234' })

  await settle(store, [{ id: 'z' }], {}, 'job-client')
  const own = await nextCall()
  assert.deepEqual(
    [own.input.deletehashes, own.input.ids, own.input.clientId],
    [['dh-z'], undefined, 'job-client'],
  )
  own.resolve(MADE)
})

test('with no image uploaded the album fails as album_empty and Imgur is not called', async (t) => {
  const { store, albums, calls, reserved } = setup(t)
  const completed: JobView[] = []
  store.on('complete', (job) => completed.push(job))
  const job = await settle(store, ['failed', 'failed'])
  await albums.onIdle()
  assert.equal(job.album?.state, 'failed')
  assert.equal(job.album?.reason?.code, 'album_empty')
  assert.equal(jobStatus(job), 'complete')
  assert.deepEqual(completed, [job])
  assert.equal(calls.length, 0)
  assert.equal(reserved.taken, 0)
})

test('a retryable failure is retried, each attempt with its own budget reservation', async (t) => {
  const { store, albums, nextCall, reserved } = setup(t)
  const retries: string[] = []
  albums.on('retry', ({ code }) => retries.push(code))
  const job = await settle(store, [{ id: 'a' }])
  ;(await nextCall()).reject(new ServiceError('imgur_unavailable', 'Imgur answered 500', { retryable: true }))
  ;(await nextCall()).resolve(MADE)
  await albums.onIdle()
  assert.equal(job.album?.state, 'complete')
  assert.deepEqual(retries, ['imgur_unavailable'])
  assert.deepEqual(reserved, { taken: 2, released: 2 })
})

test('a permanent failure fails the album at once with its reason; the job is complete', async (t) => {
  const { store, albums, nextCall } = setup(t)
  const job = await settle(store, [{ id: 'a' }])
  ;(await nextCall()).reject(new ServiceError('imgur_forbidden', 'Imgur refused the request (403)'))
  await albums.onIdle()
  assert.deepEqual(job.album?.reason, { code: 'imgur_forbidden', message: 'Imgur refused the request (403)' })
  assert.equal(jobStatus(job), 'complete')
})

test('retries end after maxAttempts with the last reason', async (t) => {
  const { store, albums, nextCall } = setup(t)
  const job = await settle(store, [{ id: 'a' }])
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    ;(await nextCall()).reject(new ServiceError('imgur_timeout', `attempt ${attempt}`, { retryable: true }))
  }
  await albums.onIdle()
  assert.deepEqual(job.album?.reason, { code: 'imgur_timeout', message: 'attempt 3' })
})

test('a rate-limit wait past maxRateLimitWaitMs fails the album without calling Imgur', async (t) => {
  const resetAt = Date.UTC(2030, 0, 1)
  const { store, albums, calls } = setup(t, { reserve: () => ({ ok: false, waitMs: 3_600_000, resetAt }) })
  const job = await settle(store, [{ id: 'a' }])
  await albums.onIdle()
  assert.equal(job.album?.reason?.code, 'imgur_rate_limited')
  assert.match(job.album?.reason?.message ?? '', /spent until 2030-01-01T00:00:00\.000Z/)
  assert.equal(calls.length, 0)
})

test('a 429 asking for longer than this service waits fails the album, naming the reset', async (t) => {
  const { store, albums, nextCall } = setup(t, { maxRateLimitWaitMs: 1000 })
  const job = await settle(store, [{ id: 'a' }])
  ;(await nextCall()).reject(
    new ServiceError('imgur_rate_limited', "Imgur's rate limit was reached", {
      retryable: true,
      retryAfterMs: 3_600_000,
    }),
  )
  await albums.onIdle()
  assert.equal(job.album?.reason?.code, 'imgur_rate_limited')
  assert.match(job.album?.reason?.message ?? '', /later than this service waits$/)
})

test('a short rate-limit wait is waited out, then the album is made', async (t) => {
  let refusals = 1
  const { store, albums, nextCall } = setup(t, {
    reserve: () =>
      refusals-- > 0 ? { ok: false, waitMs: 1, resetAt: Date.now() + 1 } : { ok: true, release: () => {} },
  })
  const job = await settle(store, [{ id: 'a' }])
  ;(await nextCall()).resolve(MADE)
  await albums.onIdle()
  assert.equal(job.album?.state, 'complete')
})

test('an unexpected error settles the album failed as internal_error, never leaving the job stuck', async (t) => {
  const { store, albums, nextCall } = setup(t)
  const job = await settle(store, [{ id: 'a' }])
  ;(await nextCall()).reject(new TypeError('boom'))
  await albums.onIdle()
  assert.equal(job.album?.reason?.code, 'internal_error')
  assert.doesNotMatch(job.album?.reason?.message ?? '', /boom/)
  assert.equal(jobStatus(job), 'complete')
})

test('close cancels an album in flight or waiting to retry, and any album asked for afterwards', async (t) => {
  const { store, albums, calls, nextCall } = setup(t, {
    retry: { maxAttempts: 3, baseDelayMs: 3_600_000, maxDelayMs: 3_600_000, random: () => 1 },
    maxRateLimitWaitMs: 7_200_000,
  })
  const inFlight = await settle(store, [{ id: 'a' }])
  const first = await nextCall()
  const waiting = await settle(store, [{ id: 'b' }])
  const second = await nextCall()
  const retry = once(albums, 'retry')
  second.reject(new ServiceError('imgur_unavailable', 'Imgur answered 503', { retryable: true }))
  await retry
  assert.equal(albums.active, 2)

  await albums.close(0)
  assert.ok(first.input.signal?.aborted, 'the call in flight sees the abort')
  for (const job of [inFlight, waiting]) {
    assert.equal(job.album?.state, 'failed')
    assert.equal(job.album?.reason?.code, 'cancelled')
    assert.equal(jobStatus(job), 'complete')
  }
  const late = await settle(store, [{ id: 'c' }])
  assert.equal(late.album?.reason?.code, 'cancelled', 'cancelled at once, without calling Imgur')
  await albums.onIdle()
  assert.equal(albums.active, 0)
  assert.equal(calls.length, 0)
})

test('close lets an album in flight finish within the grace period', async (t) => {
  const { store, albums, nextCall } = setup(t)
  const job = await settle(store, [{ id: 'a' }])
  const call = await nextCall()
  const closing = albums.close(60_000)
  call.resolve(MADE)
  await closing
  assert.equal(job.album?.state, 'complete')
})

test('construction checks maxRateLimitWaitMs', async () => {
  const store = new MemoryJobStore({ retentionCount: 1, retentionMs: 1 })
  assert.throws(
    () =>
      new Albums(
        { retry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 }, maxRateLimitWaitMs: -1 },
        { store, imgur: {} as never, budgets: {} as never, log: pino({ level: 'silent' }) },
      ),
    /^TypeError: Expected `maxRateLimitWaitMs` to be an integer >= 0, got `-1`$/,
  )
  await store.close()
})
