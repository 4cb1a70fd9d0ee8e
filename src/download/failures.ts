import { type ErrorCode, ServiceError } from '../errors.ts'
import { formatDuration } from '../units.ts'

type Context = { url: URL; reading: boolean; timeoutMs: number; timedOut: boolean }

const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
/** Resolver failures that are a verdict on the name (NXDOMAIN, or no address record); c-ares spellings too. */
const NO_SUCH_HOST = new Set(['ENOTFOUND', 'EAI_NONAME', 'EAI_NODATA', 'ENODATA', 'EBADNAME'])
/** Codes only a resolver reports (the guarded lookup already makes its failures DNS errors). */
const RESOLVER = new Set(['EAI_AGAIN', 'EAI_FAIL', 'ESERVFAIL', 'ETIMEOUT', 'EREFUSED', ...NO_SUCH_HOST])
const DROPPED = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED'])

/** Node reports a failed Happy Eyeballs race as an AggregateError; its first attempt names the cause. */
export function errorCode(error: unknown): string {
  const e = error as { code?: unknown; errors?: unknown[] } | undefined
  if (typeof e?.code === 'string') return e.code
  return Array.isArray(e?.errors) ? errorCode(e.errors[0]) : ''
}

/**
 * A failed resolution of `hostname`. Node's `dns.lookup` folds NXDOMAIN and "no address" into
 * `ENOTFOUND`: asking again gives the same answer, so it fails at once. Anything else (`EAI_AGAIN`
 * for SERVFAIL or a resolver timeout, `EAI_FAIL`, an unknown error) is the resolver's trouble, not
 * the URL's: retried.
 */
export function dnsFailure(error: unknown, hostname: string): ServiceError {
  if (NO_SUCH_HOST.has(errorCode(error))) {
    return new ServiceError('download_dns_not_found', `host ${hostname} not found in DNS`, { cause: error })
  }
  return new ServiceError('download_dns_unavailable', `DNS lookup for host ${hostname} failed temporarily`, {
    retryable: true,
    cause: error,
  })
}

/**
 * Maps a low-level failure to a public ServiceError. Messages are shown to API users, so they
 * never carry addresses, ports or errno text (no port-scan oracle); the raw error is the cause.
 */
export function classifyError(error: unknown, context: Context): ServiceError {
  const fail = (code: ErrorCode, message: string, retryable: boolean) =>
    new ServiceError(code, message, { retryable, cause: error })
  const code = errorCode(error)
  if (context.timedOut || TIMEOUTS.has(code)) {
    return fail(
      'download_timeout',
      `download did not finish within ${formatDuration(context.timeoutMs)}`,
      true,
    )
  }
  if (context.reading && (DROPPED.has(code) || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH')) {
    return fail('download_truncated', 'origin closed the connection before the body was complete', true)
  }
  if (RESOLVER.has(code)) return dnsFailure(error, context.url.hostname)
  if (code === 'ECONNREFUSED') return fail('download_network', 'connection refused by origin', true)
  if (DROPPED.has(code)) return fail('download_network', 'connection reset by origin', true)
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT') {
    return fail('download_network', 'origin is unreachable', true)
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code)) {
    return fail('download_network', "origin's TLS certificate is not valid", false)
  }
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS')) {
    return fail('download_network', 'TLS handshake with origin failed', true)
  }
  return fail('download_network', 'could not download from origin', true)
}
