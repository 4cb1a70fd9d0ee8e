import assert from 'node:assert/strict'
import type { IncomingHttpHeaders } from 'node:http'
import { type TestContext, test } from 'node:test'
import { Webhook } from 'standardwebhooks'
import type { Webhooks } from '../../src/webhooks/delivery.ts'
import { type Answer, type Received, startReceiver } from '../helpers/receiver.ts'
import { type Harness, startService } from '../helpers/service.ts'

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`

async function setup(
  t: TestContext,
  script: Answer[] = [],
  options: { env?: Record<string, string>; fallback?: Answer } & Parameters<typeof startService>[1] = {},
) {
  const receiver = await startReceiver(script, options.fallback)
  t.after(() => receiver.close())
  const h = await startService(t, {
    ...options,
    env: { WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_DELAYS_MS: '10,10', ...options.env },
  })
  return { h, receiver, webhooks: webhooksOf(h) }
}

function webhooksOf(h: Harness): Webhooks {
  const { webhooks } = h.service
  assert.ok(webhooks, 'WEBHOOK_SECRET is set: webhooks are on')
  return webhooks
}

/** Checks the call with the standardwebhooks package and returns its payload. */
function verified(call: Received | undefined): {
  type: string
  timestamp: string
  data: Record<string, unknown>
} {
  assert.ok(call, 'the receiver was called')
  const pick = (headers: IncomingHttpHeaders, name: string) => String(headers[name])
  const headers = Object.fromEntries(
    ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((name) => [name, pick(call.headers, name)]),
  )
  return new Webhook(SECRET).verify(call.body, headers) as ReturnType<typeof verified>
}

/** Submits, lets the queue drain and every delivery settle, and returns the final status. */
async function runWithWebhook(h: Harness, urls: string[], webhookUrl: string) {
  const jobId = await h.submit(urls, { webhookUrl })
  await h.service.queue.onIdle()
  await webhooksOf(h).onIdle()
  return h.status(jobId)
}

test('a complete job is delivered once, signed, with the right counts; the status shows it without the URL', async (t) => {
  const { h, receiver } = await setup(t)
  const urls = [`${h.origin.url}/img/1.png`, `${h.origin.url}/img/2.png`, `${h.origin.url}/status/404`]
  const status = await runWithWebhook(h, urls, `${receiver.url}/hook?token=s3cret`)

  assert.equal(receiver.received.length, 1)
  const [call] = receiver.received
  assert.equal(call?.path, '/hook')
  assert.equal(call?.search, '?token=s3cret', 'the query string reaches the receiver')
  assert.equal(call?.headers['content-type'], 'application/json')
  assert.match(String(call?.headers['user-agent']), /^imgur-upload-service\//)
  assert.match(String(call?.headers['webhook-id']), /^msg_/)
  assert.match(String(call?.headers['webhook-timestamp']), /^\d{10}$/)
  assert.match(String(call?.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]+=*$/)
  const payload = verified(call)
  assert.deepEqual(payload, {
    type: 'job.completed',
    timestamp: status.finished,
    data: { jobId: status.id, created: status.created, finished: status.finished, complete: 2, failed: 1 },
  })

  assert.deepEqual(status.webhook, { state: 'delivered', attempts: 1 })
  assert.doesNotMatch(JSON.stringify(status), /s3cret|\/hook/, 'the status never shows the URL')
  assert.doesNotMatch(h.logs.join(''), /s3cret/, 'nor do the logs')
  assert.match(h.logs.join(''), /webhook delivered/)

  // A job without a webhookUrl has no webhook and sends nothing.
  const plain = await h.run([`${h.origin.url}/img/3.png`])
  await webhooksOf(h).onIdle()
  assert.equal(plain.webhook, undefined)
  assert.equal(receiver.received.length, 1)
})

test('a job whose every URL failed still calls its webhook, with the failed count', async (t) => {
  const { h, receiver } = await setup(t)
  const urls = [`${h.origin.url}/status/404`, `${h.origin.url}/html-as-png`]
  const status = await runWithWebhook(h, urls, `${receiver.url}/hook`)
  assert.equal(status.uploaded.failed.length, 2)
  assert.deepEqual(verified(receiver.received[0]).data, {
    jobId: status.id,
    created: status.created,
    finished: status.finished,
    complete: 0,
    failed: 2,
  })
  assert.deepEqual(status.webhook, { state: 'delivered', attempts: 1 })
})

test('a 500 is retried with the same webhook-id and a new timestamp; success clears lastError', async (t) => {
  let clock = Date.now()
  const { h, receiver } = await setup(t, [500], {
    // Long enough for a fleet's subscriber, which reads each change from Redis after it is
    // published, to have read the failed attempt before the retry changes the job again.
    env: { WEBHOOK_RETRY_DELAYS_MS: '300' },
    overrides: {
      webhookNow: () => {
        clock += 7000
        return clock
      },
    },
  })
  const jobId = await h.submit([`${h.origin.url}/img/1.png`], { webhookUrl: `${receiver.url}/hook` })
  // After the first attempt the status shows the failure while the retry waits.
  const seen: unknown[] = []
  const delivered = new Promise<void>((resolve) => {
    const unsubscribe = h.service.store.subscribe(jobId, (job) => {
      if (job.webhook?.attempts) seen.push({ ...job.webhook, url: undefined })
      if (job.webhook?.state === 'delivered') resolve()
    })
    t.after(unsubscribe)
  })
  await h.service.queue.onIdle()
  await webhooksOf(h).onIdle()
  // Heard at once from the memory store; from a fleet's, once Redis has told of it.
  await delivered

  assert.equal(receiver.received.length, 2)
  const [first, second] = receiver.received as [Received, Received]
  assert.equal(first.headers['webhook-id'], second.headers['webhook-id'])
  assert.equal(first.body, second.body, 'the same message is sent again')
  assert.equal(Number(second.headers['webhook-timestamp']) - Number(first.headers['webhook-timestamp']), 7)
  assert.notEqual(first.headers['webhook-signature'], second.headers['webhook-signature'])
  verified(first)
  verified(second)
  assert.deepEqual(seen, [
    { state: 'pending', attempts: 1, lastError: 'receiver answered HTTP 500', url: undefined },
    { state: 'delivered', attempts: 2, lastError: undefined, url: undefined },
  ])
  assert.deepEqual((await h.status(jobId)).webhook, { state: 'delivered', attempts: 2 })
})

test('429 and 503 are retried too (with their Retry-After)', async (t) => {
  const { h, receiver } = await setup(t, [{ status: 429, headers: { 'retry-after': '0' } }, 503])
  const status = await runWithWebhook(h, [`${h.origin.url}/img/1.png`], `${receiver.url}/hook`)
  assert.equal(receiver.received.length, 3)
  assert.deepEqual(status.webhook, { state: 'delivered', attempts: 3 })
})

test('after the last retry the delivery has failed, with the last answer as lastError', async (t) => {
  const { h, receiver } = await setup(t, [], { fallback: 500 })
  const status = await runWithWebhook(h, [`${h.origin.url}/img/1.png`], `${receiver.url}/hook?token=s3cret`)
  assert.equal(receiver.received.length, 3, 'one attempt and one retry per delay')
  assert.deepEqual(status.webhook, { state: 'failed', attempts: 3, lastError: 'receiver answered HTTP 500' })
  assert.equal(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size, 1)
  assert.doesNotMatch(h.logs.join(''), /s3cret/)
  assert.match(h.logs.join(''), /webhook failed/)
})

test('410 Gone stops the delivery at once', async (t) => {
  const { h, receiver } = await setup(t, [410])
  const status = await runWithWebhook(h, [`${h.origin.url}/img/1.png`], `${receiver.url}/hook`)
  assert.equal(receiver.received.length, 1)
  assert.deepEqual(status.webhook, {
    state: 'failed',
    attempts: 1,
    lastError: 'receiver answered HTTP 410 Gone: delivery stopped',
  })
})

test('a redirect is not followed: the target receives nothing and the answer counts as a failure', async (t) => {
  const receiver = await startReceiver()
  t.after(() => receiver.close())
  const { h, receiver: redirecting } = await setup(t, [], {
    fallback: { status: 302, headers: { location: `${receiver.url}/target` } },
    env: { WEBHOOK_RETRY_DELAYS_MS: '10' },
  })
  const status = await runWithWebhook(h, [`${h.origin.url}/img/1.png`], `${redirecting.url}/hook`)
  assert.equal(redirecting.received.length, 2)
  assert.equal(receiver.hits('/target'), 0)
  assert.equal(receiver.received.length, 0)
  assert.deepEqual(status.webhook, {
    state: 'failed',
    attempts: 2,
    lastError: 'receiver answered HTTP 302 (redirects are not followed)',
  })
})

test('a receiver that never answers fails by the attempt deadline', async (t) => {
  const { h, receiver } = await setup(t, [], {
    fallback: 'hang',
    env: { WEBHOOK_RETRY_DELAYS_MS: '10' },
    overrides: { webhookTimeoutMs: 150 },
  })
  const status = await runWithWebhook(h, [`${h.origin.url}/img/1.png`], `${receiver.url}/hook`)
  assert.equal(receiver.received.length, 2)
  assert.deepEqual(status.webhook, { state: 'failed', attempts: 2, lastError: 'no answer within 150 ms' })
})

test('a receiver that is not listening: connection refused, retried, then failed', async (t) => {
  const { h, receiver } = await setup(t)
  const url = `${receiver.url}/hook`
  await receiver.close()
  const status = await runWithWebhook(h, [`${h.origin.url}/img/1.png`], url)
  assert.deepEqual(status.webhook, {
    state: 'failed',
    attempts: 3,
    lastError: 'connection refused by the receiver',
  })
})

test('private addresses are refused without a request unless FETCH_ALLOW_PRIVATE_NETWORKS', async (t) => {
  const { h, receiver } = await setup(t, [], {
    env: { FETCH_ALLOW_PRIVATE_NETWORKS: 'false' },
    // A name that resolves to loopback: the connection's own lookup refuses it.
    overrides: {
      lookup: async (hostname) =>
        hostname === 'hooks.test' ? [{ address: '127.0.0.1', family: 4 }] : Promise.reject(new Error('no')),
    },
  })
  // The origin is on loopback too, so the job's URL fails: the job still completes and calls back.
  const literal = await runWithWebhook(h, [`${h.origin.url}/img/1.png`], `${receiver.url}/hook`)
  assert.deepEqual(literal.webhook, {
    state: 'failed',
    attempts: 1,
    lastError: 'blocked: private address literal',
  })
  const named = await runWithWebhook(
    h,
    [`${h.origin.url}/img/2.png`],
    `http://hooks.test:${receiver.port}/hook`,
  )
  assert.deepEqual(named.webhook, {
    state: 'failed',
    attempts: 1,
    lastError: 'blocked: hooks.test resolves to a private or reserved address',
  })
  const local = await runWithWebhook(
    h,
    [`${h.origin.url}/img/3.png`],
    `http://localhost:${receiver.port}/hook`,
  )
  assert.equal(local.webhook?.lastError, 'blocked: host name not allowed')
  assert.equal(receiver.received.length, 0)
})

test('the service never calls itself back (PUBLIC_URL)', async (t) => {
  const { h, receiver } = await setup(t, [], { env: { PUBLIC_URL: 'http://127.0.0.1:1' } })
  const status = await runWithWebhook(h, [`${h.origin.url}/img/1.png`], 'http://127.0.0.1:1/v1/images')
  assert.deepEqual(status.webhook, {
    state: 'failed',
    attempts: 1,
    lastError: 'blocked: the URL points at this service itself',
  })
  assert.equal(receiver.received.length, 0)
})

test('closing drops a delivery waiting to retry and aborts one in flight, without hanging', async (t) => {
  const { h, receiver, webhooks } = await setup(t, [500, 'hang'], {
    // Long waits and the default 15 s deadline: only close() can end this test quickly.
    env: { WEBHOOK_RETRY_DELAYS_MS: '3600000' },
  })
  const waiting = await h.submit([`${h.origin.url}/img/1.png`], { webhookUrl: `${receiver.url}/hook` })
  const failedOnce = new Promise<void>((resolve) => {
    const unsubscribe = h.service.store.subscribe(waiting, (job) => {
      if (job.webhook?.attempts === 1) resolve(unsubscribe())
    })
  })
  await failedOnce
  const inFlight = await h.submit([`${h.origin.url}/img/2.png`], { webhookUrl: `${receiver.url}/hook` })
  await receiver.waitFor(2)
  assert.equal(webhooks.pending, 2)

  const idle = webhooks.onIdle()
  await webhooks.close()
  await idle
  assert.equal(webhooks.pending, 0)
  assert.deepEqual((await h.status(waiting)).webhook, {
    state: 'pending',
    attempts: 1,
    lastError: 'receiver answered HTTP 500',
  })
  assert.deepEqual((await h.status(inFlight)).webhook, { state: 'pending', attempts: 0 })
  assert.match(h.logs.join(''), /webhook deliveries dropped at shutdown/)
  assert.equal(receiver.received.length, 2)
  // A job completing after close sends nothing; closing again is harmless.
  const late = await h.run([`${h.origin.url}/img/3.png`], { webhookUrl: `${receiver.url}/hook` })
  assert.deepEqual(late.webhook, { state: 'pending', attempts: 0 })
  await webhooks.close()
  assert.equal(receiver.received.length, 2)
})
