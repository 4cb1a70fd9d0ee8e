/**
 * A real redis-server for the fleet tests (Debian's package; `.ci/run` installs it): started on a
 * free loopback port with nothing persisted and `noeviction` (the only policy that keeps BullMQ's
 * queues correct), stopped after. Never a mock.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'

export type RedisServer = { url: string; port: number; process: ChildProcess; stop(): Promise<void> }

async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

export async function startRedis(port?: number): Promise<RedisServer> {
  const chosen = port ?? (await freePort())
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(chosen),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--maxmemory-policy',
      'noeviction',
      '--protected-mode',
      'no',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let output = ''
  child.stdout?.setEncoding('utf8')
  child.stdout?.on('data', (chunk: string) => {
    output += chunk
  })
  const failed = once(child, 'exit').then(([code]) => {
    throw new Error(`redis-server exited (${code}) before it was ready:\n${output}`)
  })
  failed.catch(() => {})
  const ready = (async () => {
    const deadline = Date.now() + 10_000
    while (!output.includes('Ready to accept connections')) {
      if (Date.now() > deadline) throw new Error(`redis-server did not start within 10 s:\n${output}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  await Promise.race([ready, failed])
  return {
    url: `redis://127.0.0.1:${chosen}`,
    port: chosen,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    },
  }
}
