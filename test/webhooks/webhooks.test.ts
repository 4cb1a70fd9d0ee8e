import assert from 'node:assert/strict'
import { type TestContext, test } from 'node:test'
import { createJob } from '../../src/jobs/model.ts'
import { MemoryJobStore } from '../../src/jobs/store.ts'
import { createLogger } from '../../src/log.ts'
import { type WebhookOptions, Webhooks } from '../../src/webhooks/delivery.ts'
import { startReceiver } from '../helpers/receiver.ts'

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`
const log = createLogger('silent')

function build(t: TestContext, options: Partial<WebhookOptions> = {}) {
  const store = new MemoryJobStore({ retentionCount: 100, retentionMs: 60_000 })
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
  return { store, webhooks }
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
    [{ retryDelaysMs: [10, -1] }, /Expected `retryDelaysMs` to hold integers >= 0, got `10,-1`/],
    [{ userAgent: '' }, /Expected `userAgent` to be a non-empty printable ASCII string/],
    [{ secret: 'plain' }, /Expected `secret` to be `whsec_`/],
  ]
  for (const [bad, message] of cases) {
    assert.throws(() => new Webhooks({ ...base, ...bad }, { store, log }), message)
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
