import assert from 'node:assert/strict'
import { test } from 'node:test'
import { IMAGE_OVERHEAD_BYTES } from '../../src/sandbox/images.ts'
import { resolveOptions } from '../../src/sandbox/options.ts'
import { createRateLimits, MAX_BUCKETS, UPLOAD_CREDITS } from '../../src/sandbox/rate-limits.ts'
import { createSandbox } from '../../src/sandbox/sandbox.ts'
import { bmp, CLIENT, jsonBody, jsonOf, mp4, post, start, upload } from './fixtures.ts'

const cost = (bytes: Uint8Array) => bytes.length + IMAGE_OVERHEAD_BYTES

/** What a removed image answers everywhere: its link, its GET /3/image and its deletehash. */
async function assertGone(url: string, data: { id: string; link: string; deletehash: string }) {
  const link = await fetch(data.link)
  assert.equal(link.status, 404, data.link)
  assert.match(await link.text(), /<html>/)
  const read = await fetch(`${url}/3/image/${data.id}`, { headers: { Authorization: CLIENT } })
  assert.equal(read.status, 404)
  assert.equal((await jsonBody(read)).data.error, `Unable to find an image with the id, ${data.id}`)
  const remove = await fetch(`${url}/3/image/${data.deletehash}`, {
    method: 'DELETE',
    headers: { Authorization: CLIENT },
  })
  assert.equal(remove.status, 404)
  await remove.text()
}

async function assertServed(data: { link: string }, bytes: Uint8Array) {
  const served = await fetch(data.link)
  assert.equal(served.status, 200, data.link)
  assert.deepEqual(Buffer.from(await served.arrayBuffer()), Buffer.from(bytes))
}

test('defaults: 256 MiB of images, the newest 10,000 records of each kind', () => {
  const resolved = resolveOptions({})
  assert.equal(resolved.maxBytes, 256 * 1024 * 1024)
  assert.equal(resolved.maxRecords, 10_000)
})

test('past maxBytes a new upload drops the oldest images first; their links and reads answer 404', async (t) => {
  const image = bmp(10, 30)
  const { sandbox, url } = await start(t, { maxBytes: 3 * cost(image) + 100 })
  const sent: Array<{ id: string; link: string; deletehash: string }> = []
  for (let n = 0; n < 3; n += 1) {
    const response = await upload(url, image)
    assert.equal(response.status, 200)
    sent.push(jsonOf(response.text).data)
  }
  assert.equal(sandbox.storedBytes, 3 * cost(image))
  for (const data of sent) await assertServed(data, image)

  const fourth = jsonOf((await upload(url, image)).text).data
  await assertGone(url, sent[0] as (typeof sent)[number])
  for (const data of [...sent.slice(1), fourth]) await assertServed(data, image)
  assert.equal(sandbox.storedBytes, 3 * cost(image))

  // Twice the size: the two oldest go, the newest stays.
  const double = bmp(10, 60)
  assert.ok(cost(double) < 2 * cost(image))
  const big = jsonOf((await upload(url, double)).text).data
  await assertGone(url, sent[1] as (typeof sent)[number])
  await assertGone(url, sent[2] as (typeof sent)[number])
  await assertServed(fourth, image)
  await assertServed(big, double)
  assert.equal(sandbox.storedBytes, cost(image) + cost(double))
  // Records outlive the bytes: every upload is still listed.
  assert.equal(sandbox.uploads.length, 5)
  assert.equal(sandbox.uploadCount, 5)
})

test('a dropped video answers 404 on its link and its gifv page', async (t) => {
  const video = mp4()
  const image = bmp(10, 30)
  const { url } = await start(t, { maxBytes: cost(video) + cost(image) })
  const clip = jsonOf((await upload(url, video, { field: 'video' })).text).data
  assert.equal((await fetch(clip.gifv)).status, 200)
  assert.equal((await upload(url, image)).status, 200)
  assert.equal((await upload(url, image)).status, 200)
  await assertGone(url, clip)
  const page = await fetch(clip.gifv)
  assert.equal(page.status, 404)
  await page.text()
})

test('an image that alone would pass maxBytes is over the size limit and drops nothing', async (t) => {
  const small = bmp(2, 3)
  const large = bmp(40, 40)
  const { sandbox, url } = await start(t, { maxBytes: cost(small) + 1000 })
  const kept = jsonOf((await upload(url, small)).text).data
  const refused = await upload(url, large)
  assert.equal(refused.status, 400)
  assert.equal(jsonOf(refused.text).data.error, 'File is over the size limit')
  const viaUpload = await upload(url, large, { path: '/3/upload' })
  assert.equal(viaUpload.status, 413)
  await assertServed(kept, small)
  assert.equal(sandbox.uploads.length, 1)
  assert.equal(sandbox.storedBytes, cost(small))
  assert.equal(
    jsonOf((await upload(url, small)).text).success,
    true,
    'the budget was not spent by the refusals',
  )
})

test('DELETE and reset() give the bytes back', async (t) => {
  const image = bmp(10, 30)
  const { sandbox, url } = await start(t, { maxBytes: 2 * cost(image) })
  const first = jsonOf((await upload(url, image)).text).data
  const second = jsonOf((await upload(url, image)).text).data
  const removed = await fetch(`${url}/3/image/${first.deletehash}`, {
    method: 'DELETE',
    headers: { Authorization: CLIENT },
  })
  assert.equal(removed.status, 200)
  await removed.text()
  assert.equal(sandbox.storedBytes, cost(image))
  // The freed room is used: the second image is not dropped for the third.
  const third = jsonOf((await upload(url, image)).text).data
  await assertServed(second, image)
  await assertServed(third, image)
  sandbox.reset()
  assert.equal(sandbox.storedBytes, 0)
  assert.equal(sandbox.uploadCount, 0)
  assert.equal((await fetch(third.link)).status, 404)
})

test('request records keep the newest maxRecords and never a credential', async (t) => {
  const secrets = { client: 'client-id-Q7wX2pLm', token: 'token-Hk38Zs0qYt', basic: 'dXNlcjpzM2NyM3Q=' }
  const oauth = { clientId: 'app-id', clientSecret: 'app-secret-Vb61', refreshToken: 'refresh-Jn27' }
  const { sandbox, url } = await start(t, {
    maxRecords: 50,
    clientIds: [secrets.client],
    oauth: { ...oauth, issueToken: () => secrets.token },
  })
  const form = new URLSearchParams({
    grant_type: 'refresh_token',
    client_id: oauth.clientId,
    client_secret: oauth.clientSecret,
    refresh_token: oauth.refreshToken,
  })
  assert.equal((await post(url, '/oauth2/token', form, null)).status, 200)
  const headers = [
    `Client-ID ${secrets.client}`,
    `Bearer ${secrets.token}`,
    `Basic ${secrets.basic}`,
    'Client-ID not-the-client-id',
  ]
  for (let n = 0; n < 122; n += 1) {
    const Authorization = headers[n % headers.length] as string
    const response = await fetch(`${url}/3/image/n${n}`, { headers: { Authorization } })
    await response.text()
  }
  assert.equal(sandbox.requests.length, 50)
  assert.deepEqual(
    sandbox.requests.map((r) => r.path),
    Array.from({ length: 50 }, (_, k) => `/3/image/n${72 + k}`),
  )
  assert.deepEqual(
    sandbox.requests.slice(0, 4).map((r) => [r.status, r.authTag]),
    [
      [404, sandbox.authTag(`Client-ID ${secrets.client}`)],
      [404, sandbox.authTag(`Bearer ${secrets.token}`)],
      [403, sandbox.authTag(`Basic ${secrets.basic}`)],
      [403, sandbox.authTag('Client-ID not-the-client-id')],
    ],
  )
  for (const record of sandbox.requests) {
    assert.match(record.authTag ?? '', /^(Client-ID|Bearer|malformed) [0-9a-f]{16}$/)
  }
  const kept = JSON.stringify([sandbox.requests, sandbox.uploads])
  for (const secret of [...Object.values(secrets), ...Object.values(oauth)]) {
    assert.ok(!kept.includes(secret), `a record holds ${secret}`)
  }
})

test('auth tags name the credential, not the spelling, and differ between sandboxes', () => {
  const sandbox = createSandbox()
  const tag = sandbox.authTag('Client-ID abc')
  assert.equal(sandbox.authTag('client-id   abc  '), tag)
  assert.notEqual(sandbox.authTag('Client-ID abd'), tag)
  assert.match(sandbox.authTag('Bearer abc') ?? '', /^Bearer [0-9a-f]{16}$/)
  assert.equal(sandbox.authTag(''), undefined)
  assert.match(sandbox.authTag('Basic abc') ?? '', /^malformed [0-9a-f]{16}$/)
  // Keyed per sandbox: a tag cannot be matched against guesses made elsewhere.
  assert.notEqual(createSandbox().authTag('Client-ID abc'), tag)
})

test('upload records keep the newest maxRecords; uploadCount counts them all', async (t) => {
  const { sandbox, url } = await start(t, { maxRecords: 3 })
  const ids: string[] = []
  for (let n = 0; n < 5; n += 1) ids.push(jsonOf((await upload(url, bmp(2, 3))).text).data.id)
  assert.deepEqual(
    sandbox.uploads.map((record) => record.id),
    ids.slice(2),
  )
  assert.equal(sandbox.uploadCount, 5)
  assert.equal(sandbox.requests.length, 3)
})

test("a refused caller's upload, however large, answers its auth failure and stores nothing", async (t) => {
  const { sandbox, url } = await start(t, { clientIds: ['only-me'], maxImageBytes: 10 })
  const response = await upload(url, Buffer.alloc(200_000), { auth: 'Client-ID someone-else' })
  assert.equal(response.status, 403)
  assert.equal(jsonOf(response.text).data.error, 'Invalid client_id')
  assert.equal(sandbox.storedBytes, 0)
})

test('rate-limit buckets are bounded: the least recently spent is forgotten first', () => {
  const limits = createRateLimits(
    { clientCredits: 100, userCredits: 100, posts: 1_000_000, resetSeconds: 3600 },
    () => 0,
  )
  const spent = 100 - UPLOAD_CREDITS
  assert.ok(limits.spendUpload({ client: 'first', user: 'account:1' }))
  for (let n = 0; n < MAX_BUCKETS - 1; n += 1) limits.spendUpload({ client: `client-${n}`, user: undefined })
  // Spending again makes `first` the most recent: `client-0` is now the oldest.
  assert.ok(limits.spendUpload({ client: 'first', user: undefined }))
  assert.ok(limits.spendUpload({ client: 'one-more', user: undefined }))
  assert.equal(limits.snapshot({ client: 'client-0', user: undefined }).client.remaining, 100)
  assert.equal(limits.snapshot({ client: 'client-1', user: undefined }).client.remaining, spent)
  assert.equal(limits.snapshot({ client: 'first', user: undefined }).client.remaining, spent - UPLOAD_CREDITS)
  assert.equal(limits.snapshot({ client: 'x', user: 'account:1' }).user.remaining, spent)
})
