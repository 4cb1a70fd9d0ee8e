/**
 * The reference the status route's latency is held to: a trivial HTTP server in a process of its
 * own that answers every GET with a fixed document (the bytes of the status document being read,
 * so the same size), as a JSON answer with the same keep-alive. Read by the same code as the
 * service's status route while the raw pipeline (in another process) loads the machine as the
 * service's own work does, its latency is what the machine alone costs a read.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

export type Reference = { url: string; pid: number; close(): Promise<void> }

/** Starts the reference server answering `document`; it exits when the benchmark disconnects. */
export async function startReference(document: Buffer): Promise<Reference> {
  const child = fork(new URL(import.meta.url), [], {
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  child.send({ document: document.toString('base64') })
  const [ready] = (await once(child, 'message')) as [{ url: string }]
  return {
    url: ready.url,
    pid: child.pid as number,
    async close() {
      child.disconnect()
      if (child.exitCode === null) await once(child, 'exit')
    },
  }
}

if (import.meta.main) {
  const [message] = (await once(process, 'message')) as [{ document: string }]
  const body = Buffer.from(message.document, 'base64')
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length })
    res.end(body)
  })
  // Fastify's default, so both keep the reader's connection the same way.
  server.keepAliveTimeout = 72_000
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo
    process.send?.({ url: `http://127.0.0.1:${port}` })
  })
  process.once('disconnect', () => {
    server.closeAllConnections()
    server.close()
  })
}
