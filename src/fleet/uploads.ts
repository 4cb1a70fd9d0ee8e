/**
 * De-duplication across the fleet: the link of image bytes already uploaded with a credential,
 * whichever replica uploaded them, so the same bytes spend Imgur quota once per credential in the
 * whole fleet. A tier behind each replica's own table (src/jobs/uploads.ts): the worker asks it
 * only when that table has nothing, and tells it every upload that succeeds.
 *
 * `<prefix>:upload:<credential key>:<content hash>` holds the link as JSON for `ttlMs` after the
 * upload (7 days by default): long enough for a resubmitted batch to reuse its links, short enough
 * that Redis does not grow with every image ever uploaded. De-duplication is an optimisation:
 * Redis unreachable, slow (past `timeoutMs`) or holding something unreadable is a miss, and a
 * failed write is forgotten, each with a warn log; never an item's failure.
 *
 * Links are written in batches, one round trip each `writeDelayMs` (50 ms) however many uploads
 * ended meanwhile, instead of one per upload: another replica asking for the same bytes within
 * that while misses them and uploads them again, as it would have a moment earlier.
 */
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { Known } from '../jobs/uploads.ts'
import { withTimeout } from '../signals.ts'

const DAY = 86_400_000

export type SharedUploadsOptions = {
  redis: Redis
  /** Every key is `<prefix>:upload:…`. */
  prefix: string
  log: Logger
  /** How long a link is remembered after its upload (default 7 days). */
  ttlMs?: number
  /** How long a read or write waits for Redis before giving up (default 1 s). */
  timeoutMs?: number
  /** How long a link waits for others to be written with it (default 50 ms). */
  writeDelayMs?: number
}

function readKnown(raw: string): Known | undefined {
  try {
    const { link, imageId, deletehash } = JSON.parse(raw) as Partial<Record<keyof Known, unknown>>
    if (typeof link !== 'string' || typeof imageId !== 'string' || typeof deletehash !== 'string') {
      return undefined
    }
    return { link, imageId, deletehash }
  } catch {
    return undefined
  }
}

export class SharedUploads {
  readonly #redis: Redis
  readonly #base: string
  readonly #log: Logger
  readonly #ttlMs: number
  readonly #timeoutMs: number
  readonly #writeDelayMs: number
  /** Links not written yet, by Redis key, and the set() calls waiting for their batch. */
  readonly #unwritten = new Map<string, Known>()
  #waiting: Array<() => void> = []
  #writeTimer: NodeJS.Timeout | undefined

  constructor(options: SharedUploadsOptions) {
    const { ttlMs = 7 * DAY, timeoutMs = 1000, writeDelayMs = 50 } = options
    for (const [name, value] of [
      ['ttlMs', ttlMs],
      ['timeoutMs', timeoutMs],
      ['writeDelayMs', writeDelayMs],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new TypeError(`Expected \`${name}\` to be an integer >= 1, got \`${value}\``)
      }
    }
    this.#redis = options.redis
    this.#base = `${options.prefix}:upload:`
    this.#log = options.log
    this.#ttlMs = ttlMs
    this.#timeoutMs = timeoutMs
    this.#writeDelayMs = writeDelayMs
  }

  /** The link uploaded earlier under `key` (`<credential key>:<content hash>`), or undefined. */
  async get(key: string): Promise<Known | undefined> {
    const unwritten = this.#unwritten.get(`${this.#base}${key}`)
    if (unwritten !== undefined) return unwritten
    let raw: string | null
    try {
      raw = await withTimeout(this.#redis.get(`${this.#base}${key}`), this.#timeoutMs)
    } catch (error) {
      this.#log.warn({ err: error, key }, 'shared upload not read from Redis')
      return undefined
    }
    if (raw === null) return undefined
    const known = readKnown(raw)
    if (known === undefined) this.#log.warn({ key }, 'shared upload unreadable in Redis')
    return known
  }

  /**
   * Remembers an upload's link for the fleet, with the next batch; resolves once that batch is
   * written or has failed (a failure is only logged).
   */
  set(key: string, known: Known): Promise<void> {
    const { link, imageId, deletehash } = known
    this.#unwritten.set(`${this.#base}${key}`, { link, imageId, deletehash })
    if (this.#writeTimer === undefined) {
      this.#writeTimer = setTimeout(() => void this.flush(), this.#writeDelayMs)
      this.#writeTimer.unref()
    }
    return new Promise((resolve) => this.#waiting.push(resolve))
  }

  /** Writes the links waiting now, in one round trip (the timer, shutdown). */
  async flush(): Promise<void> {
    clearTimeout(this.#writeTimer)
    this.#writeTimer = undefined
    const batch = [...this.#unwritten]
    const waiting = this.#waiting
    this.#unwritten.clear()
    this.#waiting = []
    if (batch.length === 0) return
    const pipeline = this.#redis.pipeline()
    for (const [key, known] of batch) pipeline.set(key, JSON.stringify(known), 'PX', this.#ttlMs)
    const keys = batch.map(([key]) => key.slice(this.#base.length))
    try {
      const replies = await withTimeout(pipeline.exec(), this.#timeoutMs)
      const failed = keys.filter((_, i) => replies?.[i]?.[0] !== null)
      if (failed.length > 0) {
        const error = replies?.find(([failure]) => failure !== null)?.[0]
        this.#log.warn({ err: error, keys: failed }, 'shared uploads not written to Redis')
      }
    } catch (error) {
      this.#log.warn({ err: error, keys }, 'shared uploads not written to Redis')
    } finally {
      for (const resolve of waiting) resolve()
    }
  }
}
