/**
 * Memory of status streams whose clients never read ("Safe for many clients"): the service runs
 * as users run it, a job of 600 URLs of ~1.5 KB each goes to an origin that answers 404 after
 * 50 ms, and N raw TCP clients open the job's stream and stop reading after the first bytes.
 * Prints the service's RSS before, at its peak, and 35 s after the job completed (past the second
 * keep-alive ping), and whether the process is still alive.
 *
 *   node bench/streams.ts [streams...] [--dir=<checkout>]     (default: 0 5 50, this checkout)
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import { type AddressInfo, connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { readMemory, startService } from './processes.ts'

const URLS = 600
const PAD = 1450
const ORIGIN_DELAY_MS = 50
const AFTER_MS = 35_000
const MiB = 1024 * 1024

const args = process.argv.slice(2)
const dir = args.find((a) => a.startsWith('--dir='))?.slice('--dir='.length) ?? process.cwd()
const counts = args.filter((a) => /^\d+$/.test(a)).map(Number)

const origin = createServer((_req, res) => {
  setTimeout(() => {
    res.writeHead(404, { 'content-type': 'text/plain' })
    res.end('not found\n')
  }, ORIGIN_DELAY_MS)
})
origin.listen(0, '127.0.0.1')
await once(origin, 'listening')
const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`

async function openUnread(base: string, jobId: string): Promise<Socket> {
  const { hostname, port } = new URL(base)
  const socket = connect({ host: hostname, port: Number(port) })
  await once(socket, 'connect')
  socket.write(`GET /v1/images/upload/${jobId}/events HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`)
  await once(socket, 'readable')
  socket.read()
  socket.on('error', () => {})
  return socket
}

for (const streams of counts.length > 0 ? counts : [0, 5, 50]) {
  const service = await startService({
    dir,
    entry: 'src/server.ts',
    env: {
      IMGUR_API_URL: 'http://127.0.0.1:9',
      IMGUR_CLIENT_ID: 'bench',
      FETCH_ALLOW_PRIVATE_NETWORKS: 'true',
      MAX_STREAMS_PER_CLIENT: '1000',
      LOG_LEVEL: 'warn',
    },
    logFile: join(tmpdir(), `bench-streams-${streams}.log`),
    timeoutMs: 20_000,
  })
  let alive = true
  const sockets: Socket[] = []
  try {
    const before = service.memory().rss
    const urls = Array.from({ length: URLS }, (_, i) => `${originUrl}/missing/${i}?pad=${'x'.repeat(PAD)}`)
    const submitted = await request(`${service.url}/v1/images/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ urls }),
    })
    const { jobId } = (await submitted.body.json()) as { jobId: string }
    for (let i = 0; i < streams; i++) sockets.push(await openUnread(service.url, jobId))
    let peak = before
    for (;;) {
      peak = Math.max(peak, service.memory().rss)
      const answer = await request(`${service.url}/v1/images/upload/${jobId}`).catch(() => undefined)
      if (answer === undefined) {
        alive = false
        break
      }
      const { status } = (await answer.body.json()) as { status: string }
      if (status === 'complete') break
      await sleep(200)
    }
    const done = alive ? service.memory().rss : Number.NaN
    for (const stop = Date.now() + AFTER_MS; alive && Date.now() < stop; ) {
      await sleep(500)
      try {
        const { rss } = service.memory()
        if (Number.isNaN(rss)) throw new Error('exited')
        peak = Math.max(peak, rss)
      } catch {
        alive = false
        break
      }
    }
    const after = alive ? readMemory(service.pid) : undefined
    const line = {
      streams,
      rssBeforeMiB: +(before / MiB).toFixed(1),
      rssAtCompleteMiB: +(done / MiB).toFixed(1),
      rssPeakMiB: +(peak / MiB).toFixed(1),
      growthMiB: +((peak - before) / MiB).toFixed(1),
      rss35sAfterMiB: after ? +(after.rss / MiB).toFixed(1) : null,
      aliveAfter35s: alive,
    }
    process.stdout.write(`${JSON.stringify(line)}\n`)
  } finally {
    for (const socket of sockets) socket.destroy()
    await service.stop()
  }
}
origin.close()
