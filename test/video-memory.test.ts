/**
 * A large video passing through the service must not grow the service's memory with its size.
 * Measured honestly: the service runs as its own process (`node src/server.ts`), the sandbox in
 * another (it keeps what it receives), and the peak RSS (VmHWM) of the service is read from /proc.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { request } from 'undici'
import { startOrigin } from './helpers/origin.ts'

const MiB = 1024 * 1024

/** Starts a node process and resolves with it and the first stdout line matching `ready`. */
async function startProcess(args: string[], env: Record<string, string>, ready: RegExp) {
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: child.stdout as NonNullable<ChildProcess['stdout']> })
  const exited = once(child, 'exit').then(() => {
    throw new Error(`${args.join(' ')} exited before it was ready`)
  })
  const line = await Promise.race([
    new Promise<string>((resolve) => {
      lines.on('line', (text) => {
        if (ready.test(text)) resolve(text)
      })
    }),
    exited,
  ])
  exited.catch(() => {})
  const url = line.match(/http:\/\/[\d.]+:\d+/)?.[0]
  assert.ok(url, line)
  return { child, url }
}

async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = Number(status.match(/^VmHWM:\s+(\d+) kB$/m)?.[1])
  assert.ok(kib > 0, 'VmHWM readable')
  return kib * 1024
}

test('peak RSS of the service does not grow with the size of a video passing through', {
  timeout: 60_000,
}, async (t) => {
  const origin = await startOrigin()
  t.after(() => origin.close())
  const sandbox = await startProcess(['src/sandbox/main.ts', '--port', '0'], {}, /listening on/)
  t.after(() => sandbox.child.kill('SIGKILL'))
  const service = await startProcess(
    ['src/server.ts'],
    {
      PORT: '0',
      HOST: '127.0.0.1',
      IMGUR_API_URL: sandbox.url,
      IMGUR_CLIENT_ID: 'memory-test',
      FETCH_ALLOW_PRIVATE_NETWORKS: 'true',
      LOG_LEVEL: 'info',
    },
    /listening at/,
  )
  t.after(() => service.child.kill('SIGKILL'))
  const pid = service.child.pid as number

  /** Uploads one video through the API and waits for the job to complete (Server-Sent Events, no polling). */
  const pass = async (bytes: number) => {
    const submitted = await request(`${service.url}/v1/images/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ urls: [`${origin.url}/video/${bytes}.mp4`] }),
    })
    const { jobId } = (await submitted.body.json()) as { jobId: string }
    const events = await (await request(`${service.url}/v1/images/upload/${jobId}/events`)).body.text()
    const final = JSON.parse(events.trim().split('\n').at(-1)?.slice('data: '.length) ?? '{}')
    assert.equal(final.items[0].state, 'complete', JSON.stringify(final.items[0]))
    return peakRss(pid)
  }

  const started = await peakRss(pid)
  // Spent chunks wait for the next GC (V8 collects after tens of MiB of external memory): a first
  // large video lifts the peak once, to a plateau. The comparison starts from there.
  const warm = await pass(64 * MiB)
  const small = await pass(64 * MiB)
  const large = await pass(160 * MiB)
  const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`
  t.diagnostic(
    `service peak RSS: ${mib(started)} at start, ${mib(warm)} after a first 64 MiB video, ${mib(small)} after a second, ${mib(large)} after a 160 MiB one`,
  )
  // Holding the video in memory would lift the peak by at least 96 MiB here.
  assert.ok(large - small <= 32 * MiB, `peak grew by ${((large - small) / MiB).toFixed(1)} MiB`)
})
