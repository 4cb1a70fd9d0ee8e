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
import { type StatusBody, startService } from '../helpers/service.ts'

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
  // Each URL's own link (the list of links is in upload order, which concurrent uploads may make any order).
  const jobId = /^job ([0-9a-f-]{36}) submitted/m.exec(run.stderr)?.[1]
  const job = (await h.app.inject(`/v1/images/upload/${jobId}`)).json<StatusBody>()
  assert.deepEqual([job.items[0]?.link, job.items[2]?.link].toSorted(), uploaded.toSorted())
  assert.equal(lines[0], `uploaded ${o}/img/1.png -> ${job.items[0]?.link}`)
  assert.equal(lines[1], `failed   ${o}/status/404: origin answered HTTP 404 (download_http_status)`)
  assert.equal(lines[2], `uploaded ${o}/img/2.jpg -> ${job.items[2]?.link}`)
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

type Seen = { method: string; url: string; headers: import('node:http').IncomingHttpHeaders; body: string }

/**
 * A stand-in for the service on port 0 that answers per the API contract, for what the service in
 * this branch does not do yet (albums, cancel); it records every request it reads.
 */
async function fakeService(
  t: import('node:test').TestContext,
  answer: (seen: Seen, res: import('node:http').ServerResponse, index: number) => void,
) {
  const seen: Seen[] = []
  const server = createServer(async (req, res) => {
    let body = ''
    for await (const chunk of req) body += chunk
    const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body }
    seen.push(request)
    answer(request, res, seen.length - 1)
  }).listen(0, '127.0.0.1')
  t.after(() => server.close())
  await once(server, 'listening')
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

const JOB_ID = '0b6c2f4e-8a31-4d59-b7e2-5f1a9c3d7e60'

/** A status document with one item per entry: a link (uploaded), a reason code (failed) or null (pending). */
function statusOf(
  items: Array<[string, string | null]>,
  extra: Partial<StatusDocument> = {},
): StatusDocument {
  const views = items.map(([url, outcome]): StatusDocument['items'][number] => {
    if (outcome === null) return { url, state: 'pending', attempts: 0 }
    if (outcome.startsWith('https://'))
      return { url, state: 'complete', attempts: 1, link: outcome, deletehash: 'dh' }
    const message = outcome === 'cancelled' ? 'the job was cancelled' : 'origin answered HTTP 404'
    return { url, state: 'failed', attempts: 1, reason: { code: outcome, message } }
  })
  const pending = views.filter((item) => item.state === 'pending')
  const status =
    pending.length === 0 && extra.album?.state !== 'pending' ? 'complete' : ('in-progress' as const)
  return {
    id: JOB_ID,
    created: '2026-11-27T10:00:00.000Z',
    finished: status === 'complete' ? '2026-11-27T10:00:02.000Z' : null,
    status,
    uploaded: {
      pending: pending.map((item) => item.url),
      complete: views.flatMap((item) => (item.link === undefined ? [] : [item.link])),
      failed: views.filter((item) => item.state === 'failed').map((item) => item.url),
    },
    items: views,
    ...extra,
  }
}

function sendEvents(res: import('node:http').ServerResponse, ...statuses: StatusDocument[]) {
  res.writeHead(200, { 'content-type': 'text/event-stream' })
  res.end(statuses.map((status) => `event: status\ndata: ${JSON.stringify(status)}\n\n`).join(''))
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

test('--webhook-url reaches the service, which reports the delivery; the report says how it went', async (t) => {
  // A port nothing listens on: a delivery there fails at once, wherever the service tries it.
  const closed = createServer().listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const hook = `https://127.0.0.1:${(closed.address() as AddressInfo).port}/hook?token=secret`
  closed.close()
  const h = await listening(t, {
    env: {
      WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}`,
      WEBHOOK_RETRY_DELAYS_MS: '60000',
    },
  })
  const run = await cli(['-s', h.server, '--webhook-url', hook, `${h.origin.url}/img/40.png`])
  assert.equal(run.code, 0, run.stderr)
  const jobId = run.stderr.match(/^job (\S+) submitted/m)?.[1] ?? ''
  assert.equal((await h.service.store.get(jobId))?.webhook?.url, hook)
  const lines = run.stdout.split('\n')
  assert.match(lines[0] ?? '', /^uploaded \S+\/img\/40\.png -> http/)
  assert.match(
    lines[1] ?? '',
    /^webhook {2}(delivered \(1 attempt\)|failed after \d+ attempts?|pending \(not tried yet\)|pending, the service retries \(\d+ attempts? so far.*\))$/,
  )
  assert.ok(!run.stdout.includes('token=secret'), 'the webhook URL is never shown')
  // The status route shows the same state (never the URL).
  const { webhook } = await h.status(jobId)
  assert.ok(webhook !== undefined && !JSON.stringify(webhook).includes('token'))
})

test('albums, Idempotency-Key and the retry of a dropped submission, against a contract fake', async (t) => {
  const urls = ['http://x/a.png', 'http://x/b.png']
  const settled = statusOf(
    [
      [urls[0] ?? '', 'https://i.imgur.com/a.png'],
      [urls[1] ?? '', 'https://i.imgur.com/b.png'],
    ],
    { album: { state: 'pending' } },
  )
  let albumOutcome: NonNullable<StatusDocument['album']> = {
    state: 'complete',
    link: 'https://imgur.com/a/Alb1',
    id: 'Alb1',
    deletehash: 'adh',
  }
  const fake = await fakeService(t, (seen, res, index) => {
    // The first submission's connection drops before any answer: the CLI sends it once more.
    if (seen.method === 'POST' && index === 0) return res.socket?.destroy()
    if (seen.method === 'POST') return res.writeHead(202).end(JSON.stringify({ jobId: JOB_ID }))
    sendEvents(res, settled, { ...settled, status: 'complete', album: albumOutcome })
  })

  const run = await cli([
    '-s',
    fake.url,
    '--album-title',
    'Holiday 2026 – día 1',
    '--album-description',
    'the beach',
    ...urls,
  ])
  assert.equal(run.code, 0, run.stderr)
  assert.equal(
    run.stdout,
    'uploaded http://x/a.png -> https://i.imgur.com/a.png\n' +
      'uploaded http://x/b.png -> https://i.imgur.com/b.png\n' +
      'album    https://imgur.com/a/Alb1\n',
  )
  const posts = fake.seen.filter((seen) => seen.method === 'POST')
  assert.equal(posts.length, 2, 'one retry after the dropped connection')
  const [first, retry] = posts
  assert.match(String(first?.headers['idempotency-key']), UUID)
  assert.equal(
    retry?.headers['idempotency-key'],
    first?.headers['idempotency-key'],
    'the retry reuses the key',
  )
  for (const post of posts) {
    assert.equal(post.url, '/v1/images/upload')
    assert.deepEqual(JSON.parse(post.body), {
      urls,
      album: { title: 'Holiday 2026 – día 1', description: 'the beach' },
    })
  }

  // A failed album fails the run (exit 1) with its reason; every invocation has a new key.
  albumOutcome = { state: 'failed', reason: { code: 'album_failed', message: 'Imgur answered HTTP 500' } }
  const failed = await cli(['-s', fake.url, '--album-title', 'x', '--json', ...urls])
  assert.equal(failed.code, 1, failed.stderr)
  assert.deepEqual(JSON.parse(failed.stdout).album, albumOutcome)
  const again = fake.seen.filter((seen) => seen.method === 'POST')[2]
  assert.deepEqual(JSON.parse(again?.body ?? ''), { urls, album: { title: 'x' } })
  assert.match(String(again?.headers['idempotency-key']), UUID)
  assert.notEqual(again?.headers['idempotency-key'], first?.headers['idempotency-key'])
  const text = await cli(['-s', fake.url, '--album-description', 'no title', ...urls])
  assert.equal(text.code, 1)
  assert.match(text.stdout, /\nalbum {4}failed: Imgur answered HTTP 500 \(album_failed\)\n$/)
  assert.deepEqual(JSON.parse(fake.seen.filter((seen) => seen.method === 'POST')[3]?.body ?? '').album, {
    description: 'no title',
  })

  // Without the new options the body is as before: no album, no webhookUrl.
  const plain = await cli(['-s', fake.url, ...urls])
  assert.deepEqual(JSON.parse(fake.seen.filter((seen) => seen.method === 'POST')[4]?.body ?? ''), { urls })
  assert.match(String(fake.seen.at(-2)?.headers['idempotency-key']), UUID)
  assert.equal(plain.code, 1, 'the fake still answers with a failed album')
})

test('a submission whose connection drops twice is reported as a connection error (exit 2)', async (t) => {
  const fake = await fakeService(t, (_seen, res) => res.socket?.destroy())
  const run = await cli(['-s', fake.url, 'http://x/a.png'])
  assert.equal(run.code, 2)
  assert.match(run.stderr, /^imgur-upload: cannot reach the service at http:\/\/127\.0\.0\.1:\d+: \S+\n$/)
  assert.equal(fake.seen.length, 2)
  assert.equal(fake.seen[0]?.headers['idempotency-key'], fake.seen[1]?.headers['idempotency-key'])
})

test('cancel <jobId> posts the cancel route and reports the final status; --json prints it', async (t) => {
  const urls = ['http://x/a.png', 'http://x/b.png', 'http://x/c.png']
  const cancelled = statusOf([
    [urls[0] ?? '', 'https://i.imgur.com/a.png'],
    [urls[1] ?? '', 'cancelled'],
    [urls[2] ?? '', 'cancelled'],
  ])
  const withAlbum = { album: { state: 'complete' as const, link: 'https://imgur.com/a/Cut1', id: 'Cut1' } }
  const fake = await fakeService(t, (seen, res) => {
    res.setHeader('content-type', 'application/json')
    if (seen.url === `/v1/images/upload/${JOB_ID}/cancel`) return res.end(JSON.stringify(cancelled))
    // The album of what was uploaded is still being made: the CLI follows the job to its end.
    if (seen.url === '/v1/images/upload/with-album/cancel')
      return res.end(JSON.stringify({ ...cancelled, status: 'in-progress', album: { state: 'pending' } }))
    if (seen.url === '/v1/images/upload/with-album/events')
      return sendEvents(res, { ...cancelled, ...withAlbum })
    if (seen.url === '/v1/images/upload/failed/cancel')
      return res.end(JSON.stringify(statusOf([[urls[0] ?? '', 'download_http_status']])))
    res.writeHead(404).end(JSON.stringify({ error: 'job_not_found', message: 'no job with id x' }))
  })

  const run = await cli(['cancel', JOB_ID, '--api-key', 'iuk_key'], {
    env: { IMGUR_UPLOAD_SERVER: fake.url },
  })
  assert.equal(run.code, 0, run.stderr)
  assert.equal(
    run.stdout,
    'uploaded http://x/a.png -> https://i.imgur.com/a.png\n' +
      'failed   http://x/b.png: the job was cancelled (cancelled)\n' +
      'failed   http://x/c.png: the job was cancelled (cancelled)\n',
  )
  assert.equal(run.stderr, `job ${JOB_ID} cancelled: 1 uploaded, 2 cancelled, 0 failed\n`)
  const [post] = fake.seen
  assert.equal(post?.method, 'POST')
  assert.equal(post?.url, `/v1/images/upload/${JOB_ID}/cancel`)
  assert.equal(post?.headers.authorization, 'Bearer iuk_key')
  assert.equal(post?.body, '', 'the cancel carries no body')

  const json = await cli(['cancel', '--json', '-s', fake.url, JOB_ID])
  assert.equal(json.code, 0, json.stderr)
  assert.deepEqual(JSON.parse(json.stdout), cancelled)
  assert.equal(fake.seen.at(-1)?.headers.authorization, undefined)

  const album = await cli(['cancel', '-s', fake.url, 'with-album'])
  assert.equal(album.code, 0, album.stderr)
  assert.match(album.stdout, /\(cancelled\)\nalbum {4}https:\/\/imgur\.com\/a\/Cut1\n$/)

  // Nothing was left to cancel, and an item had failed on its own: exit 1, as for an upload.
  const failed = await cli(['cancel', '-s', fake.url, 'failed'])
  assert.equal(failed.code, 1)
  assert.equal(failed.stderr, `job ${JOB_ID} had nothing left to cancel: 0 uploaded, 0 cancelled, 1 failed\n`)

  const unknown = await cli(['cancel', '-s', fake.url, 'no-such-job'])
  assert.equal(unknown.code, 2)
  assert.equal(unknown.stdout, '')
  assert.equal(unknown.stderr, 'imgur-upload: the service knows no job no-such-job\n')
})

test('exit 2: misused album, webhook and cancel options', async () => {
  for (const [args, message] of [
    [['--album-title', '', 'http://x/a.png'], '--album-title must be 1 to 255 characters, got 0'],
    [
      ['--album-title', 'é'.repeat(256), 'http://x/a.png'],
      '--album-title must be 1 to 255 characters, got 256',
    ],
    [['--album-description', '', 'http://x/a.png'], '--album-description must be 1 to 2048 characters'],
    [['--webhook-url', 'ftp://x/hook', 'http://x/a.png'], '--webhook-url must be an http(s) URL'],
    [['--webhook-url', 'not a url', 'http://x/a.png'], '--webhook-url must be an http(s) URL'],
    [['cancel'], 'cancel takes one job id'],
    [['cancel', 'a', 'b'], 'cancel takes one job id'],
    [
      ['cancel', '--album-title', 't', JOB_ID],
      'cancel takes --server, --api-key and --json, not --album-title',
    ],
    [['cancel', '-f', 'urls.txt', JOB_ID], 'cancel takes --server, --api-key and --json, not --file'],
    [['cancel', '-s', 'ftp://x', JOB_ID], '--server must be an http(s) URL'],
  ] as const) {
    const run = await cli([...args])
    assert.equal(run.code, 2, `${args}: ${run.stderr}`)
    assert.equal(run.stdout, '')
    assert.ok(run.stderr.startsWith(`imgur-upload: ${message}`), run.stderr)
    assert.match(run.stderr, /\nRun imgur-upload --help for usage\.\n$/)
  }
  const help = await cli(['--help'])
  for (const option of ['--album-title', '--album-description', '--webhook-url', 'cancel <jobId>'])
    assert.ok(help.stdout.includes(option), option)
})
