/**
 * The benchmark's outside world, run as a child of bench/run.ts and steered over IPC: a fast
 * keep-alive image origin and the Imgur sandbox with budgets large enough never to rate-limit.
 *
 * Origin paths: `/img/<seed>.png` a valid PNG of exactly `imageBytes` (distinct bytes per seed, so
 * the service's de-duplication never skips an upload), `/missing/...` a fast 404, `/hang/...` a
 * request that is never answered (keeps items queued behind the ones stuck on it), `/files/<name>`
 * a file of the folder named by the `files` command (the conversion phase's photographs).
 */
import { readFile } from 'node:fs/promises'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { basename, join } from 'node:path'
import { crc32 } from 'node:zlib'
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.ts'
import { png } from '../test/helpers/images.ts'

export type FakesCommand =
  | { op: 'reset' }
  | { op: 'latency'; ms: number }
  | { op: 'stats' }
  | { op: 'watch'; pid: number | undefined }
  | { op: 'files'; dir: string }
export type FakesRequest = FakesCommand & { id: number }
export type FakesReply = { id: number; ok: boolean; error?: string; stats?: FakesStats }
export type FakesReady = { op: 'ready'; origin: string; sandbox: string }
export type FakesStats = { images: number; missing: number; hanging: number; uploads: number }

const HOST = '127.0.0.1'
const BUDGET = { clientCredits: 1e12, userCredits: 1e12, posts: 1e12 }

const imageBytes = Number(process.argv[2])
if (!Number.isSafeInteger(imageBytes) || imageBytes < 200) {
  throw new TypeError(`Expected the image size to be an integer >= 200, got \`${process.argv[2]}\``)
}

/** `png(seed, { padTo })` without building 100 KB per request: the padding chunk only depends on its length. */
const pads = new Map<number, Buffer>()
function padChunk(length: number): Buffer {
  let pad = pads.get(length)
  if (pad === undefined) {
    pad = Buffer.alloc(length + 12)
    pad.writeUInt32BE(length)
    pad.write('paDd', 4, 'latin1')
    pad.writeUInt32BE(crc32(pad.subarray(4, 8 + length)), 8 + length)
    pads.set(length, pad)
  }
  return pad
}

function sendImage(res: ServerResponse, seed: number): void {
  const small = png(seed)
  const head = small.subarray(0, -12)
  const iend = small.subarray(-12)
  const pad = padChunk(imageBytes - small.length - 12)
  res.writeHead(200, { 'content-type': 'image/png', 'content-length': imageBytes })
  res.cork()
  res.write(head)
  res.write(pad)
  res.end(iend)
}

const TYPES: Record<string, string> = { webp: 'image/webp', avif: 'image/avif', heic: 'image/heic' }
let filesDir: string | undefined

async function sendFile(res: ServerResponse, name: string): Promise<void> {
  const bytes =
    filesDir === undefined ? undefined : await readFile(join(filesDir, basename(name))).catch(() => undefined)
  if (bytes === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain', 'content-length': 10 })
    return void res.end('not found\n')
  }
  const type = TYPES[name.split('.').pop() ?? ''] ?? 'application/octet-stream'
  res.writeHead(200, { 'content-type': type, 'content-length': bytes.length })
  res.end(bytes)
}

const stats: FakesStats = { images: 0, missing: 0, hanging: 0, uploads: 0 }
const hanging = new Set<ServerResponse>()
const sockets = new Set<Socket>()

const origin = createServer((req, res) => {
  const path = req.url ?? '/'
  const image = /^\/img\/(\d+)\.png$/.exec(path)
  if (req.method === 'GET' && image) {
    stats.images += 1
    return sendImage(res, Number(image[1]))
  }
  if (req.method === 'GET' && path.startsWith('/files/')) {
    stats.images += 1
    return void sendFile(res, path.slice('/files/'.length))
  }
  if (path.startsWith('/hang/')) {
    stats.hanging += 1
    hanging.add(res)
    res.on('close', () => hanging.delete(res))
    return
  }
  if (path.startsWith('/missing/')) stats.missing += 1
  res.writeHead(404, { 'content-type': 'text/plain', 'content-length': 10 })
  res.end('not found\n')
})
origin.keepAliveTimeout = 60_000
origin.on('connection', (socket) => {
  sockets.add(socket)
  socket.on('close', () => sockets.delete(socket))
})

let sandbox: Sandbox = createSandbox({ budget: BUDGET })
let sandboxPort = 0
let watched: number | undefined

/** The sandbox's latency is fixed at construction: a new one takes the old one's port. */
async function setLatency(ms: number): Promise<void> {
  await sandbox.close()
  sandbox = createSandbox({ budget: BUDGET, latencyMs: ms })
  await sandbox.listen(sandboxPort, HOST)
}

async function handle(message: FakesRequest): Promise<FakesReply> {
  switch (message.op) {
    case 'reset':
      stats.uploads += sandbox.uploadCount
      sandbox.reset()
      return { id: message.id, ok: true }
    case 'latency':
      stats.uploads += sandbox.uploadCount
      await setLatency(message.ms)
      return { id: message.id, ok: true }
    case 'stats':
      return {
        id: message.id,
        ok: true,
        stats: { ...stats, uploads: stats.uploads + sandbox.uploadCount },
      }
    case 'watch':
      watched = message.pid
      return { id: message.id, ok: true }
    case 'files':
      filesDir = message.dir
      return { id: message.id, ok: true }
  }
}

/** The parent is gone (even SIGKILLed): take the service it started down too, then leave. */
function shutdown(): void {
  if (watched !== undefined) {
    try {
      process.kill(watched, 'SIGKILL')
    } catch {}
  }
  for (const res of hanging) res.destroy()
  for (const socket of sockets) socket.destroy()
  origin.close()
  void sandbox.close().finally(() => process.exit(0))
  setTimeout(() => process.exit(0), 1000).unref()
}

process.on('disconnect', shutdown)
process.on('SIGTERM', shutdown)
process.on('SIGINT', () => {}) // the parent decides; a terminal's Ctrl-C reaches the whole group
process.on('message', (message: FakesRequest) => {
  handle(message).then(
    (reply) => process.send?.(reply),
    (error: unknown) => process.send?.({ id: message.id, ok: false, error: String(error) }),
  )
})

origin.listen(0, HOST, async () => {
  const originUrl = `http://${HOST}:${(origin.address() as AddressInfo).port}`
  const sandboxUrl = await sandbox.listen(0, HOST)
  sandboxPort = Number(new URL(sandboxUrl).port)
  const ready: FakesReady = { op: 'ready', origin: originUrl, sandbox: sandboxUrl }
  process.send?.(ready)
})
