import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Webhook } from 'standardwebhooks'
import { completeItem, createJob, failItem } from '../../src/jobs/model.ts'
import { completedMessage, messageId, signature, signingKey } from '../../src/webhooks/message.ts'
import { judge, nextDelay } from '../../src/webhooks/outcome.ts'

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`

test('signatures verify with the standardwebhooks package, and only with the right secret', () => {
  const key = signingKey(SECRET)
  const id = messageId()
  const timestamp = Math.floor(Date.now() / 1000)
  const body = '{"type":"job.completed","data":{"é":"ü"}}'
  const headers = {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signature(key, id, timestamp, body),
  }
  assert.deepEqual(new Webhook(SECRET).verify(body, headers), JSON.parse(body))
  const other = `whsec_${Buffer.alloc(32, 8).toString('base64')}`
  assert.throws(() => new Webhook(other).verify(body, headers), /No matching signature/)
  assert.throws(() => new Webhook(SECRET).verify(`${body} `, headers), /No matching signature/)
  assert.match(id, /^msg_[0-9a-f]{32}$/)
  assert.notEqual(messageId(), id)
})

test('a secret must be whsec_ and base64', () => {
  assert.equal(signingKey(SECRET).length, 32)
  assert.throws(() => signingKey('secret'), /Expected `secret` to be `whsec_`/)
  assert.throws(() => signingKey('whsec_not base64!'), /Expected `secret`/)
})

test('the job.completed payload is thin: ids, times and counts', () => {
  const job = createJob(['http://a/1', 'http://a/2', 'http://a/3'], [], {}, Date.UTC(2026, 0, 1))
  const [one, two, three] = job.items
  completeItem(job, one as never, { link: 'https://i.imgur.com/a.png', reused: false })
  failItem(job, two as never, { code: 'download_http_status', message: 'origin answered HTTP 404' })
  failItem(
    job,
    three as never,
    { code: 'download_http_status', message: 'origin answered HTTP 404' },
    Date.UTC(2026, 0, 1, 0, 1),
  )
  assert.deepEqual(JSON.parse(completedMessage(job)), {
    type: 'job.completed',
    timestamp: '2026-01-01T00:01:00.000Z',
    data: {
      jobId: job.id,
      created: '2026-01-01T00:00:00.000Z',
      finished: '2026-01-01T00:01:00.000Z',
      complete: 1,
      failed: 2,
    },
  })
})

test('the retry schedule: one wait per retry, a longer Retry-After honoured up to the longest wait', () => {
  const delays = [5000, 300_000, 1_800_000]
  assert.equal(nextDelay(delays, 1, undefined), 5000)
  assert.equal(nextDelay(delays, 2, undefined), 300_000)
  assert.equal(nextDelay(delays, 3, undefined), 1_800_000)
  assert.equal(nextDelay(delays, 4, undefined), undefined, 'spent: failed')
  assert.equal(nextDelay(delays, 1, 1000), 5000, 'a shorter Retry-After does not hurry the schedule')
  assert.equal(nextDelay(delays, 1, 60_000), 60_000)
  assert.equal(nextDelay(delays, 1, 86_400_000), 1_800_000, 'capped at the longest wait')
  assert.equal(nextDelay(delays, 4, 1000), undefined)
})

test('answers: 2xx delivered, 410 final, 3xx and others retried, Retry-After read on 429 and 503 only', () => {
  assert.deepEqual(judge(200, {}), { ok: true, status: 200 })
  assert.deepEqual(judge(204, {}), { ok: true, status: 204 })
  assert.deepEqual(judge(410, {}), {
    ok: false,
    final: true,
    error: 'receiver answered HTTP 410 Gone: delivery stopped',
  })
  assert.deepEqual(judge(302, { location: 'http://elsewhere/' }), {
    ok: false,
    final: false,
    error: 'receiver answered HTTP 302 (redirects are not followed)',
  })
  const now = Date.UTC(2026, 0, 1)
  assert.equal(judge(429, { 'retry-after': '120' }, now).ok, false)
  assert.deepEqual(judge(429, { 'retry-after': '120' }, now), {
    ok: false,
    final: false,
    error: 'receiver answered HTTP 429',
    retryAfterMs: 120_000,
  })
  const date = new Date(now + 30_000).toUTCString()
  assert.equal((judge(503, { 'retry-after': date }, now) as { retryAfterMs: number }).retryAfterMs, 30_000)
  assert.equal(
    (judge(500, { 'retry-after': '120' }, now) as { retryAfterMs?: number }).retryAfterMs,
    undefined,
  )
  assert.equal(
    (judge(429, { 'retry-after': 'soon' }, now) as { retryAfterMs?: number }).retryAfterMs,
    undefined,
  )
})
