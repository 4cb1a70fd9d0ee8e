import assert from 'node:assert/strict'
import { request } from 'node:http'
import { test } from 'node:test'
import { createSandbox } from '../../src/sandbox/sandbox.ts'
import { CLIENT, jsonOf, png, start, upload } from './fixtures.ts'

const classic = (status: number, error: unknown, request = '/3/image') => ({
  data: { error, request, method: 'POST' },
  success: false,
  status,
})

const JSON_FAULTS = [
  { fault: 'server-error', status: 500, body: classic(500, 'Internal server error') },
  {
    fault: 'over-capacity',
    status: 403,
    body: classic(403, 'Imgur is temporarily over capacity. Please try again later.'),
  },
  { fault: 'no-image', status: 400, body: classic(400, 'No image data was sent to the upload api') },
  {
    fault: 'file-type-invalid',
    status: 400,
    body: classic(400, {
      code: 1003,
      message: 'File type invalid (1)',
      type: 'ImgurException',
      exception: {},
    }),
  },
  { fault: 'invalid-client-id', status: 403, body: classic(403, 'Invalid client_id') },
  { fault: 'token-invalid', status: 403, body: classic(403, 'The access token provided is invalid.') },
  { fault: 'rate-limited', status: 429, body: classic(429, 'Too Many Requests') },
] as const

for (const { fault, status, body } of JSON_FAULTS) {
  test(`fault ${fault} answers ${status} with Imgur's body`, async (t) => {
    const { sandbox, url } = await start(t)
    sandbox.script(fault)
    const response = await upload(url, png())
    assert.equal(response.status, status)
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/)
    assert.deepEqual(jsonOf(response.text), body)
    assert.equal(response.headers.get('x-ratelimit-clientlimit'), '12500')
    assert.equal(response.headers.get('x-post-rate-limit-limit'), '1250')
    assert.equal(response.headers.get('retry-after'), null)
    assert.deepEqual(sandbox.requests, [
      { method: 'POST', path: '/3/image', status, authTag: sandbox.authTag(CLIENT), fault },
    ])
    assert.equal(sandbox.uploads.length, 0)
    // A fault is consumed once: the next upload is processed normally.
    assert.equal((await upload(url, png())).status, 200)
  })
}

test('rate-limited faults show 0 remaining in every budget header', async (t) => {
  const { sandbox, url } = await start(t)
  sandbox.script('rate-limited', 'rate-limited-errors', 'rate-limited-html')
  for (let index = 0; index < 3; index += 1) {
    const response = await upload(url, png())
    assert.equal(response.status, 429)
    assert.equal(response.headers.get('x-ratelimit-userremaining'), '0')
    assert.equal(response.headers.get('x-ratelimit-clientremaining'), '0')
    assert.equal(response.headers.get('x-post-rate-limit-remaining'), '0')
    assert.equal(response.headers.get('x-ratelimit-clientreset'), '3600')
  }
  assert.deepEqual(
    sandbox.requests.map((r) => r.fault),
    ['rate-limited', 'rate-limited-errors', 'rate-limited-html'],
  )
})

test('rate-limited-errors answers the newer errors array', async (t) => {
  const { sandbox, url } = await start(t)
  sandbox.script('rate-limited-errors')
  const response = await upload(url, png())
  assert.equal(response.status, 429)
  const body = jsonOf(response.text)
  assert.deepEqual(Object.keys(body), ['errors'])
  assert.equal(body.errors.length, 1)
  const [error] = body.errors
  assert.match(error.id, /^legacy-api-/)
  assert.deepEqual(
    { ...error, id: 'x' },
    { id: 'x', code: '429', status: 'Too Many Requests', detail: 'Too Many Requests' },
  )
})

test('rate-limited-html answers an HTML page', async (t) => {
  const { sandbox, url } = await start(t)
  sandbox.script('rate-limited-html')
  const response = await upload(url, png())
  assert.equal(response.status, 429)
  assert.match(response.headers.get('content-type') ?? '', /^text\/html/)
  assert.match(response.text, /^<!DOCTYPE html>/)
  assert.throws(() => JSON.parse(response.text))
})

test('retryAfterSeconds sets Retry-After and the reset headers of a rate-limit fault', async (t) => {
  const { sandbox, url } = await start(t)
  sandbox.script(
    { fault: 'rate-limited', retryAfterSeconds: 7 },
    { fault: 'unavailable-empty', retryAfterSeconds: 3 },
  )
  const limited = await upload(url, png())
  assert.equal(limited.status, 429)
  assert.equal(limited.headers.get('retry-after'), '7')
  assert.equal(limited.headers.get('x-ratelimit-userreset'), '7')
  assert.equal(limited.headers.get('x-ratelimit-clientreset'), '7')
  assert.equal(limited.headers.get('x-post-rate-limit-reset'), '7')
  const unavailable = await upload(url, png())
  assert.equal(unavailable.status, 503)
  assert.equal(unavailable.headers.get('retry-after'), '3')
  assert.equal(unavailable.headers.get('x-ratelimit-clientreset'), '3600')
})

test('unavailable-html answers a 503 first-byte-timeout page', async (t) => {
  const { sandbox, url } = await start(t)
  sandbox.script('unavailable-html')
  const response = await upload(url, png(), { path: '/3/upload' })
  assert.equal(response.status, 503)
  assert.match(response.headers.get('content-type') ?? '', /^text\/html/)
  assert.match(response.text, /first byte timeout/)
  assert.ok(response.headers.get('x-ratelimit-userlimit'))
})

test('unavailable-empty answers a 503 with an empty body', async (t) => {
  const { sandbox, url } = await start(t)
  sandbox.script('unavailable-empty')
  const response = await upload(url, png())
  assert.equal(response.status, 503)
  assert.equal(response.text, '')
  assert.equal(response.headers.get('content-length'), '0')
  assert.equal(response.headers.get('content-type'), null)
})

test('forbidden-cdn answers the short body with CDN-Error: yes', async (t) => {
  const { sandbox, url } = await start(t)
  sandbox.script('forbidden-cdn')
  const response = await upload(url, png())
  assert.equal(response.status, 400)
  assert.equal(response.headers.get('cdn-error'), 'yes')
  assert.deepEqual(jsonOf(response.text), {
    data: { error: 'These actions are forbidden.' },
    success: false,
    status: 400,
  })
})

test('too-large answers 413 with the legacy-api object', async (t) => {
  const { sandbox, url } = await start(t)
  sandbox.script('too-large')
  const response = await upload(url, png())
  assert.equal(response.status, 413)
  const body = jsonOf(response.text)
  assert.deepEqual(Object.keys(body), ['id', 'code', 'detail', 'status'])
  assert.equal(body.code, 413)
  assert.equal(body.detail, 'file is over the size limit')
  assert.equal(body.status, 'Request Entity Too Large')
})

test('reset destroys the connection while the body is still arriving', async (t) => {
  const { sandbox, url } = await start(t)
  sandbox.script('reset')
  const { port } = new URL(url)
  const error = await new Promise<NodeJS.ErrnoException>((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/3/image',
      headers: { Authorization: CLIENT, 'Content-Type': 'image/png', 'Content-Length': '1000000' },
    })
    req.on('response', () => reject(new Error('expected no response')))
    req.on('error', resolve)
    // Only the first part of the body is ever sent: the request cannot have completed.
    req.write(Buffer.alloc(1000))
  })
  assert.ok(['ECONNRESET', 'EPIPE'].includes(error.code ?? ''), `${error.code}: ${error.message}`)
  assert.deepEqual(sandbox.requests, [
    { method: 'POST', path: '/3/image', status: 0, authTag: sandbox.authTag(CLIENT), fault: 'reset' },
  ])
  assert.equal(sandbox.uploads.length, 0)
  assert.equal((await upload(url, png())).status, 200)
})

test('reset also fails a complete fetch upload with a socket error', async (t) => {
  const { sandbox, url } = await start(t)
  sandbox.script('reset')
  await assert.rejects(
    fetch(`${url}/3/upload`, {
      method: 'POST',
      body: png(),
      headers: { Authorization: CLIENT, 'Content-Type': 'image/png' },
    }),
    (error: Error) => error instanceof TypeError && error.cause instanceof Error,
  )
})

test('scripted faults are consumed in order, one per upload, and only by uploads', async (t) => {
  const { sandbox, url } = await start(t)
  sandbox.script('server-error', { fault: 'over-capacity' }, 'no-image')
  const credits = await fetch(`${url}/3/credits`, { headers: { Authorization: CLIENT } })
  assert.equal(credits.status, 200)
  const statuses = []
  for (let index = 0; index < 4; index += 1) statuses.push((await upload(url, png())).status)
  assert.deepEqual(statuses, [500, 403, 400, 200])
  assert.deepEqual(
    sandbox.requests.map((r) => r.fault ?? null),
    [null, 'server-error', 'over-capacity', 'no-image', null],
  )
})

test('an unknown fault name is refused', () => {
  const sandbox = createSandbox()
  assert.throws(
    () => sandbox.script('explode' as never),
    /Expected a fault, one of server-error, .*got `explode`/,
  )
})

test('errorRate answers random retryable faults chosen by the injected random', async (t) => {
  const draws = [0.1, 0.0, 0.1, 0.5, 0.1, 0.9, 0.95]
  const random = () => draws.shift() ?? 0.5
  const { sandbox, url } = await start(t, { errorRate: 0.5, random })
  const answers = []
  for (let index = 0; index < 3; index += 1) {
    const response = await upload(url, png())
    answers.push([response.status, response.headers.get('content-type')])
  }
  assert.deepEqual(answers, [
    [500, 'application/json'],
    [503, 'text/html; charset=utf-8'],
    [503, null],
  ])
  assert.deepEqual(
    sandbox.requests.map((r) => r.fault),
    ['server-error', 'unavailable-html', 'unavailable-empty'],
  )
  // 0.95 >= errorRate: no fault; the upload succeeds.
  assert.equal((await upload(url, png())).status, 200)
})

test('latencyMs delays every upload answer', async (t) => {
  const { url } = await start(t, { latencyMs: 120 })
  const started = performance.now()
  const response = await upload(url, png())
  assert.equal(response.status, 200)
  assert.ok(performance.now() - started >= 110)
})

test('close() ends connections and pending latency waits at once', async () => {
  const sandbox = createSandbox({ latencyMs: 60_000 })
  const url = await sandbox.listen()
  const req = request(`${url}/3/image`, {
    method: 'POST',
    agent: false,
    headers: { Authorization: CLIENT, 'Content-Type': 'image/png' },
  })
  const pending = new Promise((resolve, reject) => {
    req.on('response', resolve)
    req.on('error', reject)
  })
  await new Promise<void>((resolve) => req.end(png(), resolve))
  // An ordering barrier, not a sleep: a later connection answered means the upload was read first.
  assert.equal((await fetch(`${url}/3/credits`, { headers: { Authorization: CLIENT } })).status, 200)
  const started = performance.now()
  await sandbox.close()
  await assert.rejects(pending, /socket hang up|ECONNRESET/)
  assert.ok(performance.now() - started < 5000)
  assert.deepEqual(
    sandbox.requests.map((r) => r.path),
    ['/3/credits'],
  )
})
