import type { OAuthOptions } from './auth.ts'
import type { Budgets } from './rate-limits.ts'

export type SandboxOptions = {
  /** Base of image links; default: the listening address (http://127.0.0.1:<port>). */
  publicUrl?: string
  maxImageBytes?: number
  maxVideoBytes?: number
  /**
   * Bytes of stored images (and videos), each counted with a fixed overhead for its record
   * (default 256 MiB); a new upload drops the oldest images first.
   */
  maxBytes?: number
  /**
   * Bytes of stored albums, each counted as a fixed overhead plus 64 bytes an image (default 16 MiB,
   * about 16,000 small albums); a new album drops the oldest albums first.
   */
  maxAlbumBytes?: number
  /** Newest request, upload and album records kept, each list (default 10,000). */
  maxRecords?: number
  /** Undefined: any non-empty client id is accepted; otherwise others get 403 "Invalid client_id". */
  clientIds?: string[]
  /** The refresh credentials /oauth2/token accepts. */
  oauth?: OAuthOptions
  budget?: { clientCredits?: number; userCredits?: number; posts?: number; resetSeconds?: number }
  /** Added before answering every upload and album creation. */
  latencyMs?: number
  /** Probability (0..1) that an upload or album creation answers a random retryable fault (500/503). */
  errorRate?: number
  random?: () => number
  /** Milliseconds since the epoch: budgets, token expiry and `datetime` read it. */
  now?: () => number
}

export type ResolvedOptions = {
  publicUrl: string | undefined
  maxImageBytes: number
  maxVideoBytes: number
  maxBytes: number
  maxAlbumBytes: number
  maxRecords: number
  clientIds: readonly string[] | undefined
  oauth: OAuthOptions | undefined
  budgets: Budgets
  latencyMs: number
  errorRate: number
  random: () => number
  now: () => number
}

function integer(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < min) {
    throw new TypeError(`Expected \`${name}\` to be an integer >= ${min}, got \`${value}\``)
  }
  return value
}

function nonEmpty(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(`Expected \`${name}\` to be a non-empty string, got \`${String(value)}\``)
  }
  return value
}

/** Checks every option at construction, with the exact value that is wrong. */
export function resolveOptions(options: SandboxOptions): ResolvedOptions {
  let publicUrl: string | undefined
  if (options.publicUrl !== undefined) {
    const url = URL.parse(options.publicUrl)
    if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new TypeError(`Expected \`publicUrl\` to be an http(s) URL, got \`${options.publicUrl}\``)
    }
    publicUrl = options.publicUrl.replace(/\/+$/, '')
  }
  const errorRate = options.errorRate ?? 0
  if (!(errorRate >= 0 && errorRate <= 1)) {
    throw new TypeError(`Expected \`errorRate\` to be a number from 0 to 1, got \`${errorRate}\``)
  }
  const clientIds = options.clientIds?.map((id, index) => nonEmpty(`clientIds[${index}]`, id))
  const oauth = options.oauth
  if (oauth !== undefined) {
    nonEmpty('oauth.clientId', oauth.clientId)
    nonEmpty('oauth.clientSecret', oauth.clientSecret)
    nonEmpty('oauth.refreshToken', oauth.refreshToken)
    integer('oauth.expiresInSeconds', oauth.expiresInSeconds, 0, 1)
    integer('oauth.accountId', oauth.accountId, 0, 1)
  }
  const budget = options.budget ?? {}
  return {
    publicUrl,
    maxImageBytes: integer('maxImageBytes', options.maxImageBytes, 10 * 1024 * 1024, 1),
    maxVideoBytes: integer('maxVideoBytes', options.maxVideoBytes, 200 * 1024 * 1024, 1),
    maxBytes: integer('maxBytes', options.maxBytes, 256 * 1024 * 1024, 1),
    maxAlbumBytes: integer('maxAlbumBytes', options.maxAlbumBytes, 16 * 1024 * 1024, 1),
    maxRecords: integer('maxRecords', options.maxRecords, 10_000, 1),
    clientIds,
    oauth: oauth === undefined ? undefined : { ...oauth },
    budgets: {
      clientCredits: integer('budget.clientCredits', budget.clientCredits, 12500, 0),
      userCredits: integer('budget.userCredits', budget.userCredits, 2000, 0),
      posts: integer('budget.posts', budget.posts, 1250, 0),
      resetSeconds: integer('budget.resetSeconds', budget.resetSeconds, 3600, 1),
    },
    latencyMs: integer('latencyMs', options.latencyMs, 0, 0),
    errorRate,
    random: options.random ?? Math.random,
    now: options.now ?? Date.now,
  }
}
