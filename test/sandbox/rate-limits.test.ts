import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clock, jsonBody, jsonOf, png, post, start, upload } from './fixtures.ts'

const OAUTH = { clientId: 'app-id', clientSecret: 'app-secret', refreshToken: 'refresh-me' }

function limits(headers: Headers) {
  const read = (name: string) => headers.get(name)
  return {
    user: [read('x-ratelimit-userlimit'), read('x-ratelimit-userremaining'), read('x-ratelimit-userreset')],
    client: [
      read('x-ratelimit-clientlimit'),
      read('x-ratelimit-clientremaining'),
      read('x-ratelimit-clientreset'),
    ],
    posts: [
      read('x-post-rate-limit-limit'),
      read('x-post-rate-limit-remaining'),
      read('x-post-rate-limit-reset'),
    ],
  }
}

async function bearer(url: string): Promise<string> {
  const form = new URLSearchParams({
    grant_type: 'refresh_token',
    client_id: OAUTH.clientId,
    client_secret: OAUTH.clientSecret,
    refresh_token: OAUTH.refreshToken,
  })
  return `Bearer ${jsonOf((await post(url, '/oauth2/token', form, null)).text).access_token}`
}

test('an upload costs 10 client credits and 1 post, shown in the headers with seconds to reset', async (t) => {
  const time = clock()
  const { url } = await start(t, { now: time.now })
  const first = await upload(url, png())
  assert.deepEqual(limits(first.headers), {
    user: ['2000', '2000', '3600'],
    client: ['12500', '12490', '3600'],
    posts: ['1250', '1249', '3600'],
  })
  time.advance(600_000)
  const second = await upload(url, png())
  assert.deepEqual(limits(second.headers), {
    user: ['2000', '2000', '3600'],
    client: ['12500', '12480', '3000'],
    posts: ['1250', '1248', '3000'],
  })
})

test('GET /3/credits answers the caller budget and carries no post headers', async (t) => {
  const time = clock()
  const { url } = await start(t, {
    now: time.now,
    budget: { clientCredits: 500, userCredits: 100, resetSeconds: 60 },
  })
  await upload(url, png())
  const response = await fetch(`${url}/3/credits`, { headers: { Authorization: 'Client-ID test-client' } })
  assert.equal(response.status, 200)
  assert.deepEqual(await jsonBody(response), {
    data: {
      UserLimit: 100,
      UserRemaining: 100,
      UserReset: time.now() / 1000 + 60,
      ClientLimit: 500,
      ClientRemaining: 490,
    },
    success: true,
    status: 200,
  })
  assert.equal(response.headers.get('x-ratelimit-clientremaining'), '490')
  assert.equal(response.headers.get('x-post-rate-limit-limit'), null)
  const other = await fetch(`${url}/3/credits`, { headers: { Authorization: 'Client-ID other-client' } })
  assert.equal((await jsonBody(other)).data.ClientRemaining, 500)
})

test('a spent client budget answers 429 with 0 remaining, then refills after its window', async (t) => {
  const time = clock()
  const { sandbox, url } = await start(t, { now: time.now, budget: { clientCredits: 20, resetSeconds: 30 } })
  assert.equal((await upload(url, png())).status, 200)
  assert.equal((await upload(url, png())).status, 200)
  time.advance(10_000)
  const refused = await upload(url, png(), { path: '/3/upload' })
  assert.equal(refused.status, 429)
  assert.deepEqual(jsonOf(refused.text), {
    data: { error: 'Too Many Requests', request: '/3/upload', method: 'POST' },
    success: false,
    status: 429,
  })
  assert.deepEqual(limits(refused.headers).client, ['20', '0', '20'])
  assert.equal(sandbox.uploads.length, 2)

  time.advance(20_000)
  const recovered = await upload(url, png())
  assert.equal(recovered.status, 200)
  assert.deepEqual(limits(recovered.headers).client, ['20', '10', '30'])
})

test('client budgets are per client id', async (t) => {
  const { url } = await start(t, { budget: { clientCredits: 10 } })
  assert.equal((await upload(url, png(), { auth: 'Client-ID first' })).status, 200)
  const spent = await upload(url, png(), { auth: 'Client-ID first' })
  assert.equal(spent.status, 429)
  const other = await upload(url, png(), { auth: 'Client-ID second' })
  assert.equal(other.status, 200)
  assert.equal(other.headers.get('x-ratelimit-clientremaining'), '0')
})

test('user budgets are per Bearer account; anonymous uploads spend none', async (t) => {
  const { sandbox, url } = await start(t, { oauth: OAUTH, budget: { userCredits: 10 } })
  for (let index = 0; index < 2; index += 1) {
    const anonymous = await upload(url, png())
    assert.equal(anonymous.status, 200)
    assert.equal(anonymous.headers.get('x-ratelimit-userremaining'), '10')
  }
  const auth = await bearer(url)
  const account = await upload(url, png(), { auth })
  assert.equal(account.status, 200)
  assert.equal(account.headers.get('x-ratelimit-userremaining'), '0')
  const refused = await upload(url, png(), { auth })
  assert.equal(refused.status, 429)
  assert.equal(refused.headers.get('x-ratelimit-userremaining'), '0')
  // The token's client id (app-id) paid once; the anonymous uploads paid from test-client.
  assert.equal(refused.headers.get('x-ratelimit-clientremaining'), '12490')
  assert.deepEqual(
    sandbox.uploads.map((record) => record.auth),
    ['client-id', 'client-id', 'bearer'],
  )
})

test('the post budget is spent by any caller and refused with post remaining 0', async (t) => {
  const time = clock()
  const { url } = await start(t, { now: time.now, budget: { posts: 1, resetSeconds: 5 } })
  assert.equal((await upload(url, png(), { auth: 'Client-ID one' })).status, 200)
  const refused = await upload(url, png(), { auth: 'Client-ID two' })
  assert.equal(refused.status, 429)
  assert.deepEqual(limits(refused.headers).posts, ['1', '0', '5'])
  time.advance(5_000)
  assert.equal((await upload(url, png(), { auth: 'Client-ID two' })).status, 200)
})

test('failed uploads and faults cost nothing', async (t) => {
  const { sandbox, url } = await start(t)
  sandbox.script('server-error')
  await upload(url, png())
  await upload(url, new Uint8Array(0))
  const response = await fetch(`${url}/3/credits`, { headers: { Authorization: 'Client-ID test-client' } })
  assert.equal((await jsonBody(response)).data.ClientRemaining, 12500)
})

test('reset() forgets uploads, requests, scripted faults and spent budgets', async (t) => {
  const { sandbox, url } = await start(t, { budget: { clientCredits: 10 } })
  assert.equal((await upload(url, png())).status, 200)
  assert.equal((await upload(url, png())).status, 429)
  const link = sandbox.uploads[0]?.link ?? ''
  sandbox.script('server-error')
  sandbox.reset()
  assert.equal(sandbox.uploads.length, 0)
  assert.equal(sandbox.requests.length, 0)
  assert.equal((await fetch(link)).status, 404)
  const again = await upload(url, png())
  assert.equal(again.status, 200)
  assert.equal(again.headers.get('x-ratelimit-clientremaining'), '0')
})

test('rate-limit headers are on every /3 answer: errors and 404 pages included', async (t) => {
  const { url } = await start(t)
  const unauthorised = await upload(url, png(), { auth: null })
  assert.equal(unauthorised.status, 401)
  assert.equal(unauthorised.headers.get('x-ratelimit-clientremaining'), '12500')
  assert.equal(unauthorised.headers.get('x-post-rate-limit-remaining'), '1250')
  const missing = await fetch(`${url}/3/gallery/abc`)
  assert.equal(missing.status, 404)
  assert.equal(missing.headers.get('x-ratelimit-userlimit'), '2000')
  assert.equal(missing.headers.get('x-post-rate-limit-limit'), null)
  await missing.text()
  const site = await fetch(`${url}/`)
  assert.equal(site.headers.get('x-ratelimit-userlimit'), null)
  await site.text()
})

test('concurrent uploads never overspend a budget', async (t) => {
  const { sandbox, url } = await start(t, { budget: { clientCredits: 30 } })
  const statuses = await Promise.all(Array.from({ length: 6 }, async () => (await upload(url, png())).status))
  assert.deepEqual(
    statuses.toSorted((a, b) => a - b),
    [200, 200, 200, 429, 429, 429],
  )
  assert.equal(sandbox.uploads.length, 3)
})
