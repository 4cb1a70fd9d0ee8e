/**
 * Imgur's rate-limit headers, read into budgets (src/budgets.ts keeps them). Pure: every function
 * gets the clock as an argument.
 * Header facts: /work/shared/notes/imgur-api.md#rate-limits
 */
import { type Budget, type ParsedLimits, UPLOAD_COST } from '../budgets.ts'

export type Headers = Record<string, string | string[] | undefined>

const HOUR = 3_600_000
/** Reset headers below this are seconds-to-reset; above it, epoch seconds (docs say epoch, servers send seconds). */
const EPOCH_THRESHOLD = 1e9

// A missing reset means "a full window from now": ClientReset is often absent and the client
// budget is daily, so we assume the day restarts 24 h after the reading. That only matters once
// the budget is exhausted, and then guessing late is the safe side (five daily exhaustions a
// month block the app). The post and user buckets are hourly.
const SOURCES = {
  post: {
    limit: 'x-post-rate-limit-limit',
    remaining: 'x-post-rate-limit-remaining',
    reset: 'x-post-rate-limit-reset',
    window: HOUR,
  },
  client: {
    limit: 'x-ratelimit-clientlimit',
    remaining: 'x-ratelimit-clientremaining',
    reset: 'x-ratelimit-clientreset',
    window: 24 * HOUR,
  },
  user: {
    limit: 'x-ratelimit-userlimit',
    remaining: 'x-ratelimit-userremaining',
    reset: 'x-ratelimit-userreset',
    window: HOUR,
  },
} as const

/**
 * A header's first value, looked up case-insensitively (undici lower-cases, hand-built maps may
 * not). Read ten times an upload: `for…in` walks the keys without building `Object.entries`'
 * arrays, which were 6 % of what the pipeline's thread allocated.
 */
export function header(headers: Headers, name: string): string | undefined {
  let value = headers[name]
  if (value === undefined) {
    for (const key in headers) {
      if (key.toLowerCase() === name) {
        value = headers[key]
        break
      }
    }
  }
  return Array.isArray(value) ? value[0] : value
}

function count(headers: Headers, name: string): number | undefined {
  const raw = header(headers, name)?.trim()
  if (!raw) return undefined
  const value = Number(raw)
  return Number.isFinite(value) && value >= 0 ? value : undefined
}

export function parseRateLimitHeaders(headers: Headers, now: number): ParsedLimits {
  const parsed: ParsedLimits = {}
  for (const kind of ['post', 'client', 'user'] as const) {
    const source = SOURCES[kind]
    const remaining = count(headers, source.remaining)
    if (remaining === undefined) continue
    const reset = count(headers, source.reset)
    const budget: Budget = {
      limit: Math.max(count(headers, source.limit) ?? remaining, remaining),
      remaining,
      resetAt:
        reset === undefined
          ? now + source.window
          : reset > EPOCH_THRESHOLD
            ? reset * 1000
            : now + reset * 1000,
    }
    if (reset === undefined) budget.resetAssumed = true
    parsed[kind] = budget
  }
  return parsed
}

/** Retry-After, in seconds or as an HTTP date (RFC 9110 §10.2.3), as a wait from `now`. */
export function retryAfterHeaderMs(headers: Headers, now: number): number | undefined {
  const retryAfter = header(headers, 'retry-after')?.trim()
  if (!retryAfter) return undefined
  const at = /^\d+$/.test(retryAfter) ? now + Number(retryAfter) * 1000 : Date.parse(retryAfter)
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined
}

/**
 * How long a 429 asks us to wait: Retry-After when present, else the reset of the exhausted
 * budgets. With several exhausted we take the LATEST reset: an upload needs all of them.
 */
export function retryAfterMs(headers: Headers, now: number): number | undefined {
  const asked = retryAfterHeaderMs(headers, now)
  if (asked !== undefined) return asked
  const { post, client, user } = parseRateLimitHeaders(headers, now)
  const exhausted = [
    post && post.remaining < UPLOAD_COST.post ? post : undefined,
    client && client.remaining < UPLOAD_COST.credits ? client : undefined,
    user && user.remaining < UPLOAD_COST.credits ? user : undefined,
  ].filter((budget) => budget !== undefined)
  if (exhausted.length === 0) return undefined
  return Math.max(0, ...exhausted.map((budget) => budget.resetAt - now))
}
