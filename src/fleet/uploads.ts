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
 */
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { Known } from '../jobs/uploads.ts'
import { raceSignal } from '../signals.ts'

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

  constructor(options: SharedUploadsOptions) {
    const { ttlMs = 7 * DAY, timeoutMs = 1000 } = options
    for (const [name, value] of [
      ['ttlMs', ttlMs],
      ['timeoutMs', timeoutMs],
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
  }

  /** The link uploaded earlier under `key` (`<credential key>:<content hash>`), or undefined. */
  async get(key: string): Promise<Known | undefined> {
    let raw: string | null
    try {
      raw = await raceSignal(this.#redis.get(`${this.#base}${key}`), AbortSignal.timeout(this.#timeoutMs))
    } catch (error) {
      this.#log.warn({ err: error, key }, 'shared upload not read from Redis')
      return undefined
    }
    if (raw === null) return undefined
    const known = readKnown(raw)
    if (known === undefined) this.#log.warn({ key }, 'shared upload unreadable in Redis')
    return known
  }

  /** Remembers an upload's link for the fleet; resolves either way (a failure is only logged). */
  async set(key: string, known: Known): Promise<void> {
    const { link, imageId, deletehash } = known
    const value = JSON.stringify({ link, imageId, deletehash })
    try {
      await raceSignal(
        this.#redis.set(`${this.#base}${key}`, value, 'PX', this.#ttlMs),
        AbortSignal.timeout(this.#timeoutMs),
      )
    } catch (error) {
      this.#log.warn({ err: error, key }, 'shared upload not written to Redis')
    }
  }
}
