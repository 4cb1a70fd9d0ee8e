/**
 * The retry policy, in one place: only retryable errors are tried again, at most `maxAttempts`
 * times in all, after an exponential backoff with full jitter — or after the wait the remote
 * side asked for (a rate-limit reset), when it gave one.
 */
import { isServiceError } from '../errors.ts'

export type RetryPolicy = {
  maxAttempts: number
  baseDelayMs: number
  maxDelayMs: number
  random?: () => number
}

/** Milliseconds to wait before the next attempt, or `undefined` when the item must fail now. */
export function retryDelay(policy: RetryPolicy, error: unknown, attempts: number): number | undefined {
  if (!isServiceError(error) || !error.retryable || attempts >= policy.maxAttempts) return undefined
  if (error.retryAfterMs !== undefined) {
    // Imgur's rate-limit resets are honoured in full (the scheduler bounds them by
    // MAX_RATE_LIMIT_WAIT_MS); any other Retry-After is only a hint, capped like a backoff.
    return error.code === 'imgur_rate_limited'
      ? error.retryAfterMs
      : Math.min(error.retryAfterMs, policy.maxDelayMs)
  }
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempts - 1))
  return Math.round((policy.random ?? Math.random)() * ceiling)
}
