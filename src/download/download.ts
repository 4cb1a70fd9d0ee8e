import { lookup as dnsLookup } from 'node:dns/promises'
import { request } from 'undici'
import { isServiceError, ServiceError } from '../errors.ts'
import { checkHost, checkUrl, isBlockedAddress } from './address.ts'
import { decoderFor, readCapped, tooLarge } from './body.ts'
import { type AddressPolicy, createAgent, type Resolve } from './connect.ts'
import { classifyError } from './failures.ts'
import { identify } from './sniff.ts'

export type DownloadOptions = {
  /** Cap on decoded bytes, counted while streaming; cap+1 fails, nothing is ever truncated. */
  maxBytes: number
  /** Total deadline for one download, redirects and body included. */
  timeoutMs: number
  maxRedirects: number
  allowPrivateNetworks: boolean
  userAgent: string
  /** Resolver used by the connection itself (tests inject one); defaults to the OS resolver. */
  lookup?: Resolve
  /** Address policy when private networks are not allowed; defaults to `isBlockedAddress`. Test seam. */
  isBlocked?: (address: string) => boolean
}
export type Downloaded = { bytes: Buffer; url: string; mime: string; ext: string }
export type Downloader = {
  download(url: string, signal?: AbortSignal): Promise<Downloaded>
  close(): Promise<void>
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])
const ACCEPT = 'image/png,image/jpeg,image/gif,image/*;q=0.8,*/*;q=0.5'
const DISCARD_LIMIT = 64 * 1024

const osLookup: Resolve = async (hostname) =>
  (await dnsLookup(hostname, { all: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }))

function checkOptions(o: DownloadOptions): void {
  for (const [name, min] of [
    ['maxBytes', 1],
    ['timeoutMs', 1],
    ['maxRedirects', 0],
  ] as const) {
    if (!Number.isSafeInteger(o[name]) || o[name] < min) {
      throw new TypeError(`Expected \`${name}\` to be an integer >= ${min}, got \`${o[name]}\``)
    }
  }
  if (typeof o.userAgent !== 'string' || !/^[\x20-\x7e]*\S[\x20-\x7e]*$/.test(o.userAgent)) {
    throw new TypeError(
      `Expected \`userAgent\` to be a non-empty printable ASCII string, got \`${o.userAgent}\``,
    )
  }
}

export function createDownloader(options: DownloadOptions): Downloader {
  checkOptions(options)
  const policy: AddressPolicy = {
    allowPrivate: options.allowPrivateNetworks,
    isBlocked: options.isBlocked ?? isBlockedAddress,
  }
  const agent = createAgent(options.lookup ?? osLookup, policy, options.timeoutMs)
  // Fixed outbound headers: nothing from the API client is ever forwarded.
  const headers = { 'user-agent': options.userAgent, accept: ACCEPT, 'accept-encoding': 'identity' }

  // Drains a body we will not use (keeps the connection reusable; destroys it past the limit).
  const discard = (body: { dump(o: { limit: number }): Promise<unknown> }) =>
    body.dump({ limit: DISCARD_LIMIT }).catch(() => {})

  async function fetchFollowing(start: URL, signal: AbortSignal, state: { url: URL; reading: boolean }) {
    let url = start
    for (let hop = 0; ; hop++) {
      state.url = url
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
      // A declared length over the cap fails before a byte of the body is read.
      if (Number(response.headers['content-length']) > options.maxBytes) {
        await discard(body)
        throw tooLarge(options.maxBytes)
      }
      const encoding = response.headers['content-encoding']
      let decoder: ReturnType<typeof decoderFor>
      try {
        decoder = decoderFor(Array.isArray(encoding) ? encoding.join(',') : encoding)
      } catch (error) {
        await discard(body)
        throw error
      }
      state.reading = true
      const bytes = await readCapped(body, decoder, options.maxBytes, signal)
      state.reading = false
      if (bytes.length === 0) throw new ServiceError('download_empty', 'origin sent an empty body')
      return { bytes, url: url.href, ...(await identify(bytes)) }
    }
  }

  return {
    async download(input, signal) {
      if (signal?.aborted) throw new ServiceError('cancelled', 'download cancelled', { cause: signal.reason })
      const url = URL.parse(input)
      if (!url) throw new ServiceError('download_bad_url', 'not a valid URL')
      checkUrl(url, 'download_bad_url')
      const deadline = AbortSignal.timeout(options.timeoutMs)
      const state = { url, reading: false }
      try {
        return await fetchFollowing(url, signal ? AbortSignal.any([signal, deadline]) : deadline, state)
      } catch (error) {
        if (signal?.aborted) throw new ServiceError('cancelled', 'download cancelled', { cause: error })
        if (isServiceError(error)) throw error
        throw classifyError(error, { ...state, timeoutMs: options.timeoutMs, timedOut: deadline.aborted })
      }
    },
    close: () => agent.close(),
  }
}
