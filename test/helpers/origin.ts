/**
 * A fake image origin on loopback, port 0: every scenario the downloader (and the whole service)
 * must survive, from plain images to lying Content-Lengths, gzip bombs and drips.
 */
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { pipeline, Readable } from 'node:stream'
import { crc32, createGzip } from 'node:zlib'
import { mp4 } from './formats.ts'
import { bmp, gif, HTML, jpeg, png, tiff, webp } from './images.ts'

export type Origin = {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:40123`. */
  url: string
  /** Request count per path (query string excluded). */
  hits: Map<string, number>
  /** Headers of the latest request per path. */
  headers: Map<string, IncomingHttpHeaders>
  /** Requests and TCP connections seen so far (live counters). */
  readonly requests: number
  readonly connections: number
  /** Responses per path that closed before the origin finished them (the client went away). */
  closedEarly: Map<string, number>
  /** Resolves when the next request for `path` arrives (call it before that request can be sent). */
  waitForRequest(path: string): Promise<void>
  /** Resolves when the next response for `path` closes before the origin finished it. */
  waitForClose(path: string): Promise<void>
  /** Serves `body` at `path` from now on (files made by the test). */
  put(path: string, body: Buffer, type?: string): void
  close(): Promise<void>
}

const IMAGES: Record<string, [build: (seed: number) => Buffer, type: string]> = {
  png: [png, 'image/png'],
  jpg: [jpeg, 'image/jpeg'],
  gif: [gif, 'image/gif'],
  bmp: [bmp, 'image/bmp'],
  tiff: [tiff, 'image/tiff'],
}
const PNG_SIGNATURE = png(0).subarray(0, 8)

/**
 * The bytes of `png(seed, { padTo: total })`, produced lazily so huge bodies cost no memory (the
 * padding chunk's CRC is updated as the zeros stream by). Below the smallest padded PNG: the PNG
 * signature followed by zeros, `total` bytes in all.
 */
export function* paddedPng(seed: number, total: number): Generator<Buffer> {
  const block = Buffer.alloc(64 * 1024)
  const zeros = function* (count: number) {
    for (let left = count; left > 0; left -= block.length) yield block.subarray(0, left)
  }
  const image = png(seed)
  const padding = total - image.length - 12
  if (padding < 0) {
    if (total > 0) yield PNG_SIGNATURE.subarray(0, total)
    return yield* zeros(total - 8)
  }
  const header = Buffer.alloc(8)
  header.writeUInt32BE(padding)
  header.write('paDd', 4, 'latin1')
  yield Buffer.concat([image.subarray(0, -12), header])
  let crc = crc32('paDd')
  for (const chunk of zeros(padding)) {
    crc = crc32(chunk, crc)
    yield chunk
  }
  const trailer = Buffer.alloc(4)
  trailer.writeUInt32BE(crc)
  yield Buffer.concat([trailer, image.subarray(-12)])
}

function send(res: ServerResponse, status: number, type: string, body: Buffer | string, extra = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...extra })
  res.end(body)
}

/**
 * `/video/<bytes>.mp4`: an MP4 of that many bytes made as it is sent (a 160 MiB one costs the
 * origin no memory). `?chunked` leaves out Content-Length; `?reset=N` drops the connection after
 * N bytes of body; `?stall=N` stops sending after N bytes and keeps the connection open.
 */
function sendVideo(res: ServerResponse, total: number, query: URLSearchParams): void {
  const resetAt = query.has('reset') ? Number(query.get('reset')) : Number.POSITIVE_INFINITY
  const stallAt = query.has('stall') ? Number(query.get('stall')) : Number.POSITIVE_INFINITY
  res.writeHead(200, {
    'content-type': 'video/mp4',
    ...(query.has('chunked') ? {} : { 'content-length': total }),
  })
  let sent = 0
  const drained = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done).off('close', done)
        resolve()
      }
      res.on('drain', done).on('close', done)
    })
  const pump = async () => {
    for (const chunk of mp4(total)) {
      if (res.destroyed) return
      if (sent >= resetAt) {
        // Never ended: a chunked body would otherwise look complete.
        res.socket?.resetAndDestroy()
        return
      }
      if (sent >= stallAt) return
      const part = chunk.subarray(0, Math.min(resetAt, stallAt) - sent)
      sent += part.length
      if (!res.write(part)) await drained()
    }
    res.end()
  }
  pump().catch(() => res.destroy())
}

export async function startOrigin(options: { host?: string; port?: number } = {}): Promise<Origin> {
  const hits = new Map<string, number>()
  const headers = new Map<string, IncomingHttpHeaders>()
  const waiters = new Map<string, Array<() => void>>()
  const closedEarly = new Map<string, number>()
  const closeWaiters = new Map<string, Array<() => void>>()
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  const files = new Map<string, [body: Buffer, type: string]>()
  let requests = 0
  let connections = 0

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://origin')
    const path = url.pathname
    requests++
    hits.set(path, (hits.get(path) ?? 0) + 1)
    headers.set(path, req.headers)
    for (const wake of waiters.get(path) ?? []) wake()
    waiters.delete(path)
    res.on('close', () => {
      if (res.writableFinished) return
      closedEarly.set(path, (closedEarly.get(path) ?? 0) + 1)
      for (const wake of closeWaiters.get(path) ?? []) wake()
      closeWaiters.delete(path)
    })
    const n = Number(url.searchParams.get('bytes') ?? 0)
    const redirect = (location?: string) => {
      res.writeHead(302, location === undefined ? {} : { location })
      res.end()
    }
    const later = (ms: number, fn: () => void, repeat = false) => {
      const timer = repeat ? setInterval(fn, ms) : setTimeout(fn, ms)
      timers.add(timer)
      res.on('close', () => {
        clearTimeout(timer)
        timers.delete(timer)
      })
    }
    // Writes a raw response on the socket: Node's own server refuses to send a body that contradicts Content-Length.
    const raw = (declared: number, body: Buffer) => {
      req.socket.write(
        `HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: ${declared}\r\nConnection: close\r\n\r\n`,
      )
      req.socket.end(body)
    }

    const file = files.get(path)
    if (file) return send(res, 200, file[1], file[0])
    const video = path.match(/^\/video\/(\d+)\.mp4$/)
    if (video) return sendVideo(res, Number(video[1]), url.searchParams)
    const image = path.match(/^\/img\/(\d+)\.(png|jpg|gif|bmp|tiff)$/)
    const sized = path.match(/^\/sized\/(\d+)\.png$/)
    const hops = path.match(/^\/redirect\/(\d+)$/)
    const status = path.match(/^\/status\/(\d{3})$/)
    const slow = path.match(/^\/slow\/(\d+)\.png$/)
    const [build, type] = (image && IMAGES[image[2] ?? '']) || []
    if (image && build && type) return send(res, 200, type, build(Number(image[1])))
    if (sized) {
      const size = Number(sized[1])
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': size })
      return void pipeline(Readable.from(paddedPng(size, size)), res, () => {})
    }
    if (hops) {
      const left = Number(hops[1])
      return left > 0 ? redirect(`/redirect/${left - 1}`) : send(res, 200, 'image/png', png(0))
    }
    if (status) return send(res, Number(status[1]), 'text/plain', `status ${status[1]}\n`)
    // `/slow/<seed>.png?ms=N`: a distinct PNG per seed, answered after N ms (1000 by default);
    // `&first=M`: the path's first request waits M ms instead (a download that hangs once).
    if (slow) {
      const first = url.searchParams.get('first')
      const ms = Number((hits.get(path) === 1 && first) || url.searchParams.get('ms') || 1000)
      return later(ms, () => send(res, 200, 'image/png', png(Number(slow[1]))))
    }
    switch (path) {
      case '/apng.png':
        return send(res, 200, 'image/png', png(1, { animated: true }))
      case '/same-a.png':
      case '/same-b.png':
        return send(res, 200, 'image/png', png(4242))
      case '/html-as-png':
        return send(res, 200, 'image/png', HTML)
      case '/webp.png':
        return send(res, 200, 'image/png', webp())
      case '/json':
        return send(res, 200, 'application/json', '{"error":"not an image"}\n')
      case '/empty':
        return send(res, 200, 'image/png', '')
      case '/redirect-to':
        return redirect(url.searchParams.get('url') ?? '/')
      case '/redirect-relative':
        return redirect('img/7.png')
      case '/redirect-no-location':
        return redirect()
      case '/redirect-scheme':
        return redirect('file:///etc/passwd')
      case '/loop':
        return redirect('/loop')
      case '/chunked-big':
        res.writeHead(200, { 'content-type': 'image/png' })
        return void pipeline(Readable.from(paddedPng(n, n)), res, () => {})
      case '/gzip-bomb':
        res.writeHead(200, { 'content-type': 'image/png', 'content-encoding': 'gzip' })
        return void pipeline(Readable.from(paddedPng(n, n)), createGzip(), res, () => {})
      case '/lying-length/short':
        return raw(png(2).length, Buffer.concat([png(2), Buffer.from('bytes past the declared length')]))
      case '/lying-length/long':
        return raw(png(3).length + 1000, png(3))
      case '/drip': {
        // `?length=N` declares a Content-Length the drip never reaches; `?every=ms` sets the pace.
        const length = url.searchParams.get('length')
        res.writeHead(200, { 'content-type': 'image/png', ...(length ? { 'content-length': length } : {}) })
        res.write(PNG_SIGNATURE)
        return later(Number(url.searchParams.get('every') ?? 1000), () => res.write(Buffer.from([0])), true)
      }
      case '/slow-headers':
        return later(Number(url.searchParams.get('ms') ?? 1000), () => send(res, 200, 'image/png', png(0)))
      case '/reset':
        return void req.socket.resetAndDestroy()
      default:
        return send(res, 404, 'text/plain', 'not found\n')
    }
  })
  server.on('connection', (socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1')
  await once(server, 'listening')
  const { address, port } = server.address() as AddressInfo

  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    hits,
    headers,
    closedEarly,
    get requests() {
      return requests
    },
    get connections() {
      return connections
    },
    put(path, body, type = 'application/octet-stream') {
      files.set(path, [body, type])
    },
    waitForRequest(path) {
      return new Promise((resolve) => waiters.set(path, [...(waiters.get(path) ?? []), resolve]))
    },
    waitForClose(path) {
      return new Promise((resolve) => closeWaiters.set(path, [...(closeWaiters.get(path) ?? []), resolve]))
    },
    async close() {
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
      for (const socket of sockets) socket.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
