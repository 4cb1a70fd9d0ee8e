import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertPartition, startService } from './helpers/service.ts'

test('one job through every scripted Imgur failure: each item ends where the policy says', async (t) => {
  const { origin, sandbox, run } = await startService(t, {
    env: { UPLOAD_CONCURRENCY: '1', RETRY_MAX_ATTEMPTS: '10' },
  })
  // With one worker and no retries for permanent failures, the first five items meet these in order.
  const permanent = [
    ['no-image', 'imgur_rejected'],
    ['file-type-invalid', 'imgur_rejected'],
    ['too-large', 'imgur_too_large'],
    ['forbidden-cdn', 'imgur_forbidden'],
    ['token-invalid', 'imgur_token_invalid'],
  ] as const
  // Fewer retryable faults than any item's spare attempts: every later item must still complete.
  const retryable = [
    'server-error',
    'unavailable-html',
    'unavailable-empty',
    'over-capacity',
    { fault: 'rate-limited', retryAfterSeconds: 1 },
    { fault: 'rate-limited-errors', retryAfterSeconds: 1 },
    'reset',
  ] as const
  sandbox.script(...permanent.map(([fault]) => fault), ...retryable)
  const urls = Array.from({ length: 12 }, (_, i) => `${origin.url}/img/${i}.png`)
  const body = await run(urls)

  assert.equal(body.status, 'complete')
  assertPartition(body, urls)
  permanent.forEach(([fault, code], i) => {
    assert.equal(body.items[i]?.state, 'failed', fault)
    assert.equal(body.items[i]?.reason?.code, code, fault)
    assert.equal(body.items[i]?.attempts, 1, fault)
  })
  const rest = body.items.slice(permanent.length)
  assert.ok(rest.every((item) => item.state === 'complete'))
  const attempts = rest.reduce((sum, item) => sum + item.attempts, 0)
  assert.equal(attempts, rest.length + retryable.length, 'one extra attempt per retryable fault')
  const uploadRequests = sandbox.requests.filter((r) => r.path === '/3/image').length
  assert.equal(uploadRequests, permanent.length + attempts)
  assert.equal(sandbox.uploads.length, rest.length)
})

test('a refused client id mid-job fails the rest at once', async (t) => {
  const { origin, sandbox, run } = await startService(t, { env: { UPLOAD_CONCURRENCY: '1' } })
  sandbox.script('invalid-client-id')
  const urls = Array.from({ length: 5 }, (_, i) => `${origin.url}/img/${i}.png`)
  const body = await run(urls)
  assert.deepEqual(body.uploaded.failed, urls)
  assert.equal(sandbox.requests.length, 1)
})

test('a rate-limit reset later than MAX_RATE_LIMIT_WAIT_MS fails the item saying when', async (t) => {
  const { origin, sandbox, run } = await startService(t, { env: { MAX_RATE_LIMIT_WAIT_MS: '60000' } })
  sandbox.script({ fault: 'rate-limited', retryAfterSeconds: 7200 })
  const body = await run([`${origin.url}/img/1.png`])
  const item = body.items[0]
  assert.equal(item?.state, 'failed')
  assert.equal(item?.reason?.code, 'imgur_rate_limited')
  assert.match(item?.reason?.message ?? '', /resets at \d{4}-\d{2}-\d{2}T/)
  assert.equal(item?.attempts, 1)
})

test('the scheduler stops before a budget hits zero and says when it resets', async (t) => {
  const { origin, sandbox, run } = await startService(t, {
    sandbox: { budget: { posts: 3, resetSeconds: 3600 } },
    env: { UPLOAD_CONCURRENCY: '1' },
  })
  const urls = Array.from({ length: 5 }, (_, i) => `${origin.url}/img/${i}.png`)
  const body = await run(urls)
  assert.equal(body.uploaded.complete.length, 3)
  assert.equal(body.uploaded.failed.length, 2)
  assert.ok(
    body.items.slice(3).every((item) => item.reason?.code === 'imgur_rate_limited' && item.attempts === 0),
  )
  assert.ok(
    sandbox.requests.every((r) => r.status === 200),
    'no request was sent into a 429',
  )
})
