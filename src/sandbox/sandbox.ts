import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type AlbumRecord, albumReply, createAlbumStore } from './albums.ts'
import { apiReply, tokenReply } from './api.ts'
import { type AuthFailure, type Caller, createAuth, isFailure } from './auth.ts'
import { sniffImage, sniffVideo } from './formats.ts'
import { createWaits, pathOf, readBody } from './http.ts'
import { createImageStore, type UploadRecord } from './images.ts'
import { resolveOptions, type SandboxOptions } from './options.ts'
import { createRateLimits, type Payer, rateLimitHeaders } from './rate-limits.ts'
import { createRecords, type RequestRecord } from './records.ts'
import {
  type Call,
  classicError,
  FAULTS,
  type Fault,
  faultReply,
  fileTypeInvalid,
  json,
  MESSAGES,
  notFound,
  type Reply,
  tooLarge,
} from './replies.ts'
import { sitePage } from './site.ts'
import { parseUploadBody } from './upload-body.ts'

export type { AlbumRecord } from './albums.ts'
export type { OAuthOptions } from './auth.ts'
export type { UploadRecord } from './images.ts'
export type { SandboxOptions } from './options.ts'
export type { RequestRecord } from './records.ts'
export type { Fault } from './replies.ts'

/** Where a scripted fault strikes: the next upload (the default) or the next album creation. */
export type FaultTarget = 'upload' | 'album'
export type ScriptedFault = Fault | { fault: Fault; retryAfterSeconds?: number; on?: FaultTarget }

export type Sandbox = {
  readonly url: string
  listen(port?: number, host?: string): Promise<string>
  close(): Promise<void>
  script(...faults: ScriptedFault[]): void
  /** The newest `maxRecords` successful uploads, oldest first. */
  readonly uploads: ReadonlyArray<UploadRecord>
  /** The newest `maxRecords` albums made, oldest first. */
  readonly albums: ReadonlyArray<AlbumRecord>
  /** Successful uploads since creation or reset(), also those whose records were dropped. */
  readonly uploadCount: number
  /** The newest `maxRecords` /3 and /oauth2 requests, oldest first. */
  readonly requests: ReadonlyArray<RequestRecord>
  /** What the stored images take, counted as `maxBytes` counts them. */
  readonly storedBytes: number
  /** The tag a request record holds for this Authorization header. */
  authTag(header: string): string | undefined
  /** Uploads that asked Imgur to fetch a URL (refused): the service must never send one. */
  readonly urlUploads: number
  reset(): void
}

const RANDOM_FAULTS = ['server-error', 'unavailable-html', 'unavailable-empty'] as const
const SMALL_BODY_BYTES = 64 * 1024
/** An album's form: 100,000 deletehashes urlencoded take about 3.5 MB. */
const ALBUM_BODY_BYTES = 4 * 1024 * 1024

export function createSandbox(options: SandboxOptions = {}): Sandbox {
  const config = resolveOptions(options)
  const { random, now } = config
  const auth = createAuth({ clientIds: config.clientIds, oauth: config.oauth, now })
  const limits = createRateLimits(config.budgets, now)
  const images = createImageStore(random, config.maxBytes)
  const albums = createAlbumStore(random, config.maxAlbumBytes)
  const records = createRecords(config.maxRecords, auth.tag)
  const scripted: Array<{ fault: Fault; retryAfterSeconds: number | undefined; on: FaultTarget }> = []
  const waits = createWaits()
  // base64 in a urlencoded body is ~1.4× the bytes; past this the body is drained, not kept.
  const maxBodyBytes =
    Math.ceil(Math.max(config.maxImageBytes, config.maxVideoBytes) * 1.5) + SMALL_BODY_BYTES
  let url = ''
  let urlUploads = 0
  let closed = false

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent && !res.destroyed) send(req, res, json(500, { error: 'sandbox failure' }))
      else res.destroy()
    })
  })
  // A connection accepted while closing would otherwise keep close() waiting for its answer.
  server.on('connection', (socket) => {
    if (closed) socket.destroy()
  })

  function send(req: IncomingMessage, res: ServerResponse, reply: Reply, fault?: Fault): void {
    const path = pathOf(req)
    if (path.startsWith('/3/') || path.startsWith('/oauth2/')) {
      records.request(req, reply.status, fault)
    }
    const body = reply.body ?? ''
    res.writeHead(reply.status, { ...reply.headers, 'Content-Length': String(Buffer.byteLength(body)) })
    res.end(body)
  }

  /** /3 replies carry the rate-limit headers of whoever the request claims to be. */
  function withLimits(
    req: IncomingMessage,
    reply: Reply,
    override?: { remaining?: number; resetSeconds?: number },
  ) {
    const headers = rateLimitHeaders(limits.snapshot(payerOf(req)), req.method === 'POST', override)
    return { ...reply, headers: { ...headers, ...reply.headers } }
  }

  function payerOf(
    req: IncomingMessage,
    caller: Caller | AuthFailure = auth.authenticate(req.headers.authorization),
  ): Payer {
    if (!isFailure(caller) && caller.auth === 'bearer')
      return { client: caller.clientId, user: `account:${caller.accountId}` }
    return { client: auth.claimedClientId(req.headers.authorization), user: undefined }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = pathOf(req)
    const method = req.method ?? 'GET'
    const call = { path, method }
    if (method === 'POST' && /^\/3\/(image|upload)\/?$/.test(path)) {
      return post(req, res, call, 'upload', maxBodyBytes, uploadReply)
    }
    if (method === 'POST' && /^\/3\/album\/?$/.test(path)) {
      return post(req, res, call, 'album', ALBUM_BODY_BYTES, (req, call, caller, body, overflow) =>
        albumReply(req.headers['content-type'], call, caller, body, overflow, {
          images,
          albums,
          limits,
          payerOf: (caller) => payerOf(req, caller),
          baseUrl: config.publicUrl ?? url,
          datetime: Math.floor(now() / 1000),
          made: (album) => records.album(album),
        }),
      )
    }
    const { body } = await readBody(req, SMALL_BODY_BYTES)
    if (path.startsWith('/3/')) {
      return send(req, res, withLimits(req, apiReply(req, call, { auth, limits, images, albums, payerOf })))
    }
    if (method === 'POST' && path === '/oauth2/token')
      return send(req, res, await tokenReply(req, body, auth))
    if (method !== 'GET' && method !== 'HEAD') return send(req, res, notFound())
    return send(req, res, sitePage(path, images, albums))
  }

  /** The POSTs that cost credits (uploads, album creation): scripted and random faults strike them. */
  async function post(
    req: IncomingMessage,
    res: ServerResponse,
    call: Call,
    target: FaultTarget,
    maxBytes: number,
    answer: (
      req: IncomingMessage,
      call: Call,
      caller: Caller | AuthFailure,
      body: Buffer,
      overflow: boolean,
    ) => Promise<Reply>,
  ): Promise<void> {
    const index = scripted.findIndex((entry) => entry.on === target)
    const next = index < 0 ? undefined : scripted.splice(index, 1)[0]
    const fault = next?.fault ?? randomFault()
    if (fault === 'reset') return resetMidBody(req)
    // Authenticated as the request arrives: a caller Imgur would refuse gets its body drained, never kept.
    const caller = auth.authenticate(req.headers.authorization)
    const { body, overflow } = await readBody(req, isFailure(caller) ? 0 : maxBytes)
    if (config.latencyMs > 0) await waits.wait(config.latencyMs)
    if (closed) {
      res.destroy()
      return
    }
    if (fault !== undefined) {
      const retryAfter = next?.retryAfterSeconds
      const rateLimited = fault.startsWith('rate-limited')
      const reply = withLimits(req, faultReply(fault, call, random), {
        ...(rateLimited ? { remaining: 0 } : {}),
        ...(rateLimited && retryAfter !== undefined ? { resetSeconds: retryAfter } : {}),
      })
      if (retryAfter !== undefined) reply.headers['Retry-After'] = String(retryAfter)
      return send(req, res, reply, fault)
    }
    send(req, res, withLimits(req, await answer(req, call, caller, body, overflow)))
  }

  async function uploadReply(
    req: IncomingMessage,
    call: Call,
    caller: Caller | AuthFailure,
    body: Buffer,
    overflow: boolean,
  ): Promise<Reply> {
    if (isFailure(caller)) return classicError(caller.status, caller.message, call)
    if (overflow) return tooLarge(call, random)
    const payer = payerOf(req, caller)
    // Checked before parsing the body and again when paying: a concurrent upload may spend first.
    if (!limits.canAffordUpload(payer)) return classicError(429, MESSAGES.rateLimited, call)
    const parsed = await parseUploadBody(req.headers['content-type'], body)
    if (parsed.kind === 'url') {
      urlUploads += 1
      return classicError(400, MESSAGES.urlUpload, call)
    }
    if (parsed.kind === 'empty') return classicError(400, MESSAGES.noImage, call)
    if (parsed.kind === 'corrupt') return classicError(400, MESSAGES.corrupt, call)
    const video = parsed.field === 'video'
    const cap = video ? config.maxVideoBytes : config.maxImageBytes
    if (parsed.bytes.length > cap || !images.fits(parsed.bytes.length)) return tooLarge(call, random)
    const format = video ? sniffVideo(parsed.bytes) : sniffImage(parsed.bytes)
    if (format === undefined) return fileTypeInvalid(call)
    if (!limits.spendUpload(payer)) return classicError(429, MESSAGES.rateLimited, call)
    const { record, data } = images.add({
      ...parsed,
      format,
      caller,
      baseUrl: config.publicUrl ?? url,
      datetime: Math.floor(now() / 1000),
    })
    records.upload(record)
    return json(200, { status: 200, success: true, data })
  }

  function randomFault(): Fault | undefined {
    if (config.errorRate === 0 || random() >= config.errorRate) return undefined
    return RANDOM_FAULTS[Math.floor(random() * RANDOM_FAULTS.length)]
  }

  /** Destroys the connection once the body starts arriving: a reset mid-upload. */
  function resetMidBody(req: IncomingMessage): void {
    records.request(req, 0, 'reset')
    const destroy = () => req.socket.destroy()
    req.on('error', () => {})
    req.once('data', destroy)
    req.once('end', destroy)
  }

  return {
    get url() {
      return url
    },
    get uploads() {
      return records.uploads
    },
    get albums() {
      return records.albums
    },
    get uploadCount() {
      return records.uploadCount
    },
    get requests() {
      return records.requests
    },
    get storedBytes() {
      return images.bytes
    },
    authTag(header) {
      return auth.tag(header)
    },
    get urlUploads() {
      return urlUploads
    },
    listen(port = 0, host = '127.0.0.1') {
      closed = false
      return new Promise<string>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          const address = server.address() as AddressInfo
          url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`
          resolve(url)
        })
      })
    },
    close() {
      closed = true
      return new Promise<void>((resolve) => {
        waits.endAll()
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
    script(...faults) {
      for (const item of faults) {
        const entry = typeof item === 'string' ? { fault: item } : item
        if (!(FAULTS as readonly string[]).includes(entry.fault)) {
          throw new TypeError(`Expected a fault, one of ${FAULTS.join(', ')}, got \`${String(entry.fault)}\``)
        }
        const on = entry.on ?? 'upload'
        if (on !== 'upload' && on !== 'album') {
          throw new TypeError(`Expected \`on\` to be upload or album, got \`${String(on)}\``)
        }
        scripted.push({ fault: entry.fault, retryAfterSeconds: entry.retryAfterSeconds, on })
      }
    },
    reset() {
      records.clear()
      scripted.length = 0
      urlUploads = 0
      limits.clear()
      images.clear()
      albums.clear()
    },
  }
}
