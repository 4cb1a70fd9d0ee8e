/**
 * Imgur's budgets for a fleet: the ledger of src/budgets.ts kept in Redis, so every replica spends
 * from one budget per credential key and one per-IP POST budget, and a 429 seen by one replica
 * holds back all of them. The rules (merge, costs, in-flight accounting) are those of
 * src/budgets.ts, applied atomically by the scripts of ./budget-scripts.ts.
 *
 * - update() and on429() keep their synchronous signatures (the client calls them from response
 *   handlers): they change the local mirror at once and write to Redis in the background; a Redis
 *   error is logged at warn, never thrown. A 429 is written at once.
 * - reserve() asks Redis. Each reservation is held under a lease (`leaseMs`): one never released
 *   (its replica died mid-upload) stops counting when the lease ends. With Redis unreachable it
 *   rejects with a retryable `store_unavailable`: no replica can know what the others spent, so
 *   nothing is sent to Imgur until Redis answers again.
 * - Readings and released reservations wait, up to `writeDelayMs`, for this replica's next
 *   reservation of their key, whose script applies them first; only those still waiting then are
 *   written on their own. A busy replica so makes one round trip per upload instead of three. Both
 *   wait together, so Redis meanwhile counts the upload as in flight against the older reading:
 *   the other replicas see less budget than there is for that while, never more.
 * - snapshot() reads the local mirror, not Redis (/health must answer at once, Redis or not): the
 *   budgets and blocks as Redis last answered this replica (every write and reservation answers
 *   them), plus readings not yet answered; `inFlight` counts this replica's own reservations.
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import {
  BudgetTable,
  creditsOf,
  IN_FLIGHT_RECHECK_MS,
  type LimitsEntry,
  merge,
  type ParsedLimits,
  type Reservation,
  SAME_WINDOW_MS,
  UNKNOWN_429_BACKOFF_MS,
  UPLOAD_COST,
} from '../budgets.ts'
import { ServiceError } from '../errors.ts'
import { withTimeout } from '../signals.ts'
import { applied, applyScript, type Held, on429Script, readHash, reserveScript } from './budget-scripts.ts'

/** How long Redis keeps an entry past the latest reset, block or lease it holds. */
const KEEP_MS = 3_600_000

/** What this replica has not written to Redis yet for a key: its latest readings, reservations released. */
type Unwritten = { readings: ParsedLimits; released: string[] }

export type RedisBudgetsOptions = {
  redis: Redis
  /** Every key is `<prefix>:budget:…`. */
  prefix: string
  log: Logger
  /** How long a reservation counts unless released: the longest an upload may take (its deadline). */
  leaseMs: number
  /** How long reserve() waits for Redis before rejecting with `store_unavailable` (default 2 s). */
  timeoutMs?: number
  /** How long a 429 that names no reset blocks its key (default 60 s). */
  unknown429BackoffMs?: number
  /** Credential keys the local mirror remembers (default 10,000); Redis forgets by expiry. */
  maxEntries?: number
  /** The clock of update(), whose signature has none: it only dates the entry's expiry. */
  now?: () => number
  /**
   * How long a reading or a released reservation waits for this replica's next reservation of its
   * key, which carries it to Redis, before it is written on its own (default 50 ms).
   */
  writeDelayMs?: number
}

function checkInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new ServiceError(
      'imgur_invalid_options',
      `Expected \`${name}\` to be an integer >= 1, got \`${value}\``,
    )
  }
}

export class RedisBudgets {
  readonly #redis: Redis
  readonly #base: string
  readonly #log: Logger
  readonly #leaseMs: number
  readonly #timeoutMs: number
  readonly #unknown429BackoffMs: number
  readonly #now: () => number
  readonly #writeDelayMs: number
  /** The local mirror (see the top of this file). */
  readonly #table: BudgetTable
  /** What waits for the key's next reservation, by key (see the top of this file). */
  readonly #unwritten = new Map<string, Unwritten>()
  #writeTimer: NodeJS.Timeout | undefined

  constructor(options: RedisBudgetsOptions) {
    const { leaseMs, timeoutMs = 2000, writeDelayMs = 50 } = options
    checkInteger('leaseMs', leaseMs)
    checkInteger('timeoutMs', timeoutMs)
    checkInteger('writeDelayMs', writeDelayMs)
    this.#writeDelayMs = writeDelayMs
    this.#redis = options.redis
    this.#base = `${options.prefix}:budget:`
    this.#log = options.log
    this.#leaseMs = leaseMs
    this.#timeoutMs = timeoutMs
    this.#unknown429BackoffMs = options.unknown429BackoffMs ?? UNKNOWN_429_BACKOFF_MS
    this.#now = options.now ?? Date.now
    this.#table = new BudgetTable(options.maxEntries)
  }

  /** The scripts' KEYS: ip hash, ip reservations, key hash, key reservations. */
  #redisKeys(key: string): [string, string, string, string] {
    const ip = `${this.#base}ip`
    const own = `${this.#base}key:${key}`
    return [ip, `${ip}:reservations`, own, `${own}:reservations`]
  }

  /**
   * Takes what a script answered (ip hash, key hash, from `from` on): it holds every replica's
   * readings and blocks. `entry` is the key's entry in the mirror, if it is to be updated.
   */
  #adopt(entry: Partial<Held> | undefined, reply: unknown, from = 0): void {
    const [ipHash, keyHash] = Array.isArray(reply) ? reply.slice(from) : []
    this.#table.post = readHash(ipHash).post
    if (entry === undefined) return
    const { client, user, blockedUntil } = readHash(keyHash)
    Object.assign(entry, { client, user, blockedUntil })
  }

  update(key: string, parsed: ParsedLimits): void {
    this.#table.record(key, parsed)
    if (!parsed.post && !parsed.client && !parsed.user) return
    this.#keep(key, parsed, [])
  }

  /** Adds to what waits for the key's next reservation; the timer writes what is left waiting. */
  #keep(key: string, readings: ParsedLimits, released: readonly string[]): void {
    let unwritten = this.#unwritten.get(key)
    if (unwritten === undefined) {
      unwritten = { readings: {}, released: [] }
      this.#unwritten.set(key, unwritten)
    }
    for (const kind of ['post', 'client', 'user'] as const) {
      const reading = readings[kind]
      if (reading !== undefined) unwritten.readings[kind] = merge(unwritten.readings[kind], reading)
    }
    unwritten.released.push(...released)
    if (this.#writeTimer === undefined) {
      this.#writeTimer = setTimeout(() => void this.flush(), this.#writeDelayMs)
      this.#writeTimer.unref()
    }
  }

  /** What waits for the key's next reservation, taken out for a script to apply. */
  #take(key: string): Unwritten | undefined {
    const unwritten = this.#unwritten.get(key)
    this.#unwritten.delete(key)
    return unwritten
  }

  /** Writes everything still waiting now (the timer, shutdown, tests); resolves once Redis has answered. */
  async flush(): Promise<void> {
    clearTimeout(this.#writeTimer)
    this.#writeTimer = undefined
    const waiting = [...this.#unwritten]
    this.#unwritten.clear()
    const writes = waiting.map(([key, { readings, released }]) => {
      const args = [this.#now(), KEEP_MS, SAME_WINDOW_MS, ...applied(released, readings)]
      const credits = readings.client !== undefined || readings.user !== undefined
      return applyScript(this.#redis, this.#redisKeys(key), args).then(
        // Written late, the key is not used now: its entry is updated where it stands in the LRU order.
        (reply) => this.#adopt(credits ? this.#table.peek(key) : undefined, reply),
        (error: unknown) => {
          if (readings.post || credits)
            this.#log.warn({ err: error, key }, 'budget reading not written to Redis')
          if (released.length > 0) {
            this.#log.warn({ err: error, key }, 'budget reservation not released in Redis')
          }
        },
      )
    })
    await Promise.all(writes)
  }

  on429(key: string, retryAfterMs: number | undefined, now: number): void {
    const until = now + (retryAfterMs ?? this.#unknown429BackoffMs)
    this.#table.block(key, until)
    on429Script(this.#redis, this.#redisKeys(key), [now, until, KEEP_MS]).then(
      (reply) => this.#adopt(this.#table.touch(key), reply),
      (error: unknown) => this.#log.warn({ err: error, key }, 'budget 429 not written to Redis'),
    )
  }

  async reserve(key: string, now: number): Promise<Reservation> {
    const id = randomUUID()
    const unwritten = this.#take(key)
    const args = [
      now,
      now + this.#leaseMs,
      id,
      creditsOf(key),
      UPLOAD_COST.post,
      UPLOAD_COST.credits,
      IN_FLIGHT_RECHECK_MS,
      KEEP_MS,
      SAME_WINDOW_MS,
      ...applied(unwritten?.released ?? [], unwritten?.readings ?? {}),
    ]
    let reply: unknown
    try {
      reply = await withTimeout(reserveScript(this.#redis, this.#redisKeys(key), args), this.#timeoutMs)
    } catch (error) {
      // Unanswered is not undone: the script may still run. What it carried waits again, and its
      // own reservation is withdrawn with it (if Redis is away, its lease ends it).
      this.#keep(key, unwritten?.readings ?? {}, [...(unwritten?.released ?? []), id])
      throw new ServiceError('store_unavailable', 'Redis did not answer a budget reservation', {
        cause: error,
      })
    }
    const [granted, waitUntil] = Array.isArray(reply) ? reply : []
    this.#adopt(this.#table.touch(key), reply, 2)
    if (granted !== 1) {
      const resetAt = Number(waitUntil)
      return { ok: false, waitMs: resetAt - now, resetAt }
    }
    const stop = this.#table.hold(key)
    let released = false
    return {
      ok: true,
      release: () => {
        if (released) return
        released = true
        stop()
        // Withdrawn from Redis with the key's next reservation, or by the timer; if that fails, its lease ends it.
        this.#keep(key, {}, [id])
      },
    }
  }

  /**
   * For health and metrics, most recently used key first, the shared POST budget first under 'ip':
   * the local mirror (see the top of this file), the shape of Budgets.snapshot().
   */
  snapshot(): LimitsEntry[] {
    return this.#table.snapshot()
  }
}
