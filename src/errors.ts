/**
 * The one error class of the service. `code` is stable (clients, logs and metrics key on it);
 * `message` is for people. `retryable` drives the retry policy; `statusCode` is set on errors
 * that answer an HTTP request of ours.
 */
export type ServiceErrorOptions = {
  retryable?: boolean
  statusCode?: number
  /** Extra JSON-safe facts for an API error body (e.g. the offending URL indexes). */
  details?: Record<string, unknown>
  /** A wait the remote side asked for (rate limits); the retry policy honours it. */
  retryAfterMs?: number
  /** Headers the HTTP answer carries (WWW-Authenticate on a 401, RateLimit-* on a 429). */
  headers?: Record<string, string>
  cause?: unknown
}

export class ServiceError extends Error {
  override name = 'ServiceError'
  readonly code: string
  readonly retryable: boolean
  readonly statusCode: number | undefined
  readonly details: Record<string, unknown> | undefined
  readonly retryAfterMs: number | undefined
  readonly headers: Record<string, string> | undefined

  constructor(code: string, message: string, options: ServiceErrorOptions = {}) {
    super(message, { cause: options.cause })
    this.code = code
    this.retryable = options.retryable ?? false
    this.statusCode = options.statusCode
    this.details = options.details
    this.retryAfterMs = options.retryAfterMs
    this.headers = options.headers
  }
}

export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof ServiceError
}
