/**
 * The one error class of the service, and the catalogue of every code it carries. `code` is
 * stable (clients, logs and metrics key on it); `message` is for people. The catalogue says, once
 * per code, whether it is worth another attempt (`retryable`, which drives the retry policy; an
 * error may say otherwise when the same code covers both, e.g. an origin's 404 and 503), which
 * HTTP status it answers with when it answers one of our requests (`status`), and whether it
 * ends the job's other URLs too (`failsRest`). The README's tables follow this list.
 */
type Entry = { retryable?: boolean; status?: number; failsRest?: boolean }

export const ERRORS = {
  // Why a URL failed (an item's reason).
  download_blocked: {},
  download_bad_url: {},
  download_bad_redirect: {},
  download_too_many_redirects: {},
  download_url_is_this_service: {},
  download_http_status: {},
  download_timeout: { retryable: true },
  download_network: { retryable: true },
  download_truncated: { retryable: true },
  download_dns_not_found: {},
  download_dns_unavailable: { retryable: true },
  download_too_large: {},
  download_bad_encoding: {},
  download_empty: {},
  not_an_image: {},
  unsupported_format: {},
  image_too_large: {},
  image_too_many_pixels: {},
  image_unreadable: {},
  convert_timeout: {},
  convert_busy: { retryable: true },
  convert_out_of_memory: {},
  item_timeout: { retryable: true },
  imgur_rejected: {},
  imgur_too_large: {},
  imgur_forbidden: {},
  imgur_client_id_refused: { failsRest: true },
  imgur_auth: {},
  imgur_token_invalid: {},
  imgur_token_failed: { retryable: true },
  imgur_no_credentials: {},
  imgur_rate_limited: { retryable: true },
  imgur_over_capacity: { retryable: true },
  imgur_unavailable: { retryable: true },
  imgur_network: { retryable: true },
  imgur_timeout: { retryable: true },
  imgur_bad_response: { retryable: true },
  album_empty: {},
  cancelled: {},
  worker_lost: {},
  internal_error: {},
  // Answers to our own API's requests.
  invalid_urls: { status: 400 },
  invalid_body: { status: 400 },
  invalid_json: { status: 400 },
  invalid_limit: { status: 400 },
  invalid_cursor: { status: 400 },
  invalid_idempotency_key: { status: 400 },
  invalid_webhook_url: { status: 400 },
  webhooks_disabled: { status: 400 },
  unauthorized: { status: 401 },
  job_not_found: { status: 404 },
  request_timeout: { status: 408 },
  idempotency_request_in_progress: { status: 409 },
  body_too_large: { status: 413 },
  unsupported_media_type: { status: 415 },
  idempotency_key_reused: { status: 422 },
  headers_too_large: { status: 431 },
  submit_rate_limited: { status: 429 },
  daily_quota_exceeded: { status: 429 },
  too_many_streams: { status: 429 },
  queue_full: { status: 503 },
  shutting_down: { status: 503 },
  store_unavailable: { status: 503, retryable: true },
  // A programming error in how a component was built (never reaches a client).
  imgur_invalid_options: {},
} as const satisfies Record<string, Entry>

export type ErrorCode = keyof typeof ERRORS

const entry = (code: ErrorCode): Entry => ERRORS[code]

export type ServiceErrorOptions = {
  /** Overrides the catalogue, for codes that cover both kinds (an origin's 404 and its 503). */
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
  readonly code: ErrorCode
  readonly retryable: boolean
  readonly statusCode: number | undefined
  /** The job's other URLs cannot succeed either (e.g. Imgur refused its client id). */
  readonly failsRest: boolean
  readonly details: Record<string, unknown> | undefined
  readonly retryAfterMs: number | undefined
  readonly headers: Record<string, string> | undefined

  constructor(code: ErrorCode, message: string, options: ServiceErrorOptions = {}) {
    super(message, { cause: options.cause })
    const known = entry(code)
    this.code = code
    this.retryable = options.retryable ?? known.retryable ?? false
    this.statusCode = options.statusCode ?? known.status
    this.failsRest = known.failsRest ?? false
    this.details = options.details
    this.retryAfterMs = options.retryAfterMs
    this.headers = options.headers
  }
}

export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof ServiceError
}
