import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { createImgurClient, defaultSiteUrl, type ImgurClientOptions } from '../../src/imgur/client.ts'
import { type FakeImgur, json, type Reply, startFakeImgur } from './fake-imgur.ts'

const CLIENT_ID = 'cfg0client0id0abc'
const ACCOUNT = { clientSecret: 'acct0secret0value', refreshToken: 'refresh0token0value' }
const NOW = 1_700_000_000_000
const INVALID = 'The access token provided is invalid.'

const open: Array<{ close(): Promise<void> }> = []
after(() => Promise.all(open.map((thing) => thing.close())))

type Seen = FakeImgur['seen'][number]

/** Issues access-0, access-1, … on each refresh; `respond` answers every /3 call. */
async function setup(respond: (request: Seen) => Reply, options: Partial<ImgurClientOptions> = {}) {
  let issued = 0
  const imgur = await startFakeImgur((request) =>
    request.path === '/oauth2/token'
      ? json(200, { access_token: `access-${issued++}`, expires_in: 3600, token_type: 'bearer' })
      : respond(request),
  )
  const client = createImgurClient({
    apiUrl: imgur.url,
    clientId: CLIENT_ID,
    timeoutMs: 2000,
    userAgent: 'imgur-album-test/1',
    now: () => NOW,
    ...options,
  })
  open.push(imgur, client)
  const albums = () => imgur.seen.filter((request) => request.path === '/3/album')
  return { imgur, client, albums }
}

const made = (data: Record<string, unknown>) => json(200, { data, success: true, status: 200 })

function albumError(status: number, error: string, headers: Record<string, string> = {}): Reply {
  return json(
    status,
    { data: { error, request: '/3/album', method: 'POST' }, success: false, status },
    headers,
  )
}

async function failure(promise: Promise<unknown>) {
  return (await promise.then(
    () => assert.fail('expected a failure'),
    (caught: unknown) => caught,
  )) as Error & { code: string; retryable: boolean; retryAfterMs?: number }
}

test('an anonymous album sends its deletehashes in order, urlencoded, and links to the album page', async () => {
  const { imgur, client, albums } = await setup(() => made({ id: 'AlB1234', deletehash: 'aLbUmDeLeTeHaSh' }))
  const album = await client.createAlbum({
    title: 'Cats & dogs',
    description: 'two',
    deletehashes: ['dh2', 'dh1'],
  })
  // Not Imgur: the API's own origin serves the album pages (the sandbox does).
  assert.deepEqual(album, { id: 'AlB1234', deletehash: 'aLbUmDeLeTeHaSh', link: `${imgur.url}/a/AlB1234` })
  const [request] = albums()
  assert.ok(request)
  assert.equal(request.method, 'POST')
  assert.equal(request.headers.authorization, `Client-ID ${CLIENT_ID}`)
  assert.equal(request.headers['content-type'], 'application/x-www-form-urlencoded')
  assert.equal(request.headers['user-agent'], 'imgur-album-test/1')
  const form = new URLSearchParams(request.body.toString())
  assert.deepEqual(
    [...form],
    [
      ['deletehashes[]', 'dh2'],
      ['deletehashes[]', 'dh1'],
      ['title', 'Cats & dogs'],
      ['description', 'two'],
    ],
  )
})

test("a job's own client id makes the album anonymously, its budget under that id", async () => {
  const { client, albums } = await setup(() =>
    json(
      200,
      { data: { id: 'AlB1234', deletehash: 'aLbUmDeLeTeHaSh' }, success: true, status: 200 },
      {
        'x-ratelimit-clientlimit': '12500',
        'x-ratelimit-clientremaining': '12480',
        'x-ratelimit-clientreset': '60',
      },
    ),
  )
  await client.createAlbum({ deletehashes: ['dh1'], clientId: 'job0client0id' })
  assert.equal(albums()[0]?.headers.authorization, 'Client-ID job0client0id')
  const entry = client.budgets
    .snapshot()
    .find((budget) => budget.key === client.credentialKey('job0client0id'))
  assert.equal(entry?.client?.remaining, 12480)
})

test('the album page is on imgur.com for Imgur, on `siteUrl` when given', async () => {
  const { client } = await setup(() => made({ id: 'AlB1234', deletehash: 'aLbUmDeLeTeHaSh' }), {
    siteUrl: 'https://sandbox.example/',
  })
  assert.equal(
    (await client.createAlbum({ deletehashes: ['dh1'] })).link,
    'https://sandbox.example/a/AlB1234',
  )
  assert.equal(defaultSiteUrl('https://api.imgur.com'), 'https://imgur.com')
  assert.equal(defaultSiteUrl('https://api.imgur.com/'), 'https://imgur.com')
  assert.equal(defaultSiteUrl('http://127.0.0.1:3001'), 'http://127.0.0.1:3001')
  assert.throws(
    () =>
      createImgurClient({
        apiUrl: 'https://api.imgur.com',
        timeoutMs: 1,
        userAgent: 't',
        siteUrl: 'ftp://x',
      }),
    /Expected `siteUrl` to be an http\(s\) URL, got `ftp:\/\/x`/,
  )
})

test('in account mode the album takes ids with the Bearer token, refreshed once when refused', async () => {
  const { client, albums } = await setup(
    (request) =>
      request.headers.authorization === 'Bearer access-0'
        ? albumError(403, INVALID)
        : made({ id: 'AlB1234' }),
    { clientId: 'acct0client0id', ...ACCOUNT },
  )
  assert.equal(client.usesAccount(), true)
  assert.equal(client.usesAccount('job0client0id'), false)
  const album = await client.createAlbum({ ids: ['img2', 'img1'] })
  assert.equal(album.deletehash, undefined)
  assert.equal(album.id, 'AlB1234')
  assert.deepEqual(
    albums().map((request) => [request.headers.authorization, request.body.toString()]),
    [
      ['Bearer access-0', 'ids%5B%5D=img2&ids%5B%5D=img1'],
      ['Bearer access-1', 'ids%5B%5D=img2&ids%5B%5D=img1'],
    ],
  )
})

test('without an account, usesAccount is false', async () => {
  const { client } = await setup(() => made({ id: 'AlB1234' }))
  assert.equal(client.usesAccount(), false)
})

test("Imgur's refusals are classified as for uploads, naming the album", async () => {
  const cases: Array<{ reply: Reply; code: string; retryable: boolean; message: RegExp }> = [
    {
      reply: albumError(403, 'You must own all the image ids to add them to album AlB1234'),
      code: 'imgur_forbidden',
      retryable: false,
      message: /^Imgur refused the request \(403 You must own all the image ids/,
    },
    {
      reply: albumError(400, 'Invalid privacy setting'),
      code: 'imgur_rejected',
      retryable: false,
      message: /^Imgur rejected the album \(Invalid privacy setting\)$/,
    },
    {
      reply: albumError(500, 'Internal server error'),
      code: 'imgur_unavailable',
      retryable: true,
      message: /500/,
    },
    {
      reply: made({ link: 'https://imgur.com/a/x' }),
      code: 'imgur_bad_response',
      retryable: true,
      message: /^Imgur answered 200 without an album id$/,
    },
    {
      reply: made({ id: '../../evil' }),
      code: 'imgur_bad_response',
      retryable: true,
      message: /without an album id/,
    },
  ]
  for (const { reply, code, retryable, message } of cases) {
    const { client } = await setup(() => reply)
    const error = await failure(client.createAlbum({ deletehashes: ['dh1'] }))
    assert.deepEqual([error.code, error.retryable], [code, retryable], JSON.stringify(reply))
    assert.match(error.message, message)
  }
})

test('a 429 on an album blocks the credential until the reset, as for uploads', async () => {
  const { client } = await setup(() =>
    albumError(429, 'Too Many Requests', {
      'x-ratelimit-clientlimit': '12500',
      'x-ratelimit-clientremaining': '0',
      'x-ratelimit-clientreset': '120',
    }),
  )
  const error = await failure(client.createAlbum({ deletehashes: ['dh1'] }))
  assert.equal(error.code, 'imgur_rate_limited')
  assert.equal(error.retryAfterMs, 120_000)
  const reservation = client.budgets.reserve(client.credentialKey(), NOW)
  assert.equal(reservation.ok, false)
})

test("the caller's abort cancels the album call; a silent Imgur hits the deadline", async () => {
  const { client } = await setup(() => 'hang', { timeoutMs: 50 })
  const controller = new AbortController()
  const pending = client.createAlbum({ deletehashes: ['dh1'], signal: controller.signal })
  controller.abort()
  assert.equal((await failure(pending)).code, 'cancelled')
  assert.equal((await failure(client.createAlbum({ deletehashes: ['dh1'] }))).code, 'imgur_timeout')
})
