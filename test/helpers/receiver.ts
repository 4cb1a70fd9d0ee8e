/**
 * A webhook receiver on loopback, port 0: records every call and answers from a script
 * (a status, a status with headers, or `hang`: never answer), then with the fallback.
 */
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export type Answer = number | { status: number; headers?: Record<string, string> } | 'hang'
export type Received = { path: string; search: string; headers: IncomingHttpHeaders; body: string }

export async function startReceiver(script: Answer[] = [], fallback: Answer = 204) {
  const received: Received[] = []
  const waiters: Array<{ count: number; resolve: () => void }> = []
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://receiver')
      received.push({
        path: url.pathname,
        search: url.search,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      })
      for (const waiter of waiters.filter((w) => received.length >= w.count)) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve()
      }
      const answer = script.shift() ?? fallback
      if (answer === 'hang') return
      const { status, headers = {} } = typeof answer === 'number' ? { status: answer } : answer
      res.writeHead(status, headers)
      res.end(status === 204 ? undefined : `status ${status}\n`)
    })
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    /** Calls received at `path`. */
    hits: (path: string) => received.filter((r) => r.path === path).length,
    /** Resolves once `count` calls have been received in all. */
    waitFor(count: number): Promise<void> {
      if (received.length >= count) return Promise.resolve()
      return new Promise((resolve) => waiters.push({ count, resolve }))
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

export type Receiver = Awaited<ReturnType<typeof startReceiver>>
