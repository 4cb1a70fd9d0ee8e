import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import pino from 'pino'
import { isServiceError, ServiceError } from '../../src/errors.ts'
import { FleetQueue } from '../../src/fleet/queue.ts'
import { connectRedis } from '../../src/fleet/redis.ts'
import { RedisJobStore } from '../../src/fleet/store.ts'
import type { JobStore, Work } from '../../src/jobs/contract.ts'
import { createJob } from '../../src/jobs/model.ts'
import { raceSignal } from '../../src/signals.ts'
import { queueContract } from '../contract/queue.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'

let server: RedisServer
before(async () => {
  server = await startRedis()
})
after(() => server.stop())

queueContract('fleet', async (work, { concurrency, maxAttempts }) => {
  const prefix = `q-${randomUUID()}`
  const redis = connectRedis(server.url)
  const workerRedis = new Redis(server.url, { maxRetriesPerRequest: null })
  const store = await RedisJobStore.open(redis, { prefix, retentionCount: 100, retentionMs: 60_000 })
  const queue = new FleetQueue(
    {
      prefix,
      concurrency,
      perHostConcurrency: 10,
      maxPendingItems: 10_000,
      maxPendingBytes: 64 * 1024 * 1024,
      maxRateLimitWaitMs: 60_000,
      retry: { maxAttempts, baseDelayMs: 0, maxDelayMs: 0 },
      lockMs: 5_000,
    },
    {
      store,
      redis,
      workerRedis,
      budgets: { reserve: () => ({ ok: true, release: () => {} }) },
      credentialKey: (clientId) => `client:${clientId ?? 'configured'}`,
      work,
      log: pino({ level: 'silent' }),
    },
  )
  return {
    queue,
    store,
    async close() {
      await queue.close(0)
      await store.close()
      workerRedis.disconnect()
      redis.disconnect()
    },
  }
})

/** The options the single-purpose queues below share: one attempt, a small fleet. */
const SMALL = {
  maxPendingBytes: 1024 * 1024,
  maxRateLimitWaitMs: 1_000,
  retry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
  lockMs: 5_000,
}

/** What those queues need besides a store, Redis and budgets: they never run an item. */
const NO_WORK = {
  credentialKey: () => 'client:configured',
  work: () => Promise.reject(new Error('never called')),
  log: pino({ level: 'silent' }),
}

/** `store` with one of its methods replaced (the rest bound to the store itself). */
function replacing<K extends keyof JobStore>(store: JobStore, name: K, method: JobStore[K]): JobStore {
  return new Proxy(store, {
    get(target, key) {
      if (key === name) return method
      const value = Reflect.get(target, key)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

test('onIdle waits for every item this replica settles, even one failed before its attempt', async (t) => {
  const prefix = `q-${randomUUID()}`
  const redis = connectRedis(server.url)
  const workerRedis = new Redis(server.url, { maxRetriesPerRequest: null })
  const store = await RedisJobStore.open(redis, { prefix, retentionCount: 100, retentionMs: 60_000 })
  // Redis has the item failed well before this replica is done with it (its events, its album).
  const fail: JobStore['fail'] = async (...args) => {
    const failed = await store.fail(...args)
    await sleep(300)
    return failed
  }
  const slow = replacing(store, 'fail', fail)
  const queue = new FleetQueue(
    { ...SMALL, prefix, concurrency: 2, perHostConcurrency: 2, maxPendingItems: 100 },
    {
      store: slow,
      redis,
      workerRedis,
      // Imgur's budget spent for an hour: each item fails before an attempt begins.
      budgets: { reserve: (_key, now) => ({ ok: false, waitMs: 3_600_000, resetAt: now + 3_600_000 }) },
      ...NO_WORK,
    },
  )
  t.after(async () => {
    await queue.close(0)
    await store.close()
    workerRedis.disconnect()
    redis.disconnect()
  })
  const settled: string[] = []
  queue.on('settled', ({ code }) => settled.push(code ?? ''))
  await queue.submit(['https://a.example/1.png', 'https://a.example/2.png'], [])
  await queue.onIdle()
  assert.deepEqual(settled, ['imgur_rate_limited', 'imgur_rate_limited'])
})

test('a refresh read before a submission filled the fleet does not undo the submission’s queue_full', async (t) => {
  // The refresh runs when the test ticks: no worker here, so nothing else needs setInterval.
  t.mock.timers.enable({ apis: ['setInterval'] })
  const prefix = `q-${randomUUID()}`
  const redis = connectRedis(server.url)
  const store = await RedisJobStore.open(redis, { prefix, retentionCount: 100, retentionMs: 60_000 })
  let hold: Promise<void> | undefined
  const stats: JobStore['stats'] = async () => {
    const gate = hold
    const read = await store.stats()
    await gate
    return read
  }
  const slow = replacing(store, 'stats', stats)
  const queue = new FleetQueue(
    { ...SMALL, prefix, concurrency: 0, perHostConcurrency: 1, maxPendingItems: 1 },
    {
      store: slow,
      redis,
      workerRedis: undefined,
      budgets: { reserve: () => ({ ok: true, release: () => {} }) },
      ...NO_WORK,
    },
  )
  t.after(async () => {
    await queue.close(0)
    await store.close()
    redis.disconnect()
  })
  let release = (): void => {}
  hold = new Promise((resolve) => {
    release = resolve
  })
  t.mock.timers.tick(1_000)
  // The refresh has read an empty fleet and waits; the submission's own read must not.
  const held = hold
  hold = undefined
  await queue.submit(['https://a.example/1.png'], [])
  assert.equal(queue.refusal, 'queue_full')
  release()
  await held
  await sleep(50)
  assert.equal(queue.refusal, 'queue_full')
})

test('a credential Imgur refused fails its items without an attempt, whichever replica it refused', async (t) => {
  const prefix = `q-${randomUUID()}`
  const redis = connectRedis(server.url)
  const workerRedis = new Redis(server.url, { maxRetriesPerRequest: null })
  const store = await RedisJobStore.open(redis, { prefix, retentionCount: 100, retentionMs: 60_000 })
  const attempts: Array<string | undefined> = []
  const queue = new FleetQueue(
    { ...SMALL, prefix, concurrency: 1, perHostConcurrency: 1, maxPendingItems: 100 },
    {
      store,
      redis,
      workerRedis,
      budgets: { reserve: () => ({ ok: true, release: () => {} }) },
      credentialKey: (clientId) => `client:${clientId ?? 'configured'}`,
      work: async ({ clientId }) => {
        attempts.push(clientId)
        throw new ServiceError('imgur_client_id_refused', 'Imgur refused the client id')
      },
      log: pino({ level: 'silent' }),
    },
  )
  t.after(async () => {
    await queue.close(0)
    await store.close()
    workerRedis.disconnect()
    redis.disconnect()
  })
  const reasons = async (jobId: string) => (await store.get(jobId))?.items.map((item) => item.reason?.message)
  // Refused here: this replica's next items of the credential fail at once, and Redis tells the others.
  const own = await queue.submit(['https://a.example/1.png', 'https://a.example/2.png'], [], {
    clientId: 'mine',
  })
  await queue.onIdle()
  assert.deepEqual(attempts, ['mine'])
  assert.deepEqual(await reasons(own.id), ['Imgur refused the client id', 'Imgur refused the client id'])
  assert.equal(
    JSON.parse((await redis.get(`${prefix}:refused:client:mine`)) ?? '{}').code,
    'imgur_client_id_refused',
  )
  // Refused by another replica: read from Redis before the first attempt.
  const reason = { code: 'imgur_client_id_refused', message: 'refused elsewhere' }
  await redis.set(`${prefix}:refused:client:theirs`, JSON.stringify(reason), 'PX', 60_000)
  const theirs = await queue.submit(['https://a.example/3.png'], [], { clientId: 'theirs' })
  await queue.onIdle()
  assert.deepEqual(attempts, ['mine'])
  assert.deepEqual(await reasons(theirs.id), ['refused elsewhere'])
})

/** A queue of one replica on a fresh prefix, with `deps` overriding the defaults; closed after the test. */
async function replica(
  t: { after(fn: () => Promise<void>): void },
  options: { concurrency: number; perHostConcurrency: number },
  deps: Partial<ConstructorParameters<typeof FleetQueue>[1]> & { wrapStore?: (store: JobStore) => JobStore },
) {
  const prefix = `q-${randomUUID()}`
  const redis = connectRedis(server.url)
  const workerRedis = new Redis(server.url, { maxRetriesPerRequest: null })
  const store = await RedisJobStore.open(redis, { prefix, retentionCount: 100, retentionMs: 60_000 })
  const { wrapStore, ...rest } = deps
  const queue = new FleetQueue(
    { ...SMALL, ...options, prefix, maxPendingItems: 100 },
    {
      store: wrapStore ? wrapStore(store) : store,
      redis,
      workerRedis,
      budgets: { reserve: () => ({ ok: true, release: () => {} }) },
      ...NO_WORK,
      ...rest,
    },
  )
  let stopped: Promise<void> | undefined
  /** Stops the replica's queue as a shutdown does (no grace); the store stays readable. */
  const stop = () => {
    stopped ??= queue.close(0)
    return stopped
  }
  t.after(async () => {
    await stop()
    await store.close()
    workerRedis.disconnect()
    redis.disconnect()
  })
  return { queue, store, redis, prefix, stop }
}

/** Resolves once `check` holds (polled), or fails the test after a few seconds. */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (const deadline = Date.now() + 5_000; !(await check()); await sleep(10)) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`)
  }
}

/**
 * Work that uploads once `gate` opens (`count` numbers each call); it also ends on the replica's
 * shutdown, so a failed assertion cannot hang the test's teardown.
 */
function gated(gate: Promise<void>, count: () => number): Work {
  return async (_item, signal) => {
    const n = count()
    signal.throwIfAborted()
    await Promise.race([
      gate,
      new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    ])
    return { link: `https://i.imgur.com/${n}.png`, reused: false }
  }
}

/** Work that records its signal and runs until its replica stops (or its item is cancelled). */
function endless(signals: AbortSignal[]): Work {
  return (_item, signal) => {
    signals.push(signal)
    if (signal.aborted) return Promise.reject(signal.reason)
    return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
  }
}

const SAME_HOST = ['https://a.example/1.png', 'https://a.example/2.png', 'https://a.example/3.png']

test('an item waiting for its host holds no reservation of Imgur’s budget', async (t) => {
  let held = 0
  let mostHeld = 0
  let calls = 0
  const gate = Promise.withResolvers<void>()
  const { queue, redis, prefix } = await replica(
    t,
    { concurrency: 3, perHostConcurrency: 1 },
    {
      budgets: {
        reserve: () => {
          held += 1
          mostHeld = Math.max(mostHeld, held)
          return { ok: true, release: () => (held -= 1) }
        },
      },
      work: gated(gate.promise, () => {
        calls += 1
        return calls
      }),
    },
  )
  await queue.submit(SAME_HOST, [])
  // All three are this replica's, one downloading, two waiting for the host.
  await until(
    async () => calls === 1 && (await redis.llen(`${prefix}:items:active`)) === 3,
    'three items active',
  )
  await sleep(100)
  assert.equal(held, 1, 'only the item that has its host holds a reservation')
  gate.resolve()
  await queue.onIdle()
  assert.equal(calls, 3)
  assert.equal(mostHeld, 1)
  assert.equal(held, 0)
})

test('stopping: an item still waiting for its host goes back to the queue with no attempt counted', async (t) => {
  const signals: AbortSignal[] = []
  const { queue, store, stop } = await replica(
    t,
    { concurrency: 2, perHostConcurrency: 1 },
    {
      work: endless(signals),
    },
  )
  const job = await queue.submit(SAME_HOST.slice(0, 2), [])
  await until(() => signals.length === 1, 'the first item downloading')
  await sleep(100)
  await stop()
  assert.equal(signals.length, 1, 'the waiting item never began an attempt')
  const items = (await store.get(job.id))?.items
  assert.deepEqual(
    items?.map((item) => [item.state, item.attempts]),
    [
      ['pending', 1],
      ['pending', 0],
    ],
  )
})

const OTHER_HOSTS = Array.from({ length: 6 }, (_, i) => `https://host${i}.example/1.png`)

test('a replica transfers UPLOAD_CONCURRENCY items at once while BullMQ hands it twice as many', async (t) => {
  let running = 0
  let mostRunning = 0
  let calls = 0
  const gate = Promise.withResolvers<void>()
  const { queue, redis, prefix } = await replica(
    t,
    { concurrency: 2, perHostConcurrency: 10 },
    {
      work: async (item, signal) => {
        calls += 1
        running += 1
        mostRunning = Math.max(mostRunning, running)
        try {
          return await gated(gate.promise, () => calls)(item, signal, () => {})
        } finally {
          running -= 1
        }
      },
    },
  )
  await queue.submit(OTHER_HOSTS, [])
  // Two transferring, two more started and waiting for a transfer slot.
  await until(
    async () => calls === 2 && (await redis.llen(`${prefix}:items:active`)) === 4,
    'four items active, two transferring',
  )
  await sleep(100)
  assert.equal(calls, 2, 'no third transfer begins')
  assert.equal(queue.active, 2, 'the items waiting for a slot are not counted as transferring')
  gate.resolve()
  await queue.onIdle()
  assert.equal(calls, 6)
  assert.equal(mostRunning, 2)
  assert.equal(queue.active, 0)
})

test('an item’s settlement in Redis does not hold its transfer slot: the next item transfers meanwhile', async (t) => {
  const settling = Promise.withResolvers<void>()
  const transfers: string[] = []
  const { queue, store } = await replica(
    t,
    { concurrency: 1, perHostConcurrency: 10 },
    {
      // The first settlement is written, and its answer is slow to come back.
      wrapStore: (inner) =>
        replacing(inner, 'complete', async (...args) => {
          const done = await inner.complete(...args)
          if (args[1] === 0) await settling.promise
          return done
        }),
      work: async (item) => {
        transfers.push(item.target)
        return { link: `https://i.imgur.com/${transfers.length}.png`, reused: false }
      },
    },
  )
  const job = await queue.submit(OTHER_HOSTS.slice(0, 2), [])
  try {
    await until(() => transfers.length === 2, 'the second item transferred while the first settles')
  } finally {
    settling.resolve()
  }
  await queue.onIdle()
  const items = (await store.get(job.id))?.items
  assert.deepEqual(
    items?.map((item) => item.state),
    ['complete', 'complete'],
  )
})

test('stopping: an item started and waiting for a transfer slot goes back to the queue untransferred', async (t) => {
  const signals: AbortSignal[] = []
  const { queue, store, redis, prefix, stop } = await replica(
    t,
    { concurrency: 1, perHostConcurrency: 10 },
    {
      work: endless(signals),
    },
  )
  const job = await queue.submit(OTHER_HOSTS.slice(0, 2), [])
  await until(
    async () =>
      signals.length === 1 && (await store.get(job.id))?.items.every((item) => item.attempts === 1) === true,
    'one item transferring, the other started and waiting',
  )
  await stop()
  assert.equal(signals.length, 1, 'the waiting item never began its transfer')
  const items = (await store.get(job.id))?.items
  assert.deepEqual(
    items?.map((item) => [item.state, item.attempts]),
    [
      ['pending', 1],
      ['pending', 1],
    ],
  )
  // Each item's priority is its position in its job: BullMQ keeps waiting items by it.
  const waiting =
    (await redis.llen(`${prefix}:items:wait`)) + (await redis.zcard(`${prefix}:items:prioritized`))
  assert.equal(waiting, 2, 'both are back in the queue')
})

test('an item’s lookup in the fleet’s table lends its transfer slot, which it takes back ahead of items not begun', async (t) => {
  const events: string[] = []
  const lookup = Promise.withResolvers<void>()
  const second = Promise.withResolvers<void>()
  const rest = Promise.withResolvers<void>()
  const { queue, store } = await replica(
    t,
    { concurrency: 2, perHostConcurrency: 10 },
    {
      work: async ({ index }, signal, _downloaded, away) => {
        const turn = events.filter((event) => event.startsWith('begin')).length
        events.push(`begin ${index}`)
        if (turn === 0) {
          assert.ok(away, 'the fleet gives each transfer its `away`')
          await away(() => raceSignal(lookup.promise, signal))
          events.push(`back ${index}`)
        } else {
          await raceSignal(turn === 1 ? second.promise : rest.promise, signal)
        }
        return { link: `https://i.imgur.com/${index}.png`, reused: false }
      },
    },
  )
  const job = await queue.submit(OTHER_HOSTS.slice(0, 4), [])
  await until(() => events.length === 3, 'a third transfer while the first waits for its lookup')
  assert.equal(queue.active, 2)
  lookup.resolve()
  await sleep(100)
  assert.equal(events.length, 3, 'no slot is free: the first waits for one, and so does the fourth')
  second.resolve()
  await until(() => events.length === 5, 'the second’s slot taken, then the first’s')
  const firstIndex = events[0]?.split(' ')[1]
  assert.equal(events[3], `back ${firstIndex}`, 'the first took the second’s slot, ahead of the fourth')
  assert.match(events[4] ?? '', /^begin /, 'the fourth began once the first ended')
  rest.resolve()
  await queue.onIdle()
  assert.deepEqual(
    (await store.get(job.id))?.items.map((item) => item.state),
    ['complete', 'complete', 'complete', 'complete'],
  )
  assert.equal(queue.active, 0)
})

test('an attempt that ends while its lookup waits for Redis does not keep the slot it takes back', async (t) => {
  const lookup = Promise.withResolvers<void>()
  let lent: Promise<void> | undefined
  const transfers: number[] = []
  const { queue, store } = await replica(
    t,
    { concurrency: 1, perHostConcurrency: 10 },
    {
      work: async ({ index }, _signal, _downloaded, away) => {
        transfers.push(index)
        if (lent !== undefined) return { link: `https://i.imgur.com/${index}.png`, reused: false }
        // Its deadline, in the pipeline's thread, ends the attempt before Redis answers.
        lent = away?.(() => lookup.promise)
        lent?.catch(() => {})
        throw new ServiceError('item_timeout', 'took too long')
      },
    },
  )
  const job = await queue.submit(OTHER_HOSTS.slice(0, 2), [])
  await queue.onIdle()
  assert.deepEqual(
    (await store.get(job.id))?.items.map((item) => item.state),
    ['failed', 'complete'],
  )
  lookup.resolve()
  await lent
  assert.equal(queue.active, 0, 'the slot taken back went back at once')
  // The replica still transfers.
  await queue.submit(OTHER_HOSTS.slice(2, 3), [])
  await queue.onIdle()
  assert.equal(transfers.length, 3)
})

test('a credential refused while an item’s lookup waits stops that item before its upload', async (t) => {
  const lookup = Promise.withResolvers<void>()
  const uploads: number[] = []
  let calls = 0
  const { queue, store } = await replica(
    t,
    { concurrency: 1, perHostConcurrency: 10 },
    {
      work: async ({ index }, signal, _downloaded, away) => {
        calls += 1
        if (calls === 1) {
          await away?.(() => raceSignal(lookup.promise, signal))
          uploads.push(index)
          return { link: `https://i.imgur.com/${index}.png`, reused: false }
        }
        throw new ServiceError('imgur_client_id_refused', 'Imgur refused the client id')
      },
    },
  )
  const job = await queue.submit(OTHER_HOSTS.slice(0, 2), [])
  await until(
    async () => (await store.get(job.id))?.items.some((item) => item.state === 'failed') === true,
    'the second item refused while the first waits for its lookup',
  )
  lookup.resolve()
  await queue.onIdle()
  assert.deepEqual(uploads, [], 'the first never uploads')
  assert.deepEqual(
    (await store.get(job.id))?.items.map((item) => [item.state, item.reason?.code]),
    [
      ['failed', 'imgur_client_id_refused'],
      ['failed', 'imgur_client_id_refused'],
    ],
  )
})

test('a cancel that arrives while the store starts an item stops it before its transfer begins', async (t) => {
  const started = Promise.withResolvers<void>()
  const cancelled = Promise.withResolvers<void>()
  const seen: boolean[] = []
  const { queue, store } = await replica(
    t,
    { concurrency: 1, perHostConcurrency: 1 },
    {
      // The start is written, and its answer is on its way back while the client cancels.
      wrapStore: (inner) =>
        replacing(inner, 'start', async (jobId, index) => {
          const attempt = await inner.start(jobId, index)
          started.resolve()
          await cancelled.promise
          return attempt
        }),
      work: async (_item, signal) => {
        seen.push(signal.aborted)
        signal.throwIfAborted()
        return { link: 'https://i.imgur.com/late.png', reused: false }
      },
    },
  )
  const job = await queue.submit(['https://a.example/1.png'], [])
  await started.promise
  assert.equal(await queue.cancel(job.id), 1)
  cancelled.resolve()
  await queue.onIdle()
  assert.deepEqual(seen, [], 'its transfer never begins')
  assert.equal((await store.get(job.id))?.items[0]?.reason?.code, 'cancelled')
})

test('a job stored but never queued (its replica died in between) has its items failed by the sweep', async (t) => {
  const { queue, store, redis, prefix } = await replica(t, { concurrency: 1, perHostConcurrency: 1 }, {})
  const unqueued = `${prefix}:unqueued`
  // As a submission leaves it when it stops between the store and BullMQ: an old one, and one
  // still within its time (its submission may be under way).
  const lost = createJob(SAME_HOST, SAME_HOST)
  const recent = createJob(SAME_HOST, SAME_HOST)
  for (const job of [lost, recent]) await store.add(job)
  await redis.zadd(unqueued, 0, lost.id, Date.now(), recent.id)
  const settled: string[] = []
  queue.on('settled', ({ jobId, code }) => settled.push(`${jobId === lost.id ? 'lost' : 'recent'} ${code}`))

  assert.deepEqual(await queue.sweep(), [lost.id])
  const failed = await store.get(lost.id)
  assert.notEqual(failed?.finished, undefined, 'the job is finished')
  assert.deepEqual(
    failed?.items.map((item) => [item.state, item.reason?.code]),
    SAME_HOST.map(() => ['failed', 'store_unavailable']),
  )
  assert.deepEqual(
    settled,
    SAME_HOST.map(() => 'lost store_unavailable'),
  )
  assert.equal(await redis.zscore(unqueued, lost.id), null, 'its record is gone')
  assert.deepEqual(
    (await store.get(recent.id))?.items.map((item) => item.state),
    SAME_HOST.map(() => 'pending'),
    'a recent one is left to its submission',
  )
  assert.notEqual(await redis.zscore(unqueued, recent.id), null)
})

test('a queued job whose record was left behind is left alone by the sweep', async (t) => {
  const gate = Promise.withResolvers<void>()
  let calls = 0
  const { queue, store, redis, prefix } = await replica(
    t,
    { concurrency: 1, perHostConcurrency: 1 },
    {
      work: gated(gate.promise, () => {
        calls += 1
        return calls
      }),
    },
  )
  const job = await queue.submit(SAME_HOST, [])
  assert.equal(await redis.zscore(`${prefix}:unqueued`, job.id), null, 'a queued job keeps no record')
  // One item running, two waiting in BullMQ; the record back, as if its removal had been lost.
  await until(() => calls === 1, 'the first item running')
  await redis.zadd(`${prefix}:unqueued`, 0, job.id)
  assert.deepEqual(await queue.sweep(), [])
  assert.equal(await redis.zscore(`${prefix}:unqueued`, job.id), null)
  gate.resolve()
  await queue.onIdle()
  assert.deepEqual(
    (await store.get(job.id))?.items.map((item) => item.state),
    SAME_HOST.map(() => 'complete'),
  )
})

test('a fleet filled by other replicas since its count was read refuses the submission whole', async (t) => {
  const { queue, store } = await replica(
    t,
    { concurrency: 0, perHostConcurrency: 1 },
    // Every replica read the fleet empty at once; the store's own check sees the truth.
    {
      wrapStore: (inner) =>
        replacing(inner, 'stats', async () => ({ pendingItems: 0, pendingBytes: 0, jobs: 0 })),
    },
  )
  const first = await queue.submit(
    Array.from({ length: 60 }, (_, i) => `https://a.example/${i}.png`),
    [],
  )
  await assert.rejects(
    queue.submit(
      Array.from({ length: 60 }, (_, i) => `https://b.example/${i}.png`),
      [],
    ),
    (error) =>
      isServiceError(error) &&
      error.code === 'queue_full' &&
      error.message === 'the fleet has 60 URLs waiting (limit 100); submit again later',
  )
  assert.equal((await store.stats()).pendingItems, 60, 'nothing of the refused job was added')
  assert.equal((await store.get(first.id))?.items.length, 60)
})
