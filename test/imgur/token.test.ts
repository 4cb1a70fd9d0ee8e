import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { createImgurClient } from '../../src/imgur/client.ts'
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
async function setup(upload: (request: Request) => Reply, token?: (request: Request) => Reply) {
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

test('a token endpoint outage is retryable and not remembered', async () => {
  let down = true
  const { client } = await setup(
    () => success(),
    () => (down ? { status: 503 } : json(200, { access_token: 'later', expires_in: 3600 })),
  )
  await assert.rejects(client.upload(input), { code: 'imgur_unavailable', retryable: true })
  down = false
  assert.equal((await client.upload(input)).id, 'AbC1234')
})

test('a token answer without an access token is a retryable bad response, never a Bearer undefined', async () => {
  const { client, count } = await setup(
    () => success(),
    () => json(200, { token_type: 'bearer' }),
  )
  await assert.rejects(client.upload(input), { code: 'imgur_bad_response', retryable: true })
  assert.equal(count('/3/image'), 0)
})
