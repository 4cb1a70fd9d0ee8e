/**
 * Idempotent submissions (the IETF httpapi Idempotency-Key draft, as Stripe and Adyen do it): a
 * client sends `Idempotency-Key: <key>` and may then retry the same submission freely. The first
 * successful answer is remembered for IDEMPOTENCY_TTL_MS and replayed, marked
 * `Idempotency-Replayed: true`, to a retry with the same key and the same body, which creates
 * nothing and spends no quota; the same key with another body is refused (422), and so is a retry
 * while the first is still being answered (409). Error answers are not remembered: the client may
 * fix the cause and retry with the same key.
 *
 * Keys are scoped per client (`clientOf`: the API key name, or the address when API keys are off),
 * so one client's key never replays another client's job id — without API keys, a job id is all
 * it takes to read the job. Memory stays bounded: at most `maxKeys` entries (least recently created
 * forgotten first), each a fixed-size digest of its scope and key plus the answer.
 */
import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ServiceError } from '../errors.ts'
import { LruMap } from '../lru.ts'

/** Keys remembered at most, across clients. */
export const MAX_KEYS = 100_000
/** JSON nesting the body identity follows (submissions nest three levels). */
const MAX_DEPTH = 32
/** 1–255 printable ASCII characters. */
const KEY = /^[\x20-\x7E]{1,255}$/
/** An RFC 8941 sf-string, the form the IETF draft gives the header: `"<key>"`. */
const SF_STRING = /^"((?:[\x20\x21\x23-\x5B\x5D-\x7E]|\\["\\])*)"$/

/** The answer replayed: only what a successful submission sends. */
export type Answer = { statusCode: number; location: string | undefined; body: string }

type Entry = {
  readonly fingerprint: string
  readonly expiresAt: number
  /** Undefined while the first request is being answered. */
  answer: Answer | undefined
}

/** The first request with a key: `remember` its successful answer, or `forget` the key. */
export type Claim = { remember(answer: Answer): void; forget(): void }
/** What a lookup finds: the answer to replay, or a claim on a new key. */
export type Found = { replay: Answer } | { claim: Claim }
/** Where keys are kept: this process (below), or a fleet's Redis (src/fleet/idempotency.ts). */
export type IdempotencyStore = { claim(scope: string, key: string, body: unknown): Found | Promise<Found> }

export type IdempotencyOptions = { ttlMs: number; maxKeys?: number; now?: () => number }

export class IdempotencyKeys {
  readonly #entries: LruMap<string, Entry>
  readonly #ttlMs: number
  readonly #now: () => number

  constructor({ ttlMs, maxKeys = MAX_KEYS, now = Date.now }: IdempotencyOptions) {
    for (const [name, value] of [
      ['ttlMs', ttlMs],
      ['maxKeys', maxKeys],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 1)
        throw new TypeError(`Expected \`${name}\` to be an integer >= 1, got \`${value}\``)
    }
    this.#ttlMs = ttlMs
    this.#now = now
    // A key being answered is never dropped for room: its request would then answer twice.
    this.#entries = new LruMap(maxKeys, (entry) => entry.answer === undefined)
  }

  /** Keys remembered now, answered or being answered. */
  get size(): number {
    return this.#entries.size
  }

  /**
   * Looks `key` up in `scope` for a request with `body`: the answer to replay, or a claim on the
   * key when it is new (or expired). Throws 422 when the key came with another body, 409 while the
   * first request with it is still being answered.
   */
  claim(scope: string, key: string, body: unknown): Found {
    const now = this.#now()
    this.#expire(now)
    const id = createHash('sha256').update(`${scope}\n${key}`).digest('base64url')
    const fingerprint = createHash('sha256').update(canonicalJson(body)).digest('base64url')
    const found = this.#entries.peek(id)
    if (found !== undefined && found.expiresAt > now) {
      if (found.fingerprint !== fingerprint) {
        throw new ServiceError(
          'idempotency_key_reused',
          'this Idempotency-Key was used with another request body; use a new key for a new submission',
        )
      }
      if (found.answer !== undefined) return { replay: found.answer }
      throw new ServiceError(
        'idempotency_request_in_progress',
        'the first request with this Idempotency-Key is still being answered; retry shortly',
        { retryAfterMs: 1_000 },
      )
    }
    const entry: Entry = { fingerprint, expiresAt: now + this.#ttlMs, answer: undefined }
    this.#entries.set(id, entry)
    return {
      claim: {
        remember: (answer) => {
          if (this.#entries.peek(id) === entry) entry.answer = answer
        },
        forget: () => {
          if (this.#entries.peek(id) === entry && entry.answer === undefined) this.#entries.delete(id)
        },
      },
    }
  }

  /** Drops expired keys from the oldest: entries are in creation order, so the scan stops at the first live one. */
  #expire(now: number): void {
    for (const [id, entry] of this.#entries.entries()) {
      if (entry.expiresAt > now) return
      if (entry.answer !== undefined) this.#entries.delete(id)
    }
  }
}

/** The key the header carries (bare, or as the draft's sf-string); 400 when it is not 1–255 printable ASCII characters. */
export function parseKey(header: string | string[]): string {
  const value = Array.isArray(header) ? undefined : header
  const quoted = value === undefined ? null : SF_STRING.exec(value)
  const key = quoted ? (quoted[1] as string).replace(/\\(["\\])/g, '$1') : value
  if (key === undefined || !KEY.test(key)) {
    throw new ServiceError(
      'invalid_idempotency_key',
      'send one Idempotency-Key of 1 to 255 printable ASCII characters (a UUID is a good choice)',
    )
  }
  return key
}

/** JSON with every object's keys sorted, so that two bodies that mean the same have the same identity. */
export function canonicalJson(value: unknown, depth = 0): string {
  if (depth > MAX_DEPTH) {
    throw new ServiceError('invalid_body', `the request body nests deeper than ${MAX_DEPTH} levels`)
  }
  if (Array.isArray(value)) return `[${value.map((entry) => canonicalJson(entry, depth + 1)).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>
    const fields = Object.keys(object)
      .sort()
      .map((name) => `${JSON.stringify(name)}:${canonicalJson(object[name], depth + 1)}`)
    return `{${fields.join(',')}}`
  }
  return JSON.stringify(value)
}

/**
 * Route hooks that make a route idempotent: `preHandler` replays or claims (after the body was
 * validated), `onSend` remembers a 2xx answer or forgets the key, `onResponse` forgets a key whose
 * answer was never sent.
 */
export function idempotent(keys: IdempotencyStore, scopeOf: (request: FastifyRequest) => string) {
  const claims = new WeakMap<FastifyRequest, Claim>()
  return {
    preHandler: async (request: FastifyRequest, reply: FastifyReply) => {
      const header = request.headers['idempotency-key']
      if (header === undefined) return
      const found = await keys.claim(scopeOf(request), parseKey(header), request.body)
      if ('claim' in found) return void claims.set(request, found.claim)
      const { statusCode, location, body } = found.replay
      if (location !== undefined) reply.header('location', location)
      return reply
        .code(statusCode)
        .header('idempotency-replayed', 'true')
        .type('application/json; charset=utf-8')
        .send(body)
    },
    onSend: async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      const claim = claims.get(request)
      if (claim === undefined) return payload
      claims.delete(request)
      if (reply.statusCode >= 200 && reply.statusCode < 300 && typeof payload === 'string') {
        const location = reply.getHeader('location')
        claim.remember({
          statusCode: reply.statusCode,
          location: typeof location === 'string' ? location : undefined,
          body: payload,
        })
      } else claim.forget()
      return payload
    },
    onResponse: async (request: FastifyRequest) => {
      claims.get(request)?.forget()
      claims.delete(request)
    },
  }
}
