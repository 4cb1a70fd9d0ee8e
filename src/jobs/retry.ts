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
  if (error.retryAfterMs !== undefined) return error.retryAfterMs
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempts - 1))
  return Math.round((policy.random ?? Math.random)() * ceiling)
}
