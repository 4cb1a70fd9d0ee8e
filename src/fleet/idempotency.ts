/**
 * Idempotency keys shared by a fleet: a retry with the same key may reach any replica behind the
 * load balancer, so the claim and the remembered answer live in Redis (same rules as
 * src/http/idempotency.ts: replay the first 2xx, 422 for another body, 409 while the first is
 * being answered). One key per claim, expiring after IDEMPOTENCY_TTL_MS: Redis stays bounded by
 * the keys of one TTL. While Redis cannot be reached a claim answers `store_unavailable`, like
 * the submission it guards.
 */
import { createHash, randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { ServiceError } from '../errors.ts'
import { type Answer, type Claim, canonicalJson, type Found } from '../http/idempotency.ts'
import { unavailable } from './redis.ts'

/**
 * How long a claim without an answer holds its key. A submission is answered within seconds (each
 * Redis command times out after 5 s); a claim older than this belongs to a request that will never
 * answer (its replica died, or Redis failed both its answer and its release), and must not turn
 * the client's retries away with 409 for a whole IDEMPOTENCY_TTL_MS.
 */
const CLAIM_MS = 60_000

/** Claims the key if it is free; else answers what it holds (fingerprint, answer or empty). */
const CLAIM = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HMGET', KEYS[1], 'fingerprint', 'answer')
end
redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'owner', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return false
`
/**
 * Writes the answer, kept for the whole TTL from now (ARGV 3), or drops the claim; only while the
 * claim is still this request's.
 */
const SETTLE = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then return redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'answer', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`

export class RedisIdempotencyKeys {
  readonly #redis: Redis
  readonly #prefix: string
  readonly #ttlMs: number
  readonly #claimMs: number
  readonly #log: Logger

  /** `claimMs`: how long a claim without an answer holds its key (CLAIM_MS; tests shorten it). */
  constructor(options: { redis: Redis; prefix: string; ttlMs: number; claimMs?: number; log: Logger }) {
    const { ttlMs, claimMs = CLAIM_MS } = options
    for (const [name, value] of [
      ['ttlMs', ttlMs],
      ['claimMs', claimMs],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new TypeError(`Expected \`${name}\` to be an integer >= 1, got \`${value}\``)
      }
    }
    this.#redis = options.redis
    this.#prefix = `${options.prefix}:idem:`
    this.#ttlMs = ttlMs
    this.#claimMs = Math.min(claimMs, ttlMs)
    this.#log = options.log
  }

  async claim(scope: string, key: string, body: unknown): Promise<Found> {
    const id = this.#prefix + createHash('sha256').update(`${scope}\n${key}`).digest('base64url')
    const fingerprint = createHash('sha256').update(canonicalJson(body)).digest('base64url')
    const owner = randomUUID()
    const held = (await this.#redis
      .eval(CLAIM, 1, id, fingerprint, owner, this.#claimMs)
      .catch((error: unknown) => Promise.reject(unavailable(error)))) as [string | null, string | null] | null
    if (held !== null) {
      const [theirs, answer] = held
      if (theirs !== fingerprint) {
        throw new ServiceError(
          'idempotency_key_reused',
          'this Idempotency-Key was used with another request body; use a new key for a new submission',
        )
      }
      if (answer !== null) return { replay: JSON.parse(answer) as Answer }
      throw new ServiceError(
        'idempotency_request_in_progress',
        'the first request with this Idempotency-Key is still being answered; retry shortly',
        { retryAfterMs: 1_000 },
      )
    }
    const settle = (answer: string) =>
      this.#redis.eval(SETTLE, 1, id, owner, answer, this.#ttlMs).catch((error: unknown) => {
        // The job exists either way. Retries are answered 409 until the claim expires (CLAIM_MS),
        // then a retry creates a second job. Said in the log.
        this.#log.warn({ err: error }, 'idempotency key not recorded in Redis')
      })
    const claim: Claim = {
      remember: (answer) => void settle(JSON.stringify(answer)),
      forget: () => void settle(''),
    }
    return { claim }
  }
}
