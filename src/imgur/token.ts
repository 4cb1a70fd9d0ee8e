/**
 * OAuth access tokens for account (Bearer) uploads: refreshed from the refresh token, cached
 * until shortly before expiry, one refresh in flight shared by every caller.
 * https://apidocs.imgur.com/#authorization-and-oauth — /work/shared/notes/imgur-api.md#oauth2
 */
import type { Dispatcher } from 'undici'
import { ServiceError } from '../errors.ts'
import { describeImgurBody, parseImgurError, redactText } from './errors.ts'
import { post, withDeadline } from './http.ts'
import type { Headers } from './rate-limits.ts'

export type TokenManagerOptions = {
  apiUrl: string
  clientId: string
  clientSecret: string
  refreshToken: string
  userAgent: string
  timeoutMs: number
  dispatcher: Dispatcher
  now: () => number
  /** Every response's headers, so rate limits are read from the token endpoint too. */
  onHeaders?: (headers: Headers) => void
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

export function createTokenManager(options: TokenManagerOptions): TokenManager {
  let cached: { token: string; refreshAt: number } | undefined
  let inFlight: Promise<string> | undefined
  // A refused refresh token stays refused until an operator changes it: remember the refusal
  // instead of spending a POST per queued upload on it.
  let refused: ServiceError | undefined
  let refreshToken = options.refreshToken

  async function refresh(): Promise<string> {
    const response = await withDeadline(options.timeoutMs, undefined, (signal) =>
      post(options.dispatcher, `${options.apiUrl}/oauth2/token`, {
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
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      const { text } = describeImgurBody(status, body)
      refused = new ServiceError(
        'imgur_auth',
        `Imgur refused the refresh token (${status}${text ? ` ${text}` : ''})`,
        {
          details: { imgurStatus: status },
        },
      )
      throw refused
    }
    if (status < 200 || status >= 300) throw parseImgurError(status, headers, body, options.now())
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
      if (refused) return Promise.reject(refused)
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
