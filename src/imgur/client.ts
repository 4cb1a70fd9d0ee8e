/**
 * The client: uploads bytes to Imgur (never a URL), makes albums of uploaded images, and turns
 * every answer into an `Uploaded` (a `CreatedAlbum`) or a classified ServiceError.
 * https://apidocs.imgur.com/#c85c9dfc-7487-4de2-9ecd-66f727cf3139
 *
 * Rate-limit contract: upload() and createAlbum() never wait and never reserve. They record the
 * budgets of EVERY response (success or error) in the injected `budgets` under
 * `credentialKey(input.clientId)` and mark a 429 with `budgets.on429`. The caller (the scheduler,
 * the album step) calls `budgets.reserve(key, now)` before each call and calls the returned
 * `release()` once it settles.
 */
import { createHash } from 'node:crypto'
import { type BudgetLedger, Budgets } from '../budgets.ts'
import { ServiceError } from '../errors.ts'
import { LruMap } from '../lru.ts'
import { raceSignal } from '../signals.ts'
import { parseImgurError, redactText } from './errors.ts'
import { connections, post, withDeadline } from './http.ts'
import {
  type AlbumInput,
  albumPayload,
  imagePayload,
  type Payload,
  type UploadInput,
  type VideoInput,
  videoPayload,
} from './payload.ts'
import { parseRateLimitHeaders } from './rate-limits.ts'
import { createTokenManager, type TokenManager } from './token.ts'

/** `L`: the ledger's own type, so its holder keeps its whole API (the memory Budgets by default). */
export type ImgurClientOptions<L extends BudgetLedger = Budgets> = {
  apiUrl: string
  clientId?: string
  clientSecret?: string
  refreshToken?: string
  /** Total deadline of one upload() call, token refresh and retry included. */
  timeoutMs: number
  /** Total deadline of one uploadVideo() call; defaults to `timeoutMs`. */
  videoTimeoutMs?: number
  userAgent: string
  /**
   * Where album pages are (`<siteUrl>/a/<id>`): Imgur answers an album's id, not its link. Default:
   * https://imgur.com for https://api.imgur.com, else the API's own origin (the sandbox's pages).
   */
  siteUrl?: string | undefined
  /** The ledger every answer's rate-limit headers are recorded in (shared with the queue); a new Budgets by default. */
  budgets?: L
  now?: () => number
}
export type { AlbumInput, UploadInput, VideoInput } from './payload.ts'
export type Uploaded = { id: string; link: string; deletehash: string; type: string; size: number }
/** `deletehash` only for an anonymous album: an account's albums are changed with its token. */
export type CreatedAlbum = { id: string; deletehash?: string; link: string }
export type ImgurClient<L extends BudgetLedger = Budgets> = {
  upload(input: UploadInput): Promise<Uploaded>
  uploadVideo(input: VideoInput): Promise<Uploaded>
  /** Makes an album of uploaded images: `deletehashes` when anonymous, `ids` in account mode. */
  createAlbum(input: AlbumInput): Promise<CreatedAlbum>
  /** Whether calls with this client id go into the configured account (Bearer), not anonymously. */
  usesAccount(clientId?: string): boolean
  credentialKey(clientId?: string): string
  readonly budgets: L
  close(): Promise<void>
}

/** Client ids brought by jobs whose credential key a client remembers. */
const DYNAMIC_KEYS = 1_000

/** Budget keys and logs name a credential by a hash prefix, never by the id itself. */
function fingerprint(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 12)
}

/** Last line of defence: no message leaves the client holding a credential. */
function redact(error: unknown, secrets: ReadonlyArray<string | undefined>): unknown {
  if (!(error instanceof ServiceError)) return error
  const message = redactText(error.message, secrets)
  if (message === error.message) return error
  const { retryable, details, retryAfterMs } = error
  return new ServiceError(error.code, message, { retryable, details, retryAfterMs, cause: error.cause })
}

/** One kind of call: where it goes and how its success answer is read. */
type Call<T> = {
  path: '/3/image' | '/3/album'
  subject: 'upload' | 'album'
  /** What a success answer must hold, for the message when it does not. */
  expected: string
  read(data: Record<string, unknown>, payload: Payload): T | undefined
}

function dataOf(body: string): Record<string, unknown> | undefined {
  try {
    const data = (JSON.parse(body) as { data?: unknown } | null)?.data
    return typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

const isKey = (value: unknown): value is string => typeof value === 'string' && /^[A-Za-z0-9]+$/.test(value)

function readUploaded(data: Record<string, unknown>, input: Payload): Uploaded | undefined {
  const { id, link, deletehash, type, size } = data
  if (
    typeof link !== 'string' ||
    !URL.canParse(link) ||
    typeof id !== 'string' ||
    typeof deletehash !== 'string'
  ) {
    return undefined
  }
  return {
    id,
    link,
    deletehash,
    type: typeof type === 'string' ? type : input.mime,
    size: typeof size === 'number' ? size : input.size,
  }
}

/** Imgur's album pages are on imgur.com, its API on api.imgur.com; elsewhere (the sandbox) one origin serves both. */
export function defaultSiteUrl(apiUrl: string): string {
  const url = new URL(apiUrl)
  return url.hostname === 'api.imgur.com' ? 'https://imgur.com' : url.origin
}

export function createImgurClient<L extends BudgetLedger = Budgets>(
  options: ImgurClientOptions<L>,
): ImgurClient<L> {
  const apiUrl = URL.canParse(options.apiUrl) ? options.apiUrl.replace(/\/+$/, '') : undefined
  if (!apiUrl || !/^https?:/.test(apiUrl)) {
    throw new ServiceError(
      'imgur_invalid_options',
      `Expected \`apiUrl\` to be an http(s) URL, got \`${options.apiUrl}\``,
    )
  }
  if (!Number.isSafeInteger(options.timeoutMs) || options.timeoutMs < 1) {
    throw new ServiceError(
      'imgur_invalid_options',
      `Expected \`timeoutMs\` to be an integer >= 1, got \`${options.timeoutMs}\``,
    )
  }
  const siteUrl = options.siteUrl ?? defaultSiteUrl(apiUrl)
  if (!URL.canParse(siteUrl) || !/^https?:/.test(siteUrl)) {
    throw new ServiceError(
      'imgur_invalid_options',
      `Expected \`siteUrl\` to be an http(s) URL, got \`${options.siteUrl}\``,
    )
  }
  const albumBase = `${siteUrl.replace(/\/+$/, '')}/a/`
  const now = options.now ?? Date.now
  const imgur = connections({ keepAliveTimeout: 10_000 })
  // Without a ledger, L is its default, Budgets: the cast only says so.
  const budgets = options.budgets ?? (new Budgets() as BudgetLedger as L)
  const { clientId, clientSecret, refreshToken, timeoutMs, userAgent } = options
  const videoTimeoutMs = options.videoTimeoutMs ?? timeoutMs
  const tokens =
    clientId && clientSecret && refreshToken
      ? createTokenManager({
          apiUrl,
          clientId,
          clientSecret,
          refreshToken,
          userAgent,
          timeoutMs,
          connections: imgur,
          now,
          onHeaders: (headers) => budgets.update(credentialKey(), parseRateLimitHeaders(headers, now())),
          onRateLimited: (waitMs) => budgets.on429(credentialKey(), waitMs, now()),
        })
      : undefined

  // Asked for every item and every answer: each id is hashed once.
  const configuredKey =
    tokens && clientId
      ? `account:${fingerprint(clientId)}`
      : clientId
        ? `client:${fingerprint(clientId)}`
        : 'none'
  const dynamicKeys = new LruMap<string, string>(DYNAMIC_KEYS)
  function credentialKey(dynamicId?: string): string {
    if (!dynamicId) return configuredKey
    let key = dynamicKeys.get(dynamicId)
    if (key === undefined) {
      key = `client:${fingerprint(dynamicId)}`
      dynamicKeys.set(dynamicId, key)
    }
    return key
  }

  const uploadCall: Call<Uploaded> = {
    path: '/3/image',
    subject: 'upload',
    expected: 'an image link',
    read: readUploaded,
  }
  const albumCall: Call<CreatedAlbum> = {
    path: '/3/album',
    subject: 'album',
    expected: 'an album id',
    read: ({ id, deletehash }) => {
      if (!isKey(id)) return undefined
      const link = `${albumBase}${id}`
      return isKey(deletehash) ? { id, deletehash, link } : { id, link }
    },
  }

  async function send<T>(
    call: Call<T>,
    input: Payload,
    key: string,
    authorization: string,
    signal: AbortSignal,
  ) {
    const response = await post(imgur, `${apiUrl}${call.path}`, {
      headers: { ...input.headers, authorization, accept: 'application/json', 'user-agent': userAgent },
      body: input.body,
      signal,
    })
    budgets.update(key, parseRateLimitHeaders(response.headers, now()))
    if (response.status >= 200 && response.status < 300) {
      const data = dataOf(response.body)
      const answer = data && call.read(data, input)
      if (answer) return answer
      throw new ServiceError(
        'imgur_bad_response',
        `Imgur answered ${response.status} without ${call.expected}`,
        {
          retryable: true,
          details: { imgurStatus: response.status },
        },
      )
    }
    const credential = authorization.slice(authorization.indexOf(' ') + 1)
    const body = redactText(response.body, [credential, clientId, clientSecret, tokens?.refreshToken()])
    const error = parseImgurError(response.status, response.headers, body, now(), call.subject)
    if (response.status === 429) budgets.on429(key, error.retryAfterMs, now())
    if (input.video && error.code === 'imgur_too_large') {
      throw new ServiceError(
        'imgur_too_large',
        'Imgur refused the video as too large; its API takes videos up to 200 MB',
        {
          details: error.details,
          cause: error,
        },
      )
    }
    throw error
  }

  async function asAccount<T>(
    tokens: TokenManager,
    call: Call<T>,
    payload: () => Payload,
    key: string,
    signal: AbortSignal,
    used: string[],
  ): Promise<T> {
    const token = await raceSignal(tokens.get(), signal)
    used.push(token)
    const first = payload()
    try {
      return await send(call, first, key, `Bearer ${token}`, signal)
    } catch (error) {
      if (!(error instanceof ServiceError) || error.code !== 'imgur_token_invalid') throw error
    }
    // The token expired or was replaced: one refresh, one retry.
    tokens.invalidate(token)
    if (first.video) {
      // The video was consumed by the refused request: the whole item is tried again, with a fresh download.
      throw new ServiceError(
        'imgur_token_invalid',
        "Imgur refused the account's access token during a video upload; the token will be refreshed and the video sent again",
        { retryable: true },
      )
    }
    const fresh = await raceSignal(tokens.get(), signal)
    used.push(fresh)
    try {
      return await send(call, payload(), key, `Bearer ${fresh}`, signal)
    } catch (error) {
      if (!(error instanceof ServiceError) || error.code !== 'imgur_token_invalid') throw error
      const said = error.details?.imgurMessage
      throw new ServiceError(
        'imgur_auth',
        `Imgur refused the account's access token even after a refresh (403${said ? ` ${said}` : ''}); authorize the account again and configure the new refresh token`,
        { details: error.details, cause: error },
      )
    }
  }

  async function run<T>(
    call: Call<T>,
    payload: () => Payload,
    dynamic: string | undefined,
    deadlineMs: number,
    caller?: AbortSignal,
  ): Promise<T> {
    const dynamicId = dynamic || undefined
    const key = credentialKey(dynamicId)
    const id = dynamicId ?? clientId
    const account = dynamicId === undefined ? tokens : undefined
    if (!account && !id) {
      throw new ServiceError(
        'imgur_no_credentials',
        'No Imgur credentials: configure a client id (or an account) or send one with the job',
      )
    }
    const used: string[] = []
    try {
      return await withDeadline(deadlineMs, caller, (signal) =>
        account
          ? asAccount(account, call, payload, key, signal, used)
          : send(call, payload(), key, `Client-ID ${id}`, signal),
      )
    } catch (error) {
      throw redact(error, [id, clientId, clientSecret, refreshToken, tokens?.refreshToken(), ...used])
    }
  }

  return {
    budgets,
    credentialKey: (dynamicId) => credentialKey(dynamicId || undefined),
    usesAccount: (dynamicId) => !dynamicId && tokens !== undefined,
    upload: (input) => run(uploadCall, () => imagePayload(input), input.clientId, timeoutMs, input.signal),
    uploadVideo: (input) =>
      run(uploadCall, () => videoPayload(input), input.clientId, videoTimeoutMs, input.signal),
    createAlbum: (input) =>
      run(albumCall, () => albumPayload(input), input.clientId, timeoutMs, input.signal),
    close: () => imgur.close(),
  }
}
