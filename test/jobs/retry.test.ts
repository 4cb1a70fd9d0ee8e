import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ServiceError } from '../../src/errors.ts'
import { retryDelay } from '../../src/jobs/retry.ts'

const policy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1000, random: () => 1 }
const retryable = new ServiceError('imgur_unavailable', 'Imgur answered 503', { retryable: true })

test('retryable errors back off exponentially up to the ceiling', () => {
  assert.deepEqual(
    [1, 2, 3].map((attempt) => retryDelay({ ...policy, maxAttempts: 10 }, retryable, attempt)),
    [100, 200, 400],
  )
  assert.equal(retryDelay({ ...policy, maxAttempts: 10 }, retryable, 8), 1000)
})

test('jitter spreads the delay between zero and the ceiling', () => {
  assert.equal(retryDelay({ ...policy, random: () => 0 }, retryable, 3), 0)
  assert.equal(retryDelay({ ...policy, random: () => 0.5 }, retryable, 3), 200)
})

test('no retry after the last attempt, for permanent errors or for unknown errors', () => {
  assert.equal(retryDelay(policy, retryable, 4), undefined)
  assert.equal(retryDelay(policy, new ServiceError('imgur_rejected', 'no'), 1), undefined)
  assert.equal(retryDelay(policy, new Error('bug'), 1), undefined)
})

test('a wait the remote side asked for wins over the backoff', () => {
  const limited = new ServiceError('imgur_rate_limited', '429', { retryable: true, retryAfterMs: 42_000 })
  assert.equal(retryDelay(policy, limited, 1), 42_000)
})

test("an origin's Retry-After is a hint capped at the longest backoff", () => {
  const busy = new ServiceError('download_http_status', 'origin answered HTTP 503', {
    retryable: true,
    retryAfterMs: 86_400_000,
  })
  assert.equal(retryDelay(policy, busy, 1), 1000)
})
