import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertPartition, startService } from './helpers/service.ts'

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

test('a job of good images becomes Imgur links that open', async (t) => {
  const { app, origin, sandbox, service, status } = await startService(t)
  const urls = [
    `${origin.url}/img/1.png`,
    `${origin.url}/img/2.jpg`,
    `${origin.url}/img/3.gif`,
    `${origin.url}/apng.png`,
  ]
  const response = await app.inject({ method: 'POST', url: '/v1/images/upload', payload: { urls } })
  assert.equal(response.statusCode, 202)
  const { jobId } = response.json()
  assert.match(jobId, UUID_V4)
  assert.equal(response.headers.location, `/v1/images/upload/${jobId}`)
  assert.deepEqual(Object.keys(response.json()), ['jobId'])
  assert.equal(origin.requests, 0, 'nothing is downloaded before the reply')

  const early = await status(jobId)
  assert.ok(['pending', 'in-progress'].includes(early.status))
  assert.deepEqual(early.uploaded, { pending: urls, complete: [], failed: [] })

  await service.queue.onIdle()
  const body = await status(jobId)
  assert.equal(body.id, jobId)
  assert.equal(body.status, 'complete')
  assert.match(body.created, ISO_MS)
  assert.match(body.finished ?? '', ISO_MS)
  assert.ok((body.finished ?? '') >= body.created)
  assert.equal(body.uploaded.complete.length, 4)
  assertPartition(body, urls)
  assert.deepEqual(
    body.items.map((item) => [item.url, item.state, item.link]),
    urls.map((url, i) => [url, 'complete', body.uploaded.complete[i]]),
  )
  assert.deepEqual(
    body.uploaded.complete.map((link) => link.slice(link.lastIndexOf('.'))),
    ['.png', '.jpg', '.gif', '.png'],
  )
  assert.equal(sandbox.urlUploads, 0, 'never an upload by URL')
  // Uploads run concurrently, so Imgur may receive them in any order: compared as sets.
  assert.deepEqual(
    body.items.map((item) => item.deletehash).sort(),
    sandbox.uploads.map((upload) => upload.deletehash).sort(),
  )
  assert.deepEqual(
    sandbox.requests.map((r) => r.authTag),
    urls.map(() => sandbox.authTag('Client-ID configured-client-id')),
  )

  const link = body.uploaded.complete[0] as string
  const served = await fetch(link)
  assert.equal(served.status, 200)
  assert.equal(served.headers.get('content-type'), 'image/png')

  // In upload order, which concurrent uploads may make any order of the job's links.
  const links = await app.inject({ method: 'GET', url: '/v1/images' })
  assert.deepEqual(Object.keys(links.json()), ['uploaded'])
  assert.deepEqual(links.json().uploaded.toSorted(), body.uploaded.complete.toSorted())
})

test('duplicates are stripped by normalised form, keeping the first position', async (t) => {
  const { origin, run } = await startService(t)
  const a = `${origin.url}/img/1.png`
  const body = await run([a, `${origin.url}/img/2.png`, `${a}#again`, a.replace('http://', 'HTTP://')])
  assert.deepEqual(
    body.items.map((item) => item.url),
    [a, `${origin.url}/img/2.png`],
  )
  assert.equal(origin.hits.get('/img/1.png'), 1)
})

test('the same bytes are uploaded once; later items reuse the link without spending quota', async (t) => {
  const { app, origin, sandbox, run } = await startService(t)
  const body = await run([`${origin.url}/same-a.png`, `${origin.url}/same-b.png`])
  assert.equal(sandbox.uploads.length, 1)
  const [first, second] = body.items
  assert.equal(first?.link, second?.link)
  assert.equal([first?.reused, second?.reused].filter(Boolean).length, 1)
  const again = await run([`${origin.url}/same-a.png?later`])
  assert.equal(again.items[0]?.link, first?.link)
  assert.equal(sandbox.uploads.length, 1)
  const links = (await app.inject({ method: 'GET', url: '/v1/images' })).json()
  assert.deepEqual(links, { uploaded: [first?.link] })
})

test('every failure ends its URL in failed with a reason a user can act on', async (t) => {
  const { origin, run, sandbox, logs } = await startService(t, {
    // Conversion and re-encoding off: WebP and oversized images fail as they did before both
    // existed (test/convert/ covers them on).
    env: {
      MAX_IMAGE_BYTES: '100000',
      FETCH_TIMEOUT_MS: '400',
      RETRY_MAX_ATTEMPTS: '2',
      CONVERT_UNSUPPORTED: 'false',
      REENCODE_OVERSIZED: 'false',
    },
  })
  const cases: Array<[path: string, code: string, message: RegExp]> = [
    ['/status/404', 'download_http_status', /origin answered HTTP 404/],
    ['/status/500', 'download_http_status', /origin answered HTTP 500/],
    ['/html-as-png', 'not_an_image', /not an image: looks like HTML/],
    ['/webp.png', 'unsupported_format', /WebP/],
    ['/empty', 'download_empty', /empty/],
    ['/loop', 'download_too_many_redirects', /redirect/],
    ['/redirect/6', 'download_too_many_redirects', /redirect/],
    ['/redirect-scheme', 'download_bad_redirect', /./],
    ['/sized/200000.png', 'download_too_large', /larger than/],
    ['/chunked-big?bytes=200000', 'download_too_large', /larger than/],
    ['/drip', 'download_timeout', /did not finish/],
  ]
  const urls = [`${origin.url}/redirect/5`, ...cases.map(([path]) => `${origin.url}${path}`)]
  const body = await run(urls)
  assert.equal(body.status, 'complete')
  assertPartition(body, urls)
  assert.equal(body.items[0]?.state, 'complete', 'five redirects are followed')
  cases.forEach(([path, code, message], i) => {
    const item = body.items[i + 1]
    assert.equal(item?.state, 'failed', path)
    assert.equal(item?.reason?.code, code, path)
    assert.match(item?.reason?.message ?? '', message, path)
  })
  assert.equal(body.items.find((item) => item.url.endsWith('/status/500'))?.attempts, 2, 'a 5xx is retried')
  assert.equal(body.items.find((item) => item.url.endsWith('/status/404'))?.attempts, 1, 'a 404 is not')
  assert.equal(sandbox.requests.length, 1, 'nothing that failed reached Imgur')
  const failures = logs.map((line) => JSON.parse(line)).filter((line) => line.msg === 'item failed')
  assert.equal(failures.length, cases.length)
  for (const line of failures) {
    assert.equal(line.jobId, body.id)
    assert.ok(line.url && line.code && line.reason && line.attempt >= 1)
  }
})

test("a job's own client id is used for its uploads and never echoed or logged", async (t) => {
  const { app, origin, sandbox, logs, run } = await startService(t, { env: { LOG_LEVEL: 'trace' } })
  const secret = 'dynamic-client-id-1234'
  const body = await run([`${origin.url}/img/7.png`], { clientId: secret })
  assert.equal(body.status, 'complete')
  assert.deepEqual(
    sandbox.requests.map((r) => r.authTag),
    [sandbox.authTag(`Client-ID ${secret}`)],
  )
  const answers = [
    JSON.stringify(body),
    (await app.inject({ method: 'GET', url: '/v1/images' })).body,
    (
      await app.inject({
        method: 'POST',
        url: '/v1/images/upload',
        payload: { urls: ['x'], clientId: secret },
      })
    ).body,
  ]
  for (const text of [...answers, ...logs]) {
    assert.doesNotMatch(text, new RegExp(secret))
    assert.doesNotMatch(text, /configured-client-id/)
  }
  assert.ok(logs.length > 3)
})

test("a refused client id fails the job's items at once, with one request to Imgur", async (t) => {
  const { origin, sandbox, run } = await startService(t, {
    sandbox: { clientIds: ['configured-client-id'] },
    env: { UPLOAD_CONCURRENCY: '1' },
  })
  const urls = Array.from({ length: 10 }, (_, i) => `${origin.url}/img/${i}.png`)
  const body = await run(urls, { clientId: 'not-a-real-id' })
  assert.equal(body.uploaded.failed.length, 10)
  assert.ok(body.items.every((item) => item.reason?.code === 'imgur_client_id_refused'))
  assert.match(body.items[0]?.reason?.message ?? '', /refused the client id/)
  assert.equal(sandbox.requests.length, 1)
})

test('account uploads use a Bearer token from the refresh-token grant', async (t) => {
  const oauth = { clientId: 'app-id', clientSecret: 'app-secret', refreshToken: 'refresh-me' }
  const { origin, sandbox, run, logs } = await startService(t, {
    sandbox: { oauth },
    env: { IMGUR_CLIENT_ID: 'app-id', IMGUR_CLIENT_SECRET: 'app-secret', IMGUR_REFRESH_TOKEN: 'refresh-me' },
  })
  const body = await run([`${origin.url}/img/1.png`, `${origin.url}/img/2.png`])
  assert.equal(body.uploaded.complete.length, 2)
  assert.deepEqual(
    sandbox.requests.map((r) => r.path),
    ['/oauth2/token', '/3/image', '/3/image'],
  )
  assert.ok(sandbox.uploads.every((upload) => upload.auth === 'bearer'))
  for (const line of logs) assert.doesNotMatch(line, /app-secret|refresh-me/)
})

test('a request id is honoured and returned', async (t) => {
  const { app, logs } = await startService(t)
  const given = await app.inject({ method: 'GET', url: '/v1/images', headers: { 'x-request-id': 'abc-123' } })
  assert.equal(given.headers['x-request-id'], 'abc-123')
  const lines = logs.map((line) => JSON.parse(line)).filter((line) => line.reqId === 'abc-123')
  assert.equal(lines.length, 1, 'one log line per request')
  assert.deepEqual(
    [lines[0].msg, lines[0].method, lines[0].url, lines[0].statusCode],
    ['request', 'GET', '/v1/images', 200],
  )
  const made = await app.inject({ method: 'GET', url: '/v1/images' })
  assert.match(String(made.headers['x-request-id']), UUID_V4)
})

test('by default a URL on a private address fails as blocked, and the origin sees no request', async (t) => {
  const { origin, sandbox, run } = await startService(t, { env: { FETCH_ALLOW_PRIVATE_NETWORKS: 'false' } })
  const port = new URL(origin.url).port
  const urls = [
    `${origin.url}/img/1.png`,
    `http://0x7f.1:${port}/img/2.png`,
    `http://[::ffff:127.0.0.1]:${port}/img/3.png`,
  ]
  const body = await run(urls)
  assert.deepEqual(body.uploaded.failed, urls)
  for (const item of body.items) {
    assert.equal(item.reason?.code, 'download_blocked')
    assert.match(item.reason?.message ?? '', /blocked/)
    assert.equal(item.attempts, 1)
  }
  assert.equal(origin.requests, 0)
  assert.equal(sandbox.requests.length, 0)
})
