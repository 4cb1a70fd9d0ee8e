/**
 * Per-client submission limits: SUBMIT_RATE_LIMIT submissions per minute and DAILY_URL_QUOTA URLs
 * per UTC day, per API key name (per client IP without keys). Windows are fixed and aligned to the
 * clock (they reset at the next minute and at UTC midnight). A submission is checked whole before
 * the job is created and counted only once it was accepted, so a refused one costs nothing.
 *
 * Written here rather than with @fastify/rate-limit: that plugin counts every request as it
 * arrives (before validation, a refusal or a full queue) with windows that start at each
 * client's first request, has no injectable clock, and cannot weigh a request by its URLs; the
 * daily quota needs all of that, and one table and one set of headers serve both limits.
 *
 * Answers carry RateLimit-Limit / -Remaining / -Reset (draft-ietf-httpapi-ratelimit-headers-03 and
 * later -0x up to -06: the reset in seconds) of the limit nearest to exhaustion, or of the limit
 * that refused the submission.
 */
import { EventEmitter } from 'node:events'
import { type ErrorCode, ServiceError } from '../errors.ts'
import { LruMap } from '../lru.ts'
import { keyLabel } from './access.ts'

const MINUTE = 60_000
const DAY = 86_400_000
/** Clients remembered at most (least recently submitting dropped first), so a flood of addresses stays bounded. */
export const MAX_CLIENTS = 100_000

export type LimitName = 'submit_rate' | 'daily_quota'

export type QuotaOptions = {
  /** Submissions per minute, per client. */
  submitRateLimit: number
  /** URLs per UTC day, per client; 0: no quota. */
  dailyUrlQuota: number
  maxClients?: number
  now?: () => number
}

type Usage = { minute: number; submissions: number; day: number; urls: number }

type Window = { limit: LimitName; max: number; used: number; resetAt: number }

export type QuotaEvents = {
  admitted: [{ key: string; urls: number }]
  refused: [{ key: string; limit: LimitName }]
}

/** A submission counted against its client's limits: `commit` once its job is accepted, else `cancel`. */
export type Admission = { commit(): Record<string, string>; cancel(): void }

export class Quotas extends EventEmitter<QuotaEvents> {
  readonly #usage: LruMap<string, Usage>
  readonly #rate: number
  readonly #quota: number
  readonly #now: () => number

  constructor({ submitRateLimit, dailyUrlQuota, maxClients = MAX_CLIENTS, now = Date.now }: QuotaOptions) {
    super()
    const check = (name: string, value: number, min: number) => {
      if (!Number.isSafeInteger(value) || value < min)
        throw new TypeError(`Expected \`${name}\` to be an integer >= ${min}, got \`${value}\``)
    }
    check('submitRateLimit', submitRateLimit, 1)
    check('dailyUrlQuota', dailyUrlQuota, 0)
    check('maxClients', maxClients, 1)
    this.#rate = submitRateLimit
    this.#quota = dailyUrlQuota
    this.#usage = new LruMap(maxClients)
    this.#now = now
  }

  /** Clients remembered now (at most `maxClients`). */
  get size(): number {
    return this.#usage.size
  }

  /**
   * Checks a submission of `urls` URLs from `client` (owned by key `owner`, if any). Throws a 429
   * when either limit refuses it; otherwise counts it at once, so that the client's submissions
   * running meanwhile see it (a fleet's submission waits on Redis), and returns `commit`, called
   * once the job was accepted (it returns the RateLimit headers for the answer), and `cancel`,
   * called when it was not (the count is taken back).
   */
  admit(client: string, owner: string | undefined, urls: number): Admission {
    const now = this.#now()
    const usage = this.#current(client, now)
    const [rate, quota] = this.#windows(usage, now)
    const key = keyLabel(owner)
    if (rate.used >= rate.max) {
      this.emit('refused', { key, limit: rate.limit })
      throw this.#refusal(
        rate,
        now,
        'submit_rate_limited',
        `${rate.max} submissions per minute are allowed and this minute's are spent; submit again after ${iso(rate.resetAt)}`,
      )
    }
    if (quota !== undefined && quota.used + urls > quota.max) {
      this.emit('refused', { key, limit: quota.limit })
      throw this.#refusal(
        quota,
        now,
        'daily_quota_exceeded',
        `this submission of ${urls} URL${urls === 1 ? '' : 's'} would pass the daily quota of ${quota.max} URLs (${quota.used} used today, UTC); it resets at ${iso(quota.resetAt)}`,
        { requested: urls },
      )
    }
    const fresh = this.#usage.peek(client) === undefined
    const { minute, day } = usage
    usage.submissions += 1
    usage.urls += urls
    this.#remember(client, usage)
    let open = true
    return {
      commit: () => {
        open = false
        this.emit('admitted', { key, urls })
        return headers(nearest(this.#windows(usage, now)), now)
      },
      cancel: () => {
        if (!open) return
        open = false
        // Taken back from the windows it was counted in, if they have not passed since.
        if (usage.minute === minute) usage.submissions -= 1
        if (usage.day === day) usage.urls -= urls
        // A client that never had a submission accepted is not remembered for a refused one.
        if (fresh && usage.submissions === 0 && usage.urls === 0) this.#usage.delete(client)
      },
    }
  }

  /** The client's usage in the current windows (a fresh record when it has none or they passed). */
  #current(client: string, now: number): Usage {
    const minute = Math.floor(now / MINUTE)
    const day = Math.floor(now / DAY)
    // Only a counted submission makes its client recent (`#remember`), not a look or a refusal.
    const usage = this.#usage.peek(client) ?? { minute, submissions: 0, day, urls: 0 }
    if (usage.minute !== minute) Object.assign(usage, { minute, submissions: 0 })
    if (usage.day !== day) Object.assign(usage, { day, urls: 0 })
    return usage
  }

  #remember(client: string, usage: Usage): void {
    this.#usage.set(client, usage)
  }

  #windows(usage: Usage, now: number): [Window, Window | undefined] {
    const rate: Window = {
      limit: 'submit_rate',
      max: this.#rate,
      used: usage.submissions,
      resetAt: (Math.floor(now / MINUTE) + 1) * MINUTE,
    }
    if (this.#quota === 0) return [rate, undefined]
    const quota: Window = {
      limit: 'daily_quota',
      max: this.#quota,
      used: usage.urls,
      resetAt: (Math.floor(now / DAY) + 1) * DAY,
    }
    return [rate, quota]
  }

  #refusal(
    window: Window,
    now: number,
    code: ErrorCode,
    message: string,
    extra: Record<string, unknown> = {},
  ) {
    return new ServiceError(code, message, {
      retryAfterMs: window.resetAt - now,
      headers: headers(window, now),
      details: {
        limit: window.limit,
        max: window.max,
        remaining: Math.max(0, window.max - window.used),
        ...extra,
        resetAt: iso(window.resetAt),
      },
    })
  }
}

const iso = (ms: number) => new Date(ms).toISOString()

/** The window with the smallest share left (the per-minute one on a tie). */
function nearest([rate, quota]: [Window, Window | undefined]): Window {
  if (quota === undefined) return rate
  const left = (w: Window) => (w.max - w.used) / w.max
  return left(quota) < left(rate) ? quota : rate
}

function headers(window: Window, now: number): Record<string, string> {
  return {
    'ratelimit-limit': String(window.max),
    'ratelimit-remaining': String(Math.max(0, window.max - window.used)),
    'ratelimit-reset': String(Math.ceil((window.resetAt - now) / 1000)),
  }
}
