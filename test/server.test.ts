import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { request } from 'undici'
import { startOrigin } from './helpers/origin.ts'

type Line = { msg?: string; level?: number; [key: string]: unknown }

/** Starts `node src/server.ts` as users run it and collects its JSON log lines. */
function startServer(env: Record<string, string>) {
  const child = spawn(process.execPath, ['src/server.ts'], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', SANDBOX_PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: Line[] = []
  const waiters: Array<[RegExp, (line: Line) => void]> = []
  createInterface({ input: child.stdout as NonNullable<ChildProcess['stdout']> }).on('line', (text) => {
    const line = JSON.parse(text) as Line
    lines.push(line)
    for (const [i, [pattern, resolve]] of waiters.entries()) {
      if (pattern.test(String(line.msg))) {
        waiters.splice(i, 1)
        resolve(line)
      }
    }
  })
  let stderr = ''
  child.stderr?.on('data', (chunk) => {
    stderr += chunk
  })
  const waitFor = (pattern: RegExp) =>
    new Promise<Line>((resolve) => {
      const seen = lines.find((line) => pattern.test(String(line.msg)))
      if (seen) resolve(seen)
      else waiters.push([pattern, resolve])
    })
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>
  return { child, lines, waitFor, exited, stderr: () => stderr }
}

test('without credentials it runs against the sandbox, says so, and drains on SIGTERM with exit 0', async (t) => {
  const origin = await startOrigin()
  t.after(() => origin.close())
  const server = startServer({
    FETCH_ALLOW_PRIVATE_NETWORKS: 'true',
    FETCH_TIMEOUT_MS: '60000',
    SHUTDOWN_TIMEOUT_MS: '1500',
  })
  t.after(() => server.child.kill('SIGKILL'))
  const listening = await server.waitFor(/listening at/)
  const base = String(listening.msg).match(/http:\/\/[\d.:]+/)?.[0]
  assert.ok(base)
  assert.ok(server.lines.some((line) => /SANDBOX MODE/.test(String(line.msg))))
  assert.ok(server.lines.some((line) => /FETCH_ALLOW_PRIVATE_NETWORKS is on/.test(String(line.msg))))
  assert.ok(
    server.lines.some(
      (line) => line.level === 40 && /^OPEN ACCESS: API_KEYS is not set/.test(String(line.msg)),
    ),
    'an open API is a warning',
  )

  const post = async (urls: string[]) => {
    const response = await request(`${base}/v1/images/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ urls }),
    })
    assert.equal(response.statusCode, 202)
    return ((await response.body.json()) as { jobId: string }).jobId
  }
  const jobId = await post([`${origin.url}/img/1.png`])
  const events = await (await request(`${base}/v1/images/upload/${jobId}/events`)).body.text()
  const final = JSON.parse(events.trim().split('\n').at(-1)?.slice('data: '.length) ?? '{}')
  assert.equal(final.status, 'complete')
  const link = await request(final.uploaded.complete[0])
  assert.equal(link.statusCode, 200)
  assert.equal(link.headers['content-type'], 'image/png')
  await link.body.dump()

  await post([`${origin.url}/drip`])
  await origin.waitForRequest('/drip')
  server.child.kill('SIGTERM')
  const [code] = await server.exited
  assert.equal(code, 0)
  assert.ok(server.lines.some((line) => line.msg === 'stopped'))
})

test('invalid configuration stops the process naming each bad variable', async () => {
  const server = startServer({ UPLOAD_CONCURRENCY: '0', FETCH_TIMEOUT_MS: 'soon' })
  const [code] = await server.exited
  assert.equal(code, 1)
  assert.match(server.stderr(), /`UPLOAD_CONCURRENCY`/)
  assert.match(server.stderr(), /`FETCH_TIMEOUT_MS`/)
})
