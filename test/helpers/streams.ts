/**
 * Helpers for status-stream tests: an origin that holds its answers until released, raw clients
 * that stop reading, and the service's side of every connection (to see what it queues).
 */
import { once } from 'node:events'
import { createServer, type IncomingMessage, request } from 'node:http'
import { type AddressInfo, connect, type Socket } from 'node:net'
import type { TestContext } from 'node:test'

/**
 * An origin that answers 404 to everything, but only once `release()` is called (requests made
 * after that are answered at once): a job stays in progress for exactly as long as a test needs.
 */
export async function heldOrigin(t: TestContext) {
  let release = (): void => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  const server = createServer((_req, res) => {
    void released.then(() => {
      res.writeHead(404, { 'content-type': 'text/plain' })
      res.end('not found\n')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(async () => {
    release()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, release }
}

/** `count` distinct URLs on `base`, each about `bytes` long, so that the status document is large. */
export function longUrls(base: string, count: number, bytes = 1400): string[] {
  return Array.from({ length: count }, (_, i) => `${base}/missing/${i}?pad=${'x'.repeat(bytes)}`)
}

/** The service's end of every connection made to it from now on. */
export function serverSockets(server: {
  on(event: 'connection', listener: (socket: Socket) => void): unknown
}) {
  const sockets: Socket[] = []
  server.on('connection', (socket) => sockets.push(socket))
  /** The service's end of the connection whose client end is `client`. */
  const of = (client: Socket): Socket => {
    const found = sockets.find((s) => s.remotePort === client.localPort)
    if (found === undefined) throw new Error(`no server socket for client port ${client.localPort}`)
    return found
  }
  return { sockets, of }
}

/** Resolves once `socket` has closed (at once if it already has). */
export async function closed(socket: Socket): Promise<void> {
  if (!socket.closed) await once(socket, 'close')
}

/**
 * Opens a status stream on a raw socket that reads the first bytes (the response head, to check
 * it) and then never reads again, so the kernel's buffers fill and the service's writes are
 * refused. `address` is the service's base URL, or the path of the Unix socket it listens on.
 */
export async function openUnread(
  address: string,
  jobId: string,
  localAddress = '127.0.0.1',
): Promise<{ socket: Socket; first: Buffer; head: string }> {
  const url = address.startsWith('/') ? undefined : new URL(address)
  const socket = url
    ? connect({ host: url.hostname, port: Number(url.port), localAddress })
    : connect({ path: address })
  await once(socket, 'connect')
  socket.write(`GET /v1/images/upload/${jobId}/events HTTP/1.1\r\nHost: service\r\n\r\n`)
  await once(socket, 'readable')
  const first = socket.read() as Buffer
  return { socket, first, head: first.toString('latin1').split('\r\n\r\n')[0] ?? '' }
}

/** Reads the rest of a raw response (the client starts reading again) up to its last chunk. */
export async function readRest(client: { socket: Socket; first: Buffer }): Promise<Buffer> {
  const chunks = [client.first]
  let tail = client.first.subarray(-5)
  for await (const chunk of client.socket) {
    chunks.push(chunk as Buffer)
    tail = Buffer.concat([tail, chunk as Buffer]).subarray(-5)
    if (tail.toString('latin1') === '0\r\n\r\n') break
  }
  return Buffer.concat(chunks)
}

/** The body of a raw HTTP/1.1 response with chunked transfer coding, decoded. */
export function dechunk(raw: Buffer): string {
  let at = raw.indexOf('\r\n\r\n') + 4
  const parts: Buffer[] = []
  for (;;) {
    const eol = raw.indexOf('\r\n', at)
    const size = Number.parseInt(raw.toString('latin1', at, eol), 16)
    if (!(size > 0)) break
    parts.push(raw.subarray(eol + 2, eol + 2 + size))
    at = eol + 2 + size + 2
  }
  return Buffer.concat(parts).toString('utf8')
}

/** A GET from `localAddress` (a client of its own for the per-client cap); the body is not read. */
export function get(base: string, path: string, localAddress = '127.0.0.1'): Promise<IncomingMessage> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    request({ host: hostname, port: Number(port), path, localAddress, agent: false }, resolve)
      .on('error', reject)
      .end()
  })
}

/** The whole body of `response` as text. */
export async function text(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of response) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** The `data:` of each `event: status` block of an SSE body, as sent (not parsed). */
export function statusData(body: string): string[] {
  return body
    .split('\n\n')
    .filter((block) => block.startsWith('event: status\n'))
    .map((block) => block.slice(block.indexOf('\ndata: ') + '\ndata: '.length))
}
