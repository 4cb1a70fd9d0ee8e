import { request } from 'undici'
import { isServiceError, ServiceError } from '../errors.ts'
import type { Sniffed } from '../media.ts'
import { startDeadline } from '../signals.ts'
import { formatBytes } from '../units.ts'
import { checkHost, checkUrl, isBlockedAddress, originOf } from './address.ts'
import { createAgent } from './agent.ts'
import { collectCapped, decodedChunks, decoderFor, headBytes, readHead, release, tooLarge } from './body.ts'
import { type AddressPolicy, osLookup, type Resolve } from './connect.ts'
import { classifyError } from './failures.ts'
import { classify, sniffVideo } from './sniff.ts'
import { type VideoStream, videoStream, videoTooLarge } from './video.ts'

export type DownloadOptions = {
  /** Cap on decoded bytes of a buffered file, counted while streaming; cap+1 fails, nothing is ever truncated. */
  maxBytes: number
  /** Total deadline for one download, redirects and body included. */
  timeoutMs: number
  /** Cap on a video, which is streamed rather than buffered; 0 or absent: videos are refused. */
  maxVideoBytes?: number
  /** Total deadline for a video (it lasts as long as its upload); defaults to `timeoutMs`. */
  videoTimeoutMs?: number
  maxRedirects: number
  allowPrivateNetworks: boolean
  userAgent: string
  /**
   * The service's own URLs (PUBLIC_URL): nothing is downloaded from their origins, whether
   * submitted or reached by a redirect, so a job cannot make the service fetch from itself.
   */
  ownUrls?: readonly string[]
  /** Resolver used by the connection itself (tests inject one); defaults to the OS resolver. */
  lookup?: Resolve
  /** Address policy when private networks are not allowed; defaults to `isBlockedAddress`. Test seam. */
  isBlocked?: (address: string) => boolean
}
/**
 * An image (taken by Imgur as is, or convertible) in memory, or a video still arriving. An image's
 * `release()` frees its bytes at once, once nothing will read them again (see body.ts, `release`).
 */
export type Opened =
  | { kind: 'file'; url: string; type: Sniffed; bytes: Buffer; release(): void }
  | { kind: 'video'; url: string; type: Sniffed; length: number | undefined; stream: VideoStream }
export type Downloader = {
  /** Decides after the first bytes: a video is handed back as a stream, anything else is buffered. */
  open(url: string, signal?: AbortSignal): Promise<Opened>
  close(): Promise<void>
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])
const ACCEPT = 'image/png,image/jpeg,image/gif,image/*;q=0.8,*/*;q=0.5'
const DISCARD_LIMIT = 64 * 1024
/** What file-type reads to decide; a video's `ftyp` or EBML header is at the very start. */
const SNIFF_BYTES = 4100

function checkOptions(o: DownloadOptions): void {
  for (const [name, min] of [
    ['maxBytes', 1],
    ['timeoutMs', 1],
    ['maxRedirects', 0],
    ['maxVideoBytes', 0],
    ['videoTimeoutMs', 1],
  ] as const) {
    if (o[name] !== undefined && (!Number.isSafeInteger(o[name]) || (o[name] ?? 0) < min)) {
      throw new TypeError(`Expected \`${name}\` to be an integer >= ${min}, got \`${o[name]}\``)
    }
  }
  if (typeof o.userAgent !== 'string' || !/^[\x20-\x7e]*\S[\x20-\x7e]*$/.test(o.userAgent)) {
    throw new TypeError(
      `Expected \`userAgent\` to be a non-empty printable ASCII string, got \`${o.userAgent}\``,
    )
  }
  for (const own of o.ownUrls ?? []) {
    const url = typeof own === 'string' ? URL.parse(own) : null
    if (url?.protocol !== 'http:' && url?.protocol !== 'https:') {
      throw new TypeError(`Expected \`ownUrls\` to hold http(s) URLs, got \`${own}\``)
    }
  }
}

export function createDownloader(options: DownloadOptions): Downloader {
  checkOptions(options)
  const policy: AddressPolicy = {
    allowPrivate: options.allowPrivateNetworks,
    isBlocked: options.isBlocked ?? isBlockedAddress,
  }
  const agent = createAgent(options.lookup ?? osLookup, policy, options.timeoutMs)
  const maxVideoBytes = options.maxVideoBytes ?? 0
  const ownOrigins = new Set(options.ownUrls?.map((own) => originOf(new URL(own))))
  // Fixed outbound headers: nothing from the API client is ever forwarded.
  const headers = { 'user-agent': options.userAgent, accept: ACCEPT, 'accept-encoding': 'identity' }

  // Drains a body we will not use (keeps the connection reusable; destroys it past the limit).
  const discard = (body: { dump(o: { limit: number }): Promise<unknown> }) =>
    body.dump({ limit: DISCARD_LIMIT }).catch(() => {})

  async function fetchFollowing(start: URL, signal: AbortSignal, state: { url: URL; reading: boolean }) {
    let url = start
    for (let hop = 0; ; hop++) {
      state.url = url
      // Checked before the address rules: allowing private networks does not allow the service itself.
      if (ownOrigins.has(originOf(url))) {
        throw new ServiceError(
          'download_url_is_this_service',
          hop === 0 ? 'URL points at this service itself' : 'origin redirected to this service itself',
        )
      }
      checkHost(url, policy.allowPrivate, policy.isBlocked)
      const response = await request(url.href, { dispatcher: agent, method: 'GET', headers, signal })
      const { statusCode: status, body } = response
      if (REDIRECTS.has(status)) {
        await discard(body)
        const location = response.headers.location
        if (typeof location !== 'string' || location === '') {
          throw new ServiceError('download_bad_redirect', `origin answered HTTP ${status} without a Location`)
        }
        if (hop >= options.maxRedirects) {
          throw new ServiceError(
            'download_too_many_redirects',
            `origin redirected more than ${options.maxRedirects} times`,
          )
        }
        const next = URL.parse(location, url.href)
        if (!next) throw new ServiceError('download_bad_redirect', 'origin redirected to an invalid URL')
        checkUrl(next, 'download_bad_redirect')
        url = next
        continue
      }
      if (status < 200 || status > 299 || status === 206) {
        await discard(body)
        const retryable = status >= 500 || status === 408 || status === 429
        const seconds = Number(response.headers['retry-after'])
        throw new ServiceError('download_http_status', `origin answered HTTP ${status}`, {
          retryable,
          details: { status },
          ...(retryable && seconds >= 0 ? { retryAfterMs: seconds * 1000 } : {}),
        })
      }
      return { url, status, headers: response.headers, body }
    }
  }

  type Fetched = Awaited<ReturnType<typeof fetchFollowing>>
  type Reading = { state: { reading: boolean }; deadline: ReturnType<typeof startDeadline> }

  async function read(response: Fetched, { state, deadline }: Reading, fail: (e: unknown) => unknown) {
    const { url, headers, body } = response
    const declared = Number(headers['content-length'])
    // A declared length over every cap fails before a byte of the body is read.
    if (declared > Math.max(options.maxBytes, maxVideoBytes)) {
      await discard(body)
      throw maxVideoBytes > 0
        ? new ServiceError(
            'download_too_large',
            `file is larger than the limits (${formatBytes(options.maxBytes)} for images, ${formatBytes(maxVideoBytes)} for videos)`,
          )
        : tooLarge(options.maxBytes)
    }
    const encoding = headers['content-encoding']
    let decoder: ReturnType<typeof decoderFor>
    try {
      decoder = decoderFor(Array.isArray(encoding) ? encoding.join(',') : encoding)
    } catch (error) {
      await discard(body)
      throw error
    }
    state.reading = true
    // Decoded bytes differ from the declared length, which then sizes neither a buffer nor an upload.
    const length = decoder || !Number.isSafeInteger(declared) ? undefined : declared
    const chunks = decodedChunks(body, decoder)
    const head = await readHead(chunks, SNIFF_BYTES).catch(async (error) => {
      await chunks.return(undefined)
      throw error
    })
    const video = await sniffVideo(headBytes(head))
    if (video && maxVideoBytes > 0) {
      // Refused before its upload begins, when MAX_DOWNLOAD_BYTES let its declared length through.
      if (declared > maxVideoBytes) {
        await chunks.return(undefined)
        throw videoTooLarge(maxVideoBytes)
      }
      deadline.extend(options.videoTimeoutMs ?? options.timeoutMs)
      const stream = videoStream(head, chunks, body, maxVideoBytes, fail, () => deadline.clear())
      return { kind: 'video' as const, url: url.href, type: video, length, stream }
    }
    if (video) {
      await chunks.return(undefined)
      throw new ServiceError(
        'unsupported_format',
        `${video.name} videos are not accepted: video uploads are off`,
      )
    }
    if (declared > options.maxBytes) {
      await chunks.return(undefined)
      throw tooLarge(options.maxBytes)
    }
    const bytes = await collectCapped(chunks, head, options.maxBytes, length)
    state.reading = false
    if (bytes.length === 0) throw new ServiceError('download_empty', 'origin sent an empty body')
    const type = await classify(bytes)
    if (type.kind === 'video')
      throw new ServiceError('unsupported_format', `${type.name} videos are not accepted`)
    return { kind: 'file' as const, url: url.href, type, bytes, release: () => release(bytes) }
  }

  async function open(input: string, signal?: AbortSignal): Promise<Opened> {
    if (signal?.aborted) throw new ServiceError('cancelled', 'download cancelled', { cause: signal.reason })
    const url = URL.parse(input)
    if (!url) throw new ServiceError('download_bad_url', 'not a valid URL')
    checkUrl(url, 'download_bad_url')
    // Moved once the download turns out to be a (longer) video.
    const deadline = startDeadline(options.timeoutMs, signal)
    const state = { url, reading: false }
    const fail = (error: unknown) => {
      if (signal?.aborted) return new ServiceError('cancelled', 'download cancelled', { cause: error })
      if (isServiceError(error)) return error
      return classifyError(error, { ...state, timeoutMs: deadline.ms, timedOut: deadline.timedOut })
    }
    let streaming = false
    try {
      const opened = await read(await fetchFollowing(url, deadline.signal, state), { state, deadline }, fail)
      streaming = opened.kind === 'video'
      return opened
    } catch (error) {
      throw fail(error)
    } finally {
      if (!streaming) deadline.clear()
    }
  }

  return {
    open,
    close: () => agent.close(),
  }
}
