/**
 * OAuth access tokens for account (Bearer) uploads: refreshed from the refresh token, cached
 * until shortly before expiry, one refresh in flight shared by every caller.
 * https://apidocs.imgur.com/#authorization-and-oauth — /work/shared/notes/imgur-api.md#oauth2
 *
 * Only a refusal of the grant itself (a bad or revoked refresh token, an unknown client) is
 * permanent, and even that is asked again after REFUSAL_COOL_DOWN_MS. Everything else — network,
 * 5xx, 429, "over capacity", HTML pages, answers we do not recognise — is retryable, so the item
 * retry policy tries again.
 */
import { ServiceError } from '../errors.ts'
import { describeImgurBody, isHtml, parseImgurError, redactText } from './errors.ts'
import { type Connections, post, withDeadline } from './http.ts'
import type { Headers } from './rate-limits.ts'

export type TokenManagerOptions = {
  apiUrl: string
  clientId: string
  clientSecret: string
  refreshToken: string
  userAgent: string
  timeoutMs: number
  connections: Connections
  now: () => number
  /** Every response's headers, so rate limits are read from the token endpoint too. */
  onHeaders?: (headers: Headers) => void
  /** A 429 from the token endpoint and the wait it named: the account's uploads hold off too. */
  onRateLimited?: (retryAfterMs: number | undefined) => void
}

export type TokenManager = {
  get(): Promise<string>
  /** Forget `token` if it is still the cached one: the next get() refreshes. Stale calls are no-ops. */
  invalidate(token: string): void
  /** The refresh token currently in use (Imgur may rotate it), for redaction. */
  refreshToken(): string
}

/** Used when Imgur omits `expires_in`: refreshing early costs nothing (no credits). */
const DEFAULT_EXPIRES_IN_S = 3600
const MAX_EARLY_MS = 5 * 60_000
/**
 * How long a refused grant is remembered: queued uploads fail at once instead of each spending a
 * POST on it, yet a fix on Imgur's side (the app re-authorised, a glitch over) needs no restart.
 */
export const REFUSAL_COOL_DOWN_MS = 60_000
/** RFC 6749 §5.2 error codes and Imgur's own texts for a grant it will not honour. */
const REFUSED_GRANT =
  /\binvalid[_ ](grant|client|refresh[_ ]token)|\bunauthorized[_ ]client\b|\bunsupported[_ ]grant[_ ]type\b|\b(refresh[_ ]token|client[_ ]?(id|secret))\b.*\b(invalid|revoked|expired)\b|\brevoked\b/i
const REFUSAL_STATUSES = new Set([400, 401, 403])

/** The OAuth shape's `error_description` (RFC 6749 §5.2), which Imgur's own shapes lack. */
function errorDescription(body: string): string | undefined {
  try {
    const value = (JSON.parse(body) as { error_description?: unknown } | null)?.error_description
    if (typeof value !== 'string') return undefined
    return (
      value
        .replace(/[\s\p{Cc}]+/gu, ' ')
        .trim()
        .slice(0, 120) || undefined
    )
  } catch {
    return undefined
  }
}

/** What Imgur said when it refused the grant itself; undefined for any other failure. */
function grantRefusal(status: number, body: string): string | undefined {
  if (!REFUSAL_STATUSES.has(status) || isHtml(body)) return undefined
  const said = [describeImgurBody(status, body).text, errorDescription(body)]
    .filter((part) => part !== undefined)
    .join(': ')
  return REFUSED_GRANT.test(said) ? said : undefined
}

export function createTokenManager(options: TokenManagerOptions): TokenManager {
  let cached: { token: string; refreshAt: number } | undefined
  let inFlight: Promise<string> | undefined
  let refused: { error: ServiceError; until: number } | undefined
  let refreshToken = options.refreshToken

  function failure(status: number, headers: Headers, body: string): ServiceError {
    const said = grantRefusal(status, body)
    if (said !== undefined) {
      const error = new ServiceError('imgur_auth', `Imgur refused the refresh token (${status} ${said})`, {
        details: { imgurStatus: status },
      })
      refused = { error, until: options.now() + REFUSAL_COOL_DOWN_MS }
      return error
    }
    const error = parseImgurError(status, headers, body, options.now())
    if (status === 429) options.onRateLimited?.(error.retryAfterMs)
    if (error.retryable) return error
    // An HTML page, or a 4xx that refuses nothing we can name: not the grant's fault.
    const { text } = describeImgurBody(status, body)
    return new ServiceError(
      'imgur_token_failed',
      `Imgur's token endpoint answered ${status}${text ? ` (${text})` : ''}`,
      { retryable: true, details: error.details, cause: error },
    )
  }

  async function refresh(): Promise<string> {
    const response = await withDeadline(options.timeoutMs, undefined, (signal) =>
      post(options.connections, `${options.apiUrl}/oauth2/token`, {
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'user-agent': options.userAgent,
        },
        body: JSON.stringify({
          grant_type: 'refresh_token',
          client_id: options.clientId,
          client_secret: options.clientSecret,
          refresh_token: refreshToken,
        }),
        signal,
      }),
    )
    options.onHeaders?.(response.headers)
    const { status, headers } = response
    const secrets = [options.clientId, options.clientSecret, refreshToken, options.refreshToken]
    const body = status >= 300 ? redactText(response.body, secrets) : response.body
    if (status < 200 || status >= 300) throw failure(status, headers, body)
    let parsed: { access_token?: unknown; expires_in?: unknown; refresh_token?: unknown } | undefined
    try {
      parsed = JSON.parse(body)
    } catch {}
    const token = parsed?.access_token
    if (typeof token !== 'string' || token === '') {
      throw new ServiceError(
        'imgur_bad_response',
        "Imgur's token endpoint answered without an access token",
        {
          retryable: true,
          details: { imgurStatus: status },
        },
      )
    }
    const expiresIn =
      typeof parsed?.expires_in === 'number' && parsed.expires_in > 0
        ? parsed.expires_in
        : DEFAULT_EXPIRES_IN_S
    const lifetimeMs = expiresIn * 1000
    cached = { token, refreshAt: options.now() + lifetimeMs - Math.min(MAX_EARLY_MS, lifetimeMs / 10) }
    if (typeof parsed?.refresh_token === 'string' && parsed.refresh_token !== '')
      refreshToken = parsed.refresh_token
    return token
  }

  return {
    get() {
      if (refused && options.now() < refused.until) return Promise.reject(refused.error)
      refused = undefined
      if (cached && options.now() < cached.refreshAt) return Promise.resolve(cached.token)
      if (!inFlight) {
        inFlight = refresh().finally(() => {
          inFlight = undefined
        })
        // Callers may all give up (deadline, abort) before it settles; the outcome is still cached.
        inFlight.catch(() => undefined)
      }
      return inFlight
    },
    invalidate(token) {
      if (cached?.token === token) cached = undefined
    },
    refreshToken: () => refreshToken,
  }
}
