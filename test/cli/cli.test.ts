/** The command line end to end: the real bin spawned with Node 24 against the app on a real port. */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createProgress } from '../../src/cli/output.ts'
import type { StatusDocument } from '../../src/http/schemas.ts'
import { startService } from '../helpers/service.ts'

const BIN = fileURLToPath(new URL('../../bin/imgur-upload.ts', import.meta.url))

type Run = { code: number | null; stdout: string; stderr: string }

async function cli(
  args: string[],
  options: { input?: string; env?: Record<string, string> } = {},
): Promise<Run> {
  const env = { ...process.env, IMGUR_UPLOAD_SERVER: '', IMGUR_UPLOAD_API_KEY: '', ...options.env }
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: 'pipe' })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => {
    stdout += chunk
  })
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  child.stdin.end(options.input ?? '')
  const [code] = await once(child, 'close')
  return { code, stdout, stderr }
}

async function listening(t: import('node:test').TestContext, options = {}) {
  const h = await startService(t, options)
  const server = await h.app.listen({ port: 0, host: '127.0.0.1' })
  return { ...h, server }
}

test('uploads URLs given as arguments and reports each link or reason (exit 1 when some failed)', async (t) => {
  const h = await listening(t)
  const o = h.origin.url
  const urls = [
    `${o}/img/1.png`,
    `${o}/status/404`,
    `${o}/img/2.jpg`,
    `${o}/img/1.png#dup`,
    `${o}/html-as-png`,
  ]
  const run = await cli(['--server', h.server, ...urls])
  assert.equal(run.code, 1, run.stderr)

  const { uploaded } = (await h.app.inject('/v1/images')).json<{ uploaded: string[] }>()
  assert.equal(uploaded.length, 2)
  const lines = run.stdout.trimEnd().split('\n')
  assert.equal(lines.length, 4, 'the duplicate is reported once')
  assert.match(lines[0] ?? '', new RegExp(`^uploaded ${o}/img/1\\.png -> ${uploaded[0] ?? '?'}$`))
  assert.equal(lines[1], `failed   ${o}/status/404: origin answered HTTP 404 (download_http_status)`)
  assert.match(lines[2] ?? '', /^uploaded .*\/img\/2\.jpg -> http/)
  assert.match(lines[3] ?? '', /^failed {3}.*\/html-as-png: not an image: looks like HTML \(\w+\)$/)

  // Not a terminal: plain progress lines, no carriage returns, and a summary on stderr.
  const output = run.stderr + run.stdout
  assert.ok(!output.includes('\r') && !output.includes('\u001b'), 'no terminal control characters')
  assert.match(run.stderr, /^job [0-9a-f-]{36} submitted to http:\/\/127\.0\.0\.1:\d+$/m)
  assert.match(run.stderr, /^progress: 4\/4 done, 2 uploaded, 2 failed$/m)
  assert.match(run.stderr, /^2 uploaded, 2 failed; 1 duplicate URL was sent once$/m)
})

test('reads URLs from a file and from stdin, takes the server from the environment, prints JSON (exit 0)', async (t) => {
  const h = await listening(t)
  const o = h.origin.url
  const file = join(tmpdir(), `imgur-upload-cli-${process.pid}.txt`)
  t.after(() => rm(file, { force: true }))
  await writeFile(file, `# my images\n\n  ${o}/img/10.png  \r\n${o}/img/11.gif\n`)

  const fromFile = await cli(['--file', file], { env: { IMGUR_UPLOAD_SERVER: h.server } })
  assert.equal(fromFile.code, 0, fromFile.stderr)
  assert.match(
    fromFile.stdout,
    new RegExp(`^uploaded ${o}/img/10\\.png -> http\\S+\\nuploaded ${o}/img/11\\.gif -> http\\S+\\n$`),
  )

  const fromStdin = await cli(['-s', h.server, '--json', '-'], { input: `${o}/img/12.bmp\n# done\n` })
  assert.equal(fromStdin.code, 0, fromStdin.stderr)
  const status = JSON.parse(fromStdin.stdout) as StatusDocument
  assert.equal(status.status, 'complete')
  assert.deepEqual(
    status.items.map((item) => [item.url, item.state]),
    [[`${o}/img/12.bmp`, 'complete']],
  )
  const { uploaded } = (await h.app.inject('/v1/images')).json<{ uploaded: string[] }>()
  assert.equal(uploaded.at(-1), status.uploaded.complete[0])
})

test('passes --client-id through: a refused client id fails the items with that reason', async (t) => {
  const h = await listening(t, { sandbox: { clientIds: ['configured-client-id'] } })
  const run = await cli(['-s', h.server, '--client-id', 'not-a-real-id', `${h.origin.url}/img/20.png`])
  assert.equal(run.code, 1, run.stderr)
  assert.match(run.stdout, /^failed {3}\S+: .*client id.*$/im)
  assert.equal(h.sandbox.requests.at(-1)?.authTag, h.sandbox.authTag('Client-ID not-a-real-id'))
})

test('exit 2: usage errors, a 400 from the API with its message, an unreachable service', async (t) => {
  const h = await listening(t)
  const help = await cli(['--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /^Usage: imgur-upload/)

  for (const args of [
    [],
    ['--bogus', 'http://x/a.png'],
    ['--server', 'ftp://x', 'http://x/a.png'],
    ['-f', '/nonexistent/urls.txt'],
  ]) {
    const run = await cli(args)
    assert.equal(run.code, 2, `${args}: ${run.stderr}`)
    assert.match(run.stderr, /^imgur-upload: .+\nRun imgur-upload --help for usage\.\n$/)
  }

  const refused = await cli(['-s', h.server, 'ftp://example.com/a.png', `${h.origin.url}/img/1.png`])
  assert.equal(refused.code, 2)
  assert.equal(refused.stdout, '')
  assert.match(
    refused.stderr,
    /refused the job \(HTTP 400 invalid_urls\): 1 of the submitted URLs is invalid/,
  )
  assert.match(refused.stderr, /ftp:\/\/example\.com\/a\.png: scheme ftp: is not allowed/)

  const closed = createServer().listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const { port } = closed.address() as AddressInfo
  closed.close()
  const unreachable = await cli(['-s', `http://127.0.0.1:${port}`, 'http://example.com/a.png'])
  assert.equal(unreachable.code, 2)
  assert.match(
    unreachable.stderr,
    new RegExp(`cannot reach the service at http://127.0.0.1:${port}: ECONNREFUSED`),
  )
})

test('falls back to polling when the service has no event stream', async (t) => {
  const id = '6f1c2a54-0d7e-4b8e-9a51-0c3f2b1d9e77'
  const view = (done: boolean): StatusDocument => ({
    id,
    created: '2026-11-27T10:00:00.000Z',
    finished: done ? '2026-11-27T10:00:01.000Z' : null,
    status: done ? 'complete' : 'in-progress',
    uploaded: {
      pending: done ? [] : ['http://x/a.png'],
      complete: [],
      failed: done ? ['http://x/a.png'] : [],
    },
    items: [
      done
        ? { url: 'http://x/a.png', state: 'failed', attempts: 1, reason: { code: 'x', message: 'gone' } }
        : { url: 'http://x/a.png', state: 'pending', attempts: 1 },
    ],
  })
  let polls = 0
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    if (req.method === 'POST') res.writeHead(202).end(JSON.stringify({ jobId: id }))
    else if (req.url?.endsWith('/events'))
      res.writeHead(404).end('{"error":"not_found","message":"no route"}')
    else res.end(JSON.stringify(view(++polls > 1)))
  }).listen(0, '127.0.0.1')
  t.after(() => server.close())
  await once(server, 'listening')
  const run = await cli([
    '-s',
    `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    'http://x/a.png',
  ])
  assert.equal(run.code, 1, run.stderr)
  assert.equal(run.stdout, 'failed   http://x/a.png: gone (x)\n')
  assert.equal(polls, 2)
})

test('on a terminal the progress bar is redrawn in place', () => {
  let written = ''
  const progress = createProgress({ isTTY: true, columns: 80, write: (text: string) => (written += text) })
  const status = (done: number) =>
    ({
      status: done === 2 ? 'complete' : 'in-progress',
      uploaded: { pending: [], complete: Array(done).fill('l'), failed: [] },
      items: [{}, {}],
    }) as unknown as StatusDocument
  progress.update(status(1))
  progress.update(status(1))
  progress.update(status(2))
  progress.end()
  assert.equal(
    written,
    `\r[${'#'.repeat(15)}${'-'.repeat(15)}] 1/2 done, 1 uploaded, 0 failed\x1b[K` +
      `\r[${'#'.repeat(30)}] 2/2 done, 2 uploaded, 0 failed\x1b[K\n`,
  )
})

test('keygen prints a new key and its API_KEYS entry, which the service then accepts', async (t) => {
  const generated = await cli(['keygen', 'ci-runner'])
  assert.equal(generated.code, 0, generated.stderr)
  const match = generated.stdout.match(
    /^IMGUR_UPLOAD_API_KEY=(iuk_[\w-]{43})\nAPI_KEYS=(ci-runner:[0-9a-f]{64})\n$/,
  )
  assert.ok(match, generated.stdout)
  const [, key = '', entry = ''] = match
  assert.equal(Buffer.from(key.slice('iuk_'.length), 'base64url').length, 32, '32 random bytes')
  assert.match(generated.stderr, /add the entry to API_KEYS/)
  const other = await cli(['keygen'])
  assert.match(other.stdout, /^IMGUR_UPLOAD_API_KEY=iuk_[\w-]{43}\nAPI_KEYS=default:[0-9a-f]{64}\n$/)
  assert.ok(!other.stdout.includes(key), 'every key is new')

  const h = await listening(t, { env: { API_KEYS: entry } })
  const url = `${h.origin.url}/img/30.png`
  const withFlag = await cli(['-s', h.server, '--api-key', key, url])
  assert.equal(withFlag.code, 0, withFlag.stderr)
  assert.match(withFlag.stdout, /^uploaded \S+ -> http/)
  const fromEnv = await cli(['-s', h.server, url], { env: { IMGUR_UPLOAD_API_KEY: key } })
  assert.equal(fromEnv.code, 0, fromEnv.stderr)
  const owned = (
    await h.app.inject({ url: '/v1/images', headers: { authorization: `Bearer ${key}` } })
  ).json<{
    uploaded: string[]
  }>()
  assert.equal(owned.uploaded.length, 1, 'both jobs belong to the key; the same bytes were uploaded once')

  const none = await cli(['-s', h.server, url])
  assert.equal(none.code, 2)
  assert.equal(
    none.stderr,
    'imgur-upload: the service needs an API key: pass --api-key or set IMGUR_UPLOAD_API_KEY\n',
  )
  const wrong = await cli(['-s', h.server, '--api-key', `${key.slice(1)}x`, url])
  assert.equal(wrong.code, 2)
  assert.equal(
    wrong.stderr,
    'imgur-upload: the service refused the API key (HTTP 401): the API key is not valid\n',
  )
})

test('exit 2: a bad key name or extra arguments to keygen, a key with spaces, a 429 with its reset time', async (t) => {
  for (const args of [
    ['keygen', 'no spaces'],
    ['keygen', 'a', 'b'],
    ['keygen', '--json'],
    ['keygen', 'x'.repeat(65)],
  ]) {
    const run = await cli(args)
    assert.equal(run.code, 2, `${args}: ${run.stderr}`)
    assert.equal(run.stdout, '')
    assert.match(
      run.stderr,
      /^imgur-upload: (keygen takes|a key name is) .+\nRun imgur-upload --help for usage\.\n$/,
    )
  }
  const spaced = await cli(['-s', 'http://127.0.0.1:9', '--api-key', 'two words', 'http://x/a.png'])
  assert.equal(spaced.code, 2)
  assert.match(spaced.stderr, /--api-key must be visible ASCII/)

  // A stopped clock: both submissions fall in the same minute whatever the machine's speed.
  const h = await listening(t, {
    env: { SUBMIT_RATE_LIMIT: '1' },
    now: () => Date.parse('2026-11-27T10:00:30Z'),
  })
  assert.equal((await cli(['-s', h.server, `${h.origin.url}/img/31.png`])).code, 0)
  const limited = await cli(['-s', h.server, `${h.origin.url}/img/32.png`])
  assert.equal(limited.code, 2)
  assert.match(
    limited.stderr,
    /refused the job \(HTTP 429 submit_rate_limited\): 1 submissions per minute are allowed .*submit again after 2026-11-27T10:01:00\.000Z\n$/,
  )
})
