/**
 * Imgur's budgets, the service's ledger of what Imgur still allows: read from its rate-limit
 * headers (src/imgur/rate-limits.ts parses them) by the client, reserved before each upload or
 * album by the queue. Pure: every method gets the clock as an argument.
 * Header facts: /work/shared/notes/imgur-api.md#rate-limits
 */
import { ServiceError } from './errors.ts'
import { LruMap } from './lru.ts'

export type Budget = {
  limit: number
  remaining: number
  /** Epoch ms at which the budget is considered refilled. */
  resetAt: number
  /** True when Imgur sent no reset header and `resetAt` is our guess (a full window from the response). */
  resetAssumed?: boolean
}
export type ParsedLimits = { post?: Budget; client?: Budget; user?: Budget }
export type Reservation = { ok: true; release(): void } | { ok: false; waitMs: number; resetAt: number }
/** What the client records answers in: the memory Budgets or the fleet's (src/fleet/budgets.ts). */
export type BudgetLedger = Pick<Budgets, 'update' | 'on429'>
export type LimitsEntry = {
  key: string
  post?: Budget
  client?: Budget
  user?: Budget
  blockedUntil?: number
  inFlight: number
}

/** An upload costs one POST (per IP) and 10 credits (client credits for Client-ID, user credits for Bearer). */
export const UPLOAD_COST = { post: 1, credits: 10 } as const
/** Two readings whose resets differ by less than this describe the same window. */
export const SAME_WINDOW_MS = 60_000
/** Refused only because of in-flight uploads: their responses will tell, so look again soon. */
export const IN_FLIGHT_RECHECK_MS = 1_000
/** How long a 429 that names no reset blocks its key, unless the ledger is told otherwise. */
export const UNKNOWN_429_BACKOFF_MS = 60_000
/** How many credential keys a ledger remembers, unless told otherwise. */
export const DEFAULT_MAX_ENTRIES = 10_000

// Concurrent responses arrive in any order: within one window keep the lowest reading, so a
// late, stale response cannot raise the budget back up. A guessed reset slides with every
// reading, so there the latest reading wins (it may be a real refill).
export function merge(old: Budget | undefined, next: Budget): Budget {
  if (!old || old.resetAssumed || next.resetAssumed) return next
  if (Math.abs(old.resetAt - next.resetAt) >= SAME_WINDOW_MS) return next
  return { ...next, remaining: Math.min(old.remaining, next.remaining) }
}

/** Bearer keys spend user credits, Client-ID keys client credits. */
export const creditsOf = (key: string): 'client' | 'user' => (key.startsWith('account:') ? 'user' : 'client')

type KeyState = { client?: Budget; user?: Budget; blockedUntil?: number; inFlight: number }

/**
 * The budgets as this process knows them, per credential key plus the one per-IP POST budget,
 * and the uploads it has in flight against them: the memory ledger's state, and a fleet's local
 * mirror of Redis (src/fleet/budgets.ts). Jobs may bring their own client ids, so the keys are
 * bounded: least recently used first out. A key with uploads in flight is never evicted (a fresh
 * entry would forget them and overdraw); the table may then exceed `maxEntries` by at most the
 * uploads in flight, and shrinks back as they are released.
 */
export class BudgetTable {
  post: Budget | undefined
  postInFlight = 0
  readonly #keys: LruMap<string, KeyState>

  constructor(maxEntries = DEFAULT_MAX_ENTRIES) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new ServiceError(
        'imgur_invalid_options',
        `Expected \`maxEntries\` to be an integer >= 1, got \`${maxEntries}\``,
      )
    }
    this.#keys = new LruMap(maxEntries, (state) => state.inFlight > 0)
  }

  /** The key's entry, made the most recently used; the table is trimmed to its bound. */
  touch(key: string): KeyState {
    let state = this.#keys.get(key)
    if (state === undefined) {
      state = { inFlight: 0 }
      this.#keys.set(key, state)
    }
    return state
  }

  /** The key's entry as it is, without making it the most recently used. */
  peek(key: string): KeyState | undefined {
    return this.#keys.peek(key)
  }

  /** Merges a reading in (see `merge`); true when it had credits for the key. */
  record(key: string, parsed: ParsedLimits): boolean {
    if (parsed.post) this.post = merge(this.post, parsed.post)
    if (!parsed.client && !parsed.user) return false
    const state = this.touch(key)
    if (parsed.client) state.client = merge(state.client, parsed.client)
    if (parsed.user) state.user = merge(state.user, parsed.user)
    return true
  }

  /** Blocks the key until `until` (a 429), or later if it already was. */
  block(key: string, until: number): void {
    const state = this.touch(key)
    state.blockedUntil = Math.max(state.blockedUntil ?? 0, until)
  }

  /** Counts one upload in flight against the key and the POST budget; the returned function (once) stops counting it. */
  hold(key: string): () => void {
    // This reservation's own entry: never evicted while it is in flight.
    const state = this.touch(key)
    state.inFlight++
    this.postInFlight++
    let released = false
    return () => {
      if (released) return
      released = true
      state.inFlight--
      this.postInFlight--
      if (state.inFlight === 0) this.#keys.trim()
    }
  }

  /** For health and metrics, most recently used key first; the shared POST budget once, first, under 'ip'. */
  snapshot(): LimitsEntry[] {
    const entries: LimitsEntry[] = []
    if (this.post) entries.push({ key: 'ip', post: { ...this.post }, inFlight: this.postInFlight })
    for (const [key, state] of [...this.#keys.entries()].reverse()) {
      const entry: LimitsEntry = { key, inFlight: state.inFlight }
      if (state.client) entry.client = { ...state.client }
      if (state.user) entry.user = { ...state.user }
      if (state.blockedUntil !== undefined) entry.blockedUntil = state.blockedUntil
      entries.push(entry)
    }
    return entries
  }
}

/**
 * Budgets per credential key ('client:…' or 'account:…', already hashed) plus the one per-IP POST
 * budget every key shares. Reservations are optimistic: each in-flight upload counts against the
 * last known remaining, and a reservation is refused while remaining − in-flight cost < cost, so
 * sending stops BEFORE Imgur's budget reaches zero. The keys are bounded (see BudgetTable).
 */
export class Budgets {
  readonly #table: BudgetTable
  readonly #unknown429BackoffMs: number

  /**
   * `unknown429BackoffMs`: how long a 429 that names no reset blocks its key.
   * `maxEntries`: how many credential keys are remembered (default 10,000).
   */
  constructor(options: { unknown429BackoffMs?: number; maxEntries?: number } = {}) {
    this.#table = new BudgetTable(options.maxEntries)
    this.#unknown429BackoffMs = options.unknown429BackoffMs ?? UNKNOWN_429_BACKOFF_MS
  }

  update(key: string, parsed: ParsedLimits): void {
    this.#table.record(key, parsed)
  }

  reserve(key: string, now: number): Reservation {
    const table = this.#table
    const state = table.touch(key)
    const credits = state[creditsOf(key)]
    const waits: number[] = []
    if (state.blockedUntil !== undefined && state.blockedUntil > now) waits.push(state.blockedUntil)
    const check = (budget: Budget | undefined, inFlight: number, cost: number) => {
      if (!budget) return
      const remaining = now >= budget.resetAt ? budget.limit : budget.remaining
      if (remaining - inFlight * cost >= cost) return
      waits.push(remaining >= cost ? now + IN_FLIGHT_RECHECK_MS : budget.resetAt)
    }
    check(table.post, table.postInFlight, UPLOAD_COST.post)
    check(credits, state.inFlight, UPLOAD_COST.credits)
    if (waits.length > 0) {
      const resetAt = Math.max(...waits)
      return { ok: false, waitMs: resetAt - now, resetAt }
    }
    return { ok: true, release: table.hold(key) }
  }

  on429(key: string, retryAfterMs: number | undefined, now: number): void {
    this.#table.block(key, now + (retryAfterMs ?? this.#unknown429BackoffMs))
  }

  /**
   * For health and metrics, most recently used key first (callers show only the first few).
   * The shared POST budget is reported once, first, under the key 'ip'.
   */
  snapshot(): LimitsEntry[] {
    return this.#table.snapshot()
  }
}
