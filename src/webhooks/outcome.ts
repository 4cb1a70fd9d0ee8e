/**
 * What one attempt's result means for the delivery: delivered, retried (and after how long) or
 * failed for good, in words fit for the public status (never an address, port or URL).
 */
import type { IncomingHttpHeaders } from 'node:http'
import { errorCode } from '../download/failures.ts'
import { isServiceError } from '../errors.ts'
import { retryAfterHeaderMs } from '../imgur/rate-limits.ts'
import { formatDuration } from '../units.ts'

/** `final`: no retry, whatever the schedule says (410 Gone, a refused address). */
export type Outcome =
  | { ok: true; status: number }
  | { ok: false; error: string; final: boolean; retryAfterMs?: number | undefined }

const DROPPED = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED'])

/**
 * The wait before the next attempt after `failed` failed attempts, or undefined once the
 * schedule is spent. A longer Retry-After is honoured, up to the schedule's longest wait.
 */
export function nextDelay(
  delays: readonly number[],
  failed: number,
  retryAfterMs: number | undefined,
): number | undefined {
  const scheduled = delays[failed - 1]
  if (scheduled === undefined) return undefined
  if (retryAfterMs === undefined || retryAfterMs <= scheduled) return scheduled
  return Math.min(retryAfterMs, Math.max(...delays))
}

/** What an answer means: 2xx delivered; 410 stops; anything else, redirects included, is retried. */
export function judge(status: number, headers: IncomingHttpHeaders, now = Date.now()): Outcome {
  if (status >= 200 && status <= 299) return { ok: true, status }
  if (status === 410)
    return { ok: false, final: true, error: 'receiver answered HTTP 410 Gone: delivery stopped' }
  if (status >= 300 && status <= 399) {
    return { ok: false, final: false, error: `receiver answered HTTP ${status} (redirects are not followed)` }
  }
  const retryAfterMs = status === 429 || status === 503 ? retryAfterHeaderMs(headers, now) : undefined
  return { ok: false, final: false, error: `receiver answered HTTP ${status}`, retryAfterMs }
}

/** A network failure in words that carry no address, port or URL (lastError is public). */
export function describe(error: unknown, timeoutMs: number): string {
  if (isServiceError(error)) return error.message
  const code = errorCode(error)
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return `no answer within ${formatDuration(timeoutMs)}`
  }
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connecting to the receiver timed out'
  if (code === 'ECONNREFUSED') return 'connection refused by the receiver'
  if (DROPPED.has(code)) return 'connection reset by the receiver'
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT')
    return 'receiver is unreachable'
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code)) return "receiver's TLS certificate is not valid"
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS'))
    return 'TLS handshake with the receiver failed'
  return 'could not reach the receiver'
}
