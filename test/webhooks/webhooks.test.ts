import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { type TestContext, test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Webhook } from 'standardwebhooks'
import { createJob } from '../../src/jobs/model.ts'
import { MemoryJobStore } from '../../src/jobs/store.ts'
import { createLogger } from '../../src/log.ts'
import { type WebhookOptions, Webhooks } from '../../src/webhooks/delivery.ts'
import { type Received, startReceiver } from '../helpers/receiver.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`
const RETENTION_MS = 60_000
const HOUR = 3_600_000

/** Builds the delivery on a memory store whose clock the test moves; `lines` holds each log line, parsed. */
function build(t: TestContext, options: Partial<WebhookOptions> = {}) {
  const clock = { now: Date.now() }
  const store = new MemoryJobStore({ retentionCount: 100, retentionMs: RETENTION_MS, now: () => clock.now })
  const lines: Array<Record<string, unknown>> = []
  const log = createLogger(
    'info',
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)))
        done()
      },
    }),
  )
  const webhooks = new Webhooks(
    {
      secret: SECRET,
      retryDelaysMs: [],
      allowPrivateNetworks: true,
      userAgent: 'test-agent/1',
      ...options,
    },
    { store, log },
  )
  t.after(async () => {
    await webhooks.close()
    await store.close()
  })
  /** Lets retention forget every finished job, as it would once JOB_RETENTION_MS has passed. */
  const forgetFinished = () => {
    clock.now += RETENTION_MS
    store.sweep()
  }
  return { store, webhooks, lines, forgetFinished }
}

/** A job with one URL, failed at once: the store then says it is complete. */
async function completeJob(store: MemoryJobStore, webhookUrl: string | undefined) {
  const job = createJob(['https://a.test/1.png'], [], { webhookUrl })
  await store.add(job)
  await store.fail(job.id, 0, {
    code: 'download_http_status',
    message: 'origin answered HTTP 404',
  })
  return job.id
}

/** Resolves once the job's webhook shows `attempts` attempts made. */
function attemptsMade(store: MemoryJobStore, jobId: string, attempts: number): Promise<void> {
  return new Promise((resolve) => {
    const unsubscribe = store.subscribe(jobId, (job) => {
      if (job.webhook?.attempts === attempts) resolve(unsubscribe())
    })
  })
}

/** Lets the delivery finish what follows a store change (it logs, then waits or settles). */
const turn = () => new Promise((resolve) => setImmediate(resolve))

/** The payload of a call, checked with the standardwebhooks package. */
function verified(call: Received | undefined): { data: { jobId: string } } {
  assert.ok(call, 'the receiver was called')
  const headers = Object.fromEntries(
    ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((name) => [
      name,
      String(call.headers[name]),
    ]),
  )
  return new Webhook(SECRET).verify(call.body, headers) as ReturnType<typeof verified>
}

/** The job's webhook as the store shows it now. */
async function webhookOf(store: MemoryJobStore, jobId: string) {
  return (await store.get(jobId))?.webhook
}

test('options are checked at construction with exact messages', (t) => {
  const store = new MemoryJobStore({ retentionCount: 1, retentionMs: 1 })
  t.after(() => store.close())
  const base = { secret: SECRET, retryDelaysMs: [], allowPrivateNetworks: false, userAgent: 'ua' }
  const cases: Array<[Partial<WebhookOptions>, RegExp]> = [
    [{ timeoutMs: 0 }, /Expected `timeoutMs` to be an integer >= 1, got `0`/],
    [{ concurrency: 1.5 }, /Expected `concurrency` to be an integer >= 1, got `1.5`/],
    [{ maxWaiting: 0 }, /Expected `maxWaiting` to be an integer >= 1, got `0`/],
    [{ retryDelaysMs: [10, -1] }, /Expected `retryDelaysMs` to hold integers >= 0, got `10,-1`/],
    [{ userAgent: '' }, /Expected `userAgent` to be a non-empty printable ASCII string/],
    [{ secret: 'plain' }, /Expected `secret` to be `whsec_`/],
  ]
  for (const [bad, message] of cases) {
    assert.throws(() => new Webhooks({ ...base, ...bad }, { store, log: createLogger('silent') }), message)
  }
})

test('deliveries past the concurrency wait their turn and are all made', async (t) => {
  const receiver = await startReceiver(['hang'], 204)
  t.after(() => receiver.close())
  const { store, webhooks } = build(t, { concurrency: 1, timeoutMs: 150 })
  const jobs: string[] = []
  for (let n = 0; n < 3; n += 1) jobs.push(await completeJob(store, `${receiver.url}/hook`))
  await completeJob(store, undefined)
  assert.equal(webhooks.pending, 3)
  await webhooks.onIdle()
  assert.equal(receiver.received.length, 3)
  const webhooksNow = await Promise.all(jobs.map((job) => webhookOf(store, job)))
  assert.deepEqual(
    webhooksNow.map((webhook) => webhook && { ...webhook, url: undefined }),
    [
      { url: undefined, state: 'failed', attempts: 1, lastError: 'no answer within 150 ms' },
      { url: undefined, state: 'delivered', attempts: 1, lastError: undefined },
      { url: undefined, state: 'delivered', attempts: 1, lastError: undefined },
    ],
  )
  assert.deepEqual(
    receiver.received.map((call) => JSON.parse(call.body).data.jobId),
    jobs,
    'in the order the jobs completed',
  )
  assert.equal(receiver.received[0]?.headers['user-agent'], 'test-agent/1')
})

test('a stored webhook URL that cannot be parsed fails at once without a request', async (t) => {
  const { store, webhooks } = build(t)
  const job = await completeJob(store, 'not a url')
  await webhooks.onIdle()
  assert.deepEqual(await webhookOf(store, job), {
    url: 'not a url',
    state: 'failed',
    attempts: 1,
    lastError: 'webhookUrl is not a valid URL',
  })
})

test('a retry sends the message built for the first attempt, though retention has forgotten the job', async (t) => {
  const receiver = await startReceiver([500], 204)
  t.after(() => receiver.close())
  const { store, webhooks, lines, forgetFinished } = build(t, { retryDelaysMs: [10] })
  const jobId = await completeJob(store, `${receiver.url}/hook`)
  await attemptsMade(store, jobId, 1)
  forgetFinished()
  assert.equal(await store.get(jobId), undefined, 'the store has forgotten the job')

  await webhooks.onIdle()
  assert.equal(receiver.received.length, 2)
  const [first, second] = receiver.received as [Received, Received]
  assert.equal(second.body, first.body, 'the same message')
  assert.equal(second.headers['webhook-id'], first.headers['webhook-id'])
  assert.equal(verified(second).data.jobId, jobId)
  const delivered = lines.find((line) => line.msg === 'webhook delivered')
  assert.equal(delivered?.jobId, jobId)
  assert.equal(delivered?.attempts, 2)
})

test('a delivery waiting for its retry does not keep its job in memory', async (t) => {
  const receiver = await startReceiver([], 500)
  t.after(() => receiver.close())
  const { store, webhooks, forgetFinished } = build(t, { retryDelaysMs: [HOUR] })
  const jobId = await completeJob(store, `${receiver.url}/hook`)
  await attemptsMade(store, jobId, 1)
  await turn()
  const job = new WeakRef((await store.get(jobId)) as object)
  forgetFinished()
  // A WeakRef's target is kept until the current job ends, so the collection comes a turn later.
  await turn()
  gc()
  assert.equal(webhooks.pending, 1, 'the retry still waits')
  assert.equal(job.deref(), undefined, 'the job was collected')
})

test('past maxWaiting the oldest waiting delivery is given up: logged, its webhook failed with the reason', async (t) => {
  const receiver = await startReceiver([500, 500], 204)
  t.after(() => receiver.close())
  const { store, webhooks, lines } = build(t, { retryDelaysMs: [HOUR], maxWaiting: 2, concurrency: 1 })
  // Two deliveries fail once and wait an hour for their retry: the waiting list is full.
  const oldest = await completeJob(store, `${receiver.url}/hook`)
  await attemptsMade(store, oldest, 1)
  await turn()
  const older = await completeJob(store, `${receiver.url}/hook`)
  await attemptsMade(store, older, 1)
  await turn()
  assert.equal(webhooks.pending, 2)
  const version = (await store.get(oldest))?.version

  const newest = await completeJob(store, `${receiver.url}/hook`)
  await attemptsMade(store, newest, 1)
  await turn()
  assert.deepEqual(
    receiver.received.map((call) => verified(call).data.jobId),
    [oldest, older, newest],
  )
  assert.deepEqual(
    { ...(await webhookOf(store, newest)), url: undefined },
    {
      url: undefined,
      state: 'delivered',
      attempts: 1,
      lastError: undefined,
    },
  )
  assert.equal(webhooks.pending, 1, 'the other one still waits for its retry')
  assert.deepEqual(
    { ...(await webhookOf(store, oldest)), url: undefined },
    {
      url: undefined,
      state: 'failed',
      attempts: 1,
      lastError: 'given up after 1 attempt: more than 2 webhook deliveries were waiting',
    },
    'the given-up one ends failed, never pending for good',
  )
  assert.ok(((await store.get(oldest))?.version ?? 0) > (version ?? 0), 'its status moved')
  const dropped = lines.filter((line) => line.msg === 'webhook given up: too many deliveries waiting')
  assert.equal(dropped.length, 1)
  assert.equal(dropped[0]?.level, 40, 'a warning')
  assert.equal(dropped[0]?.jobId, oldest)
  assert.equal(dropped[0]?.attempts, 1)
  assert.equal(dropped[0]?.maxWaiting, 2)
})
