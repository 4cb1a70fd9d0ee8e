import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { createImgurClient } from '../../src/imgur/client.ts'
import { REFUSAL_COOL_DOWN_MS } from '../../src/imgur/token.ts'
import { retryDelay } from '../../src/jobs/retry.ts'
import { classic, type FakeImgur, json, type Reply, startFakeImgur, success } from './fake-imgur.ts'

const ACCOUNT = {
  clientId: 'acct0client0id',
  clientSecret: 'acct0secret0value',
  refreshToken: 'refresh0token0value',
}
const input = { bytes: new Uint8Array([0xff, 0xd8, 0xff]), mime: 'image/jpeg', filename: 'a.jpg' }
const INVALID = 'The access token provided is invalid.'

const open: Array<{ close(): Promise<void> }> = []
after(() => Promise.all(open.map((thing) => thing.close())))

type Request = FakeImgur['seen'][number]
/** Issues access-0, access-1, … per refresh; `upload` answers the uploads. */
async function setup(
  upload: (request: Request) => Reply,
  token?: (request: Request) => Reply | Promise<Reply>,
) {
  let issued = 0
  const clock = { now: 1_700_000_000_000 }
  const imgur = await startFakeImgur((request) => {
    if (request.path !== '/oauth2/token') return upload(request)
    if (token) return token(request)
    return json(200, {
      access_token: `access-${issued++}`,
      expires_in: 3600,
      token_type: 'bearer',
      refresh_token: ACCOUNT.refreshToken,
    })
  })
  const client = createImgurClient({
    apiUrl: imgur.url,
    ...ACCOUNT,
    timeoutMs: 2000,
    userAgent: 't',
    now: () => clock.now,
  })
  open.push(imgur, client)
  const count = (path: string) => imgur.seen.filter((request) => request.path === path).length
  return { imgur, client, clock, count }
}

test('concurrent account uploads share one refresh and send its Bearer token', async () => {
  const { imgur, client, count } = await setup(() => success())
  await Promise.all([1, 2, 3, 4, 5].map(() => client.upload(input)))
  assert.equal(count('/oauth2/token'), 1)
  const uploads = imgur.seen.filter((request) => request.path === '/3/image')
  assert.deepEqual(
    uploads.map((request) => request.headers.authorization),
    Array(5).fill('Bearer access-0'),
  )
  const refresh = imgur.seen.find((request) => request.path === '/oauth2/token')
  assert.deepEqual(JSON.parse(String(refresh?.body)), {
    grant_type: 'refresh_token',
    client_id: ACCOUNT.clientId,
    client_secret: ACCOUNT.clientSecret,
    refresh_token: ACCOUNT.refreshToken,
  })
  assert.match(client.credentialKey(), /^account:[0-9a-f]{12}$/)
})

test('the token is cached until shortly before it expires', async () => {
  const { imgur, client, clock, count } = await setup(() => success())
  await client.upload(input)
  clock.now += 3_000_000 // 50 min of a 60 min token: still cached
  await client.upload(input)
  assert.equal(count('/oauth2/token'), 1)
  clock.now += 300_000 // 55 min: inside the early-refresh margin
  await client.upload(input)
  assert.equal(count('/oauth2/token'), 2)
  assert.equal(imgur.seen.at(-1)?.headers.authorization, 'Bearer access-1')
})

test("a job's own client id uploads anonymously even when an account is configured", async () => {
  const { imgur, client, count } = await setup(() => success())
  await client.upload({ ...input, clientId: 'job0client0id' })
  assert.equal(count('/oauth2/token'), 0)
  assert.equal(imgur.seen[0]?.headers.authorization, 'Client-ID job0client0id')
})

test('a 403 invalid token refreshes once and retries the upload once', async () => {
  const { imgur, client, count } = await setup((request) =>
    request.headers.authorization === 'Bearer access-0' ? classic(403, INVALID) : success(),
  )
  const uploaded = await client.upload(input)
  assert.equal(uploaded.id, 'AbC1234')
  assert.equal(count('/oauth2/token'), 2)
  assert.deepEqual(
    imgur.seen
      .filter((request) => request.path === '/3/image')
      .map((request) => request.headers.authorization),
    ['Bearer access-0', 'Bearer access-1'],
  )
})

test('a token refused again after the refresh fails as imgur_auth without leaking it', async () => {
  const { client, count } = await setup(() => classic(403, INVALID))
  const error = (await client.upload(input).catch((caught: unknown) => caught)) as Error & {
    code: string
    retryable: boolean
  }
  assert.deepEqual([error.code, error.retryable], ['imgur_auth', false])
  assert.equal(
    error.message,
    "Imgur refused the account's access token even after a refresh (403 The access token provided is invalid.); authorize the account again and configure the new refresh token",
  )
  for (const token of ['access-0', 'access-1', ...Object.values(ACCOUNT)])
    assert.ok(!error.message.includes(token))
  assert.equal(count('/3/image'), 2)
  assert.equal(count('/oauth2/token'), 2)
})

test('a refused refresh token fails as imgur_auth, once for the whole queue, leaking nothing', async () => {
  const { client, count } = await setup(
    () => success(),
    (request) => classic(400, `Invalid refresh token ${request.body.toString()}`),
  )
  const errors = (await Promise.all(
    [client.upload(input), client.upload(input)].map((p) => p.catch((e: unknown) => e)),
  )) as Error[]
  await assert.rejects(client.upload(input), { code: 'imgur_auth' })
  assert.equal(count('/oauth2/token'), 1)
  assert.equal(count('/3/image'), 0)
  for (const error of errors) {
    assert.equal((error as { code?: string }).code, 'imgur_auth')
    assert.match(error.message, /^Imgur refused the refresh token \(400 Invalid refresh token/)
    // Not even a prefix may survive the shortening of Imgur's text.
    for (const secret of Object.values(ACCOUNT))
      assert.ok(!error.message.includes(secret.slice(0, 8)), error.message)
  }
})

test('a plain refusal reads exactly as the operator needs it', async () => {
  const { client } = await setup(
    () => success(),
    () => classic(400, 'Invalid refresh token'),
  )
  await assert.rejects(client.upload(input), {
    code: 'imgur_auth',
    retryable: false,
    message: 'Imgur refused the refresh token (400 Invalid refresh token)',
  })
})

test('a token answer without an access token is a retryable bad response, never a Bearer undefined', async () => {
  const { client, count } = await setup(
    () => success(),
    () => json(200, { token_type: 'bearer' }),
  )
  await assert.rejects(client.upload(input), { code: 'imgur_bad_response', retryable: true })
  assert.equal(count('/3/image'), 0)
})

const OVER_CAPACITY = 'Imgur is temporarily over capacity. Please try again later.'
const page = (title: string) =>
  `<!DOCTYPE html><html><head><title>${title}</title></head><body></body></html>`
const htmlReply = (status: number, title: string) => ({
  status,
  headers: { 'content-type': 'text/html' },
  body: page(title),
})
const POLICY = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 10_000, random: () => 1 }
const refresh = json(200, { access_token: 'later', expires_in: 3600, token_type: 'bearer' })

type Transient = { name: string; reply: Reply; code: string; retryAfterMs?: number }
const transient: Transient[] = [
  { name: 'connection reset', reply: 'reset', code: 'imgur_network' },
  { name: '500 empty', reply: { status: 500 }, code: 'imgur_unavailable' },
  { name: '502 HTML page', reply: htmlReply(502, '502 Bad Gateway'), code: 'imgur_unavailable' },
  {
    name: '503 with Retry-After',
    reply: { status: 503, headers: { 'retry-after': '7' } },
    code: 'imgur_unavailable',
    retryAfterMs: 7000,
  },
  { name: '504 JSON', reply: classic(504, 'Gateway Timeout'), code: 'imgur_unavailable' },
  {
    name: '429 with reset headers',
    reply: json(
      429,
      { errors: [{ code: '429', status: 'Too Many Requests' }] },
      { 'x-post-rate-limit-remaining': '0', 'x-post-rate-limit-reset': '900' },
    ),
    code: 'imgur_rate_limited',
    retryAfterMs: 900_000,
  },
  {
    name: '429 HTML with Retry-After',
    reply: { ...htmlReply(429, '429 Too Many Requests'), headers: { 'retry-after': '30' } },
    code: 'imgur_rate_limited',
    retryAfterMs: 30_000,
  },
  { name: '403 over capacity', reply: classic(403, OVER_CAPACITY), code: 'imgur_over_capacity' },
  { name: '500 over capacity', reply: classic(500, OVER_CAPACITY), code: 'imgur_over_capacity' },
  { name: '400 HTML page', reply: htmlReply(400, '400 Bad Request'), code: 'imgur_token_failed' },
  { name: '401 HTML page', reply: htmlReply(401, '401 Unauthorized'), code: 'imgur_token_failed' },
  { name: '403 HTML page', reply: htmlReply(403, 'Access denied'), code: 'imgur_token_failed' },
  { name: '404 HTML page', reply: htmlReply(404, '404 Not Found'), code: 'imgur_token_failed' },
  {
    name: '400 CDN block',
    reply: classic(400, 'These actions are forbidden.', { 'cdn-error': 'yes' }),
    code: 'imgur_token_failed',
  },
  {
    name: '401 without a grant error',
    reply: classic(401, 'Authentication required'),
    code: 'imgur_token_failed',
  },
  { name: '200 HTML page', reply: htmlReply(200, 'Imgur'), code: 'imgur_bad_response' },
]

for (const c of transient) {
  test(`token endpoint ${c.name}: ${c.code}, retryable, and the next call refreshes`, async () => {
    let failing = true
    const { client, clock, count } = await setup(
      () => success(),
      () => {
        if (!failing) return refresh
        failing = false
        return c.reply
      },
    )
    const error = (await client.upload(input).catch((caught: unknown) => caught)) as Error & {
      code: string
      retryable: boolean
      retryAfterMs?: number
    }
    assert.deepEqual([error.code, error.retryable, error.retryAfterMs], [c.code, true, c.retryAfterMs])
    // The item retry policy tries it again, honouring a rate-limit reset in full.
    const delay = retryDelay(POLICY, error, 1)
    assert.notEqual(delay, undefined)
    if (c.code === 'imgur_rate_limited') {
      assert.equal(delay, c.retryAfterMs)
      // The account's uploads hold off too, until the reset (or the default backoff).
      const key = client.credentialKey()
      const blocked = client.budgets.snapshot().find((entry) => entry.key === key)?.blockedUntil
      assert.equal(blocked, clock.now + (c.retryAfterMs ?? 60_000))
    }
    for (const secret of Object.values(ACCOUNT)) assert.ok(!error.message.includes(secret))
    assert.equal((await client.upload(input)).id, 'AbC1234')
    assert.equal(count('/oauth2/token'), 2)
    assert.equal(count('/3/image'), 1)
  })
}

test('a token endpoint answering 404 says so', async () => {
  const { client } = await setup(
    () => success(),
    () => htmlReply(404, '404 Not Found'),
  )
  await assert.rejects(client.upload(input), {
    code: 'imgur_token_failed',
    retryable: true,
    message: "Imgur's token endpoint answered 404 (Not Found)",
  })
})

test('callers arriving during a failing refresh share its one request and its error', async () => {
  let arrived = () => {}
  const requested = new Promise<void>((resolve) => {
    arrived = resolve
  })
  let release = () => {}
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const { client, count, imgur } = await setup(
    () => success(),
    async () => {
      arrived()
      await gate
      return { status: 503 }
    },
  )
  const settle = () =>
    client.upload(input).then(
      () => ({ code: 'uploaded' }),
      (caught: { code: string }) => caught,
    )
  const early = [settle(), settle()]
  await requested // Imgur holds the refresh: later callers join it
  const late = [settle(), settle(), settle()]
  release()
  const errors = await Promise.all([...early, ...late])
  assert.deepEqual(
    errors.map((error) => error.code),
    Array(5).fill('imgur_unavailable'),
  )
  assert.equal(count('/oauth2/token'), 1)
  assert.equal(imgur.seen.length, 1)
})

const refusals: Array<{ name: string; reply: Reply; message: string }> = [
  {
    name: "Imgur's 400 Invalid refresh token",
    reply: classic(400, 'Invalid refresh token'),
    message: 'Imgur refused the refresh token (400 Invalid refresh token)',
  },
  {
    name: 'OAuth invalid_grant with a description',
    reply: json(400, { error: 'invalid_grant', error_description: 'The refresh token was revoked' }),
    message: 'Imgur refused the refresh token (400 invalid_grant: The refresh token was revoked)',
  },
  {
    name: 'OAuth 401 invalid_client',
    reply: json(401, { error: 'invalid_client' }),
    message: 'Imgur refused the refresh token (401 invalid_client)',
  },
  {
    name: 'an unknown grant type',
    reply: classic(400, 'Invalid grant_type parameter or parameter missing'),
    message: 'Imgur refused the refresh token (400 Invalid grant_type parameter or parameter missing)',
  },
  {
    name: '403 Invalid client_id',
    reply: classic(403, 'Invalid client_id'),
    message: 'Imgur refused the refresh token (403 Invalid client_id)',
  },
]

for (const c of refusals) {
  test(`a refused grant (${c.name}) is permanent: imgur_auth, not retried`, async () => {
    const { client, count } = await setup(
      () => success(),
      () => c.reply,
    )
    const error = (await client.upload(input).catch((caught: unknown) => caught)) as Error & {
      code: string
      retryable: boolean
    }
    assert.deepEqual([error.code, error.retryable, error.message], ['imgur_auth', false, c.message])
    assert.equal(retryDelay(POLICY, error, 1), undefined)
    assert.equal(count('/oauth2/token'), 1)
  })
}

test('a refused grant is asked again after the cool-down, and none during it', async () => {
  let accepted = false
  const { client, clock, count } = await setup(
    () => success(),
    () => (accepted ? refresh : classic(400, 'Invalid refresh token')),
  )
  await assert.rejects(client.upload(input), { code: 'imgur_auth' })
  clock.now += REFUSAL_COOL_DOWN_MS - 1
  await assert.rejects(client.upload(input), { code: 'imgur_auth' })
  assert.equal(count('/oauth2/token'), 1)

  // Still refused after the cool-down: asked once more, then a new cool-down starts.
  clock.now += 1
  await assert.rejects(client.upload(input), { code: 'imgur_auth' })
  assert.equal(count('/oauth2/token'), 2)
  clock.now += REFUSAL_COOL_DOWN_MS - 1
  await assert.rejects(client.upload(input), { code: 'imgur_auth' })
  assert.equal(count('/oauth2/token'), 2)

  // The operator fixed it on Imgur's side: the next cool-down's end brings the account back,
  // with one request however many uploads are waiting.
  accepted = true
  clock.now += 1
  const uploaded = await Promise.all([1, 2, 3].map(() => client.upload(input)))
  assert.deepEqual(
    uploaded.map((upload) => upload.id),
    Array(3).fill('AbC1234'),
  )
  assert.equal(count('/oauth2/token'), 3)
  assert.equal(count('/3/image'), 3)
})
