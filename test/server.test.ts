import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { type TestContext, test } from 'node:test'
import { request } from 'undici'
import { startOrigin } from './helpers/origin.ts'

type Line = { msg?: string; level?: number; [key: string]: unknown }

/** Starts `node src/server.ts` as users run it and collects its JSON log lines. */
function startServer(env: Record<string, string>, nodeArgs: string[] = []) {
  const child = spawn(process.execPath, [...nodeArgs, 'src/server.ts'], {
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

test('at start the main thread loads nothing that only an item, a webhook, an album or a fleet needs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'loaded-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'packages')
  const server = startServer(
    {
      IMGUR_CLIENT_ID: 'test-client',
      IMGUR_API_URL: 'http://127.0.0.1:9',
      WEBHOOK_SECRET: 'whsec_dGVzdC1zZWNyZXQtb2YtMzItYnl0ZXMtYXQtbGVhc3Q=',
      LOADED_PACKAGES_FILE: file,
    },
    ['--import', './test/helpers/loaded-packages.ts'],
  )
  t.after(() => server.child.kill('SIGKILL'))
  await server.waitFor(/listening at/)
  server.child.kill('SIGTERM')
  assert.deepEqual((await server.exited)[0], 0, server.stderr())
  const loaded = readFileSync(file, 'utf8').split('\n')
  assert.ok(loaded.includes('fastify'), `the hook saw the service start: ${loaded.join(', ')}`)
  // undici: the pipeline's thread, the first album, the first webhook; the rest: the pipeline's
  // thread or a fleet. Each costs idle memory (README, Performance).
  for (const lazy of ['undici', 'sharp', 'file-type', 'heic-decode', 'bullmq', 'ioredis']) {
    assert.ok(!loaded.includes(lazy), `${lazy} is loaded at start`)
  }
  assert.deepEqual(
    loaded.filter((name) => name.includes('internal/deps/undici')),
    [],
    "Node's own undici is loaded at start",
  )
})

test('invalid configuration stops the process naming each bad variable', async () => {
  const server = startServer({ UPLOAD_CONCURRENCY: '0', FETCH_TIMEOUT_MS: 'soon' })
  const [code] = await server.exited
  assert.equal(code, 1)
  assert.match(server.stderr(), /`UPLOAD_CONCURRENCY`/)
  assert.match(server.stderr(), /`FETCH_TIMEOUT_MS`/)
})

/** Submits a job and reads its event stream to the end: the last event is the final status. */
async function runJob(base: string, body: Record<string, unknown>) {
  const response = await request(`${base}/v1/images/upload`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  assert.equal(response.statusCode, 202)
  const { jobId } = (await response.body.json()) as { jobId: string }
  const events = await (await request(`${base}/v1/images/upload/${jobId}/events`)).body.text()
  return JSON.parse(events.trim().split('\n').at(-1)?.slice('data: '.length) ?? '{}')
}

/** Whether something accepts connections at host:port (on Linux all of 127/8 is loopback). */
function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host)
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

async function startSandboxed(t: TestContext, env: Record<string, string> = {}) {
  const origin = await startOrigin()
  t.after(() => origin.close())
  const server = startServer({ FETCH_ALLOW_PRIVATE_NETWORKS: 'true', ...env })
  t.after(() => server.child.kill('SIGKILL'))
  const listening = await server.waitFor(/listening at/)
  const base = String(listening.msg).match(/http:\/\/[\d.:]+/)?.[0] ?? ''
  const sandboxLine = await server.waitFor(/SANDBOX MODE/)
  const api = new URL(String(sandboxLine.imgurApiUrl))
  return { origin, server, base, api }
}

test('the sandbox listens on loopback only and takes only the service its own client id', async (t) => {
  // The service on another loopback address: the sandbox's interface does not follow HOST.
  const { origin, server, base, api } = await startSandboxed(t, { HOST: '127.0.0.3' })
  assert.match(base, /^http:\/\/127\.0\.0\.3:/)
  assert.equal(api.hostname, '127.0.0.1')
  const port = Number(api.port)
  assert.equal(await connects('127.0.0.1', port), true)
  // Listening on 0.0.0.0 would accept this too: 127.0.0.2 is loopback, but not 127.0.0.1.
  assert.equal(await connects('127.0.0.2', port), false)

  const form = new FormData()
  form.append('image', new Blob([new Uint8Array(8)]), 'x.png')
  for (const auth of ['Client-ID sandbox', 'Client-ID anything']) {
    const upload = await fetch(`${api.origin}/3/image`, {
      method: 'POST',
      headers: { authorization: auth },
      body: form,
    })
    assert.equal(upload.status, 403, auth)
    assert.equal(((await upload.json()) as { data: { error: string } }).data.error, 'Invalid client_id')
  }

  const own = await runJob(base, { urls: [`${origin.url}/img/1.png`] })
  assert.equal(own.status, 'complete')
  assert.equal(own.uploaded.complete.length, 1)
  // A job's own client id is unknown to the sandbox, as it would be to Imgur: the item fails cleanly.
  const foreign = await runJob(base, { urls: [`${origin.url}/img/2.png`], clientId: 'someone-elses-id' })
  assert.equal(foreign.status, 'complete')
  assert.deepEqual(foreign.uploaded.failed, [`${origin.url}/img/2.png`])
  assert.equal(foreign.items[0]?.reason?.code, 'imgur_client_id_refused')

  server.child.kill('SIGTERM')
  const [code] = await server.exited
  assert.equal(code, 0)
})

test('SANDBOX_HOST=0.0.0.0 listens on every interface, still reached over loopback', async (t) => {
  const { origin, base, api } = await startSandboxed(t, { SANDBOX_HOST: '0.0.0.0' })
  assert.equal(api.hostname, '127.0.0.1')
  assert.equal(await connects('127.0.0.2', Number(api.port)), true)
  const job = await runJob(base, { urls: [`${origin.url}/img/3.png`] })
  assert.equal(job.status, 'complete')
  const link = await request(job.uploaded.complete[0])
  assert.equal(link.statusCode, 200)
  await link.body.dump()
})
