import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clock, jsonBody, jsonOf, png, post, start, upload } from './fixtures.ts'

const OAUTH = { clientId: 'app-id', clientSecret: 'app-secret', refreshToken: 'refresh-me' }

function refreshForm(overrides: Record<string, string> = {}) {
  return new URLSearchParams({
    grant_type: 'refresh_token',
    client_id: OAUTH.clientId,
    client_secret: OAUTH.clientSecret,
    refresh_token: OAUTH.refreshToken,
    ...overrides,
  })
}

async function refresh(url: string, body: NonNullable<RequestInit['body']> = refreshForm(), headers = {}) {
  return post(url, '/oauth2/token', body, null, headers)
}

function classic(status: number, error: string, request = '/3/image') {
  return { data: { error, request, method: 'POST' }, success: false, status }
}

test('a missing Authorization header answers 401 "Authentication required"', async (t) => {
  const { sandbox, url } = await start(t)
  const response = await upload(url, png(), { auth: null })
  assert.equal(response.status, 401)
  assert.deepEqual(jsonOf(response.text), classic(401, 'Authentication required'))
  assert.equal(response.headers.get('x-ratelimit-clientlimit'), '12500')
  assert.deepEqual(sandbox.requests, [{ method: 'POST', path: '/3/image', status: 401, authTag: undefined }])
})

test('a malformed Authorization header answers 403 "Malformed auth header"', async (t) => {
  const { url } = await start(t)
  for (const auth of ['Basic dXNlcjpwYXNz', 'Client-ID', 'abc123', 'Client-ID two words']) {
    const response = await upload(url, png(), { auth, path: '/3/upload' })
    assert.equal(response.status, 403, auth)
    assert.deepEqual(jsonOf(response.text), classic(403, 'Malformed auth header', '/3/upload'))
  }
})

test('with clientIds set, other client ids answer 403 "Invalid client_id"', async (t) => {
  const { sandbox, url } = await start(t, { clientIds: ['good-id'] })
  const bad = await upload(url, png(), { auth: 'Client-ID bad-id' })
  assert.equal(bad.status, 403)
  assert.deepEqual(jsonOf(bad.text), classic(403, 'Invalid client_id'))
  const good = await upload(url, png(), { auth: 'Client-ID good-id' })
  assert.equal(good.status, 200)
  assert.equal(sandbox.uploads[0]?.clientId, 'good-id')
})

test('without clientIds, any non-empty client id is accepted', async (t) => {
  const { url } = await start(t)
  const response = await upload(url, png(), { auth: 'Client-ID whatever123' })
  assert.equal(response.status, 200)
})

test('an unknown Bearer token answers 403 "The access token provided is invalid."', async (t) => {
  const { url } = await start(t, { oauth: OAUTH })
  const response = await upload(url, png(), { auth: 'Bearer not-a-token' })
  assert.equal(response.status, 403)
  assert.deepEqual(jsonOf(response.text), classic(403, 'The access token provided is invalid.'))
})

test('oauth refresh (form) issues a token; a Bearer upload carries the account', async (t) => {
  const { sandbox, url } = await start(t, {
    oauth: { ...OAUTH, accountId: 4242, accountUsername: 'alice' },
  })
  const response = await refresh(url)
  assert.equal(response.status, 200)
  const body = jsonOf(response.text)
  assert.deepEqual(Object.keys(body).sort(), [
    'access_token',
    'account_id',
    'account_username',
    'expires_in',
    'refresh_token',
    'scope',
    'token_type',
  ])
  assert.match(body.access_token, /^[0-9a-f]{40}$/)
  assert.equal(body.expires_in, 315360000)
  assert.equal(body.token_type, 'bearer')
  assert.equal(body.scope, '')
  assert.equal(body.refresh_token, OAUTH.refreshToken)
  assert.equal(body.account_id, 4242)
  assert.equal(body.account_username, 'alice')
  assert.equal(response.headers.get('x-ratelimit-clientlimit'), null)

  const uploaded = await upload(url, png(), { auth: `Bearer ${body.access_token}` })
  assert.equal(uploaded.status, 200)
  const { data } = jsonOf(uploaded.text)
  assert.equal(data.account_id, 4242)
  assert.equal(data.account_url, 'alice')
  assert.equal(sandbox.uploads[0]?.auth, 'bearer')
  assert.equal(sandbox.uploads[0]?.clientId, 'app-id')
  assert.equal(sandbox.uploads[0]?.accountId, 4242)
  assert.deepEqual(
    sandbox.requests.map((r) => [r.method, r.path, r.status]),
    [
      ['POST', '/oauth2/token', 200],
      ['POST', '/3/image', 200],
    ],
  )
})

test('oauth refresh accepts JSON and multipart bodies', async (t) => {
  const { url } = await start(t, { oauth: OAUTH })
  const json = await refresh(url, JSON.stringify(Object.fromEntries(refreshForm())), {
    'Content-Type': 'application/json',
  })
  assert.equal(json.status, 200)
  const form = new FormData()
  for (const [key, value] of refreshForm()) form.append(key, value)
  const multipart = await refresh(url, form)
  assert.equal(multipart.status, 200)
  assert.notEqual(jsonOf(json.text).access_token, jsonOf(multipart.text).access_token)
})

test('wrong refresh credentials answer 400 "Invalid refresh token"', async (t) => {
  const { url } = await start(t, { oauth: OAUTH })
  const expected = {
    data: { error: 'Invalid refresh token', request: '/oauth2/token', method: 'POST' },
    success: false,
    status: 400,
  }
  const wrong: Array<Record<string, string>> = [
    { refresh_token: 'nope' },
    { client_secret: 'nope' },
    { client_id: 'nope' },
  ]
  for (const overrides of wrong) {
    const response = await refresh(url, refreshForm(overrides))
    assert.equal(response.status, 400)
    assert.deepEqual(jsonOf(response.text), expected)
  }
  const wrongGrant = await refresh(url, refreshForm({ grant_type: 'password' }))
  assert.equal(wrongGrant.status, 400)
  assert.equal(jsonOf(wrongGrant.text).data.error, 'Invalid grant_type parameter or parameter missing')
})

test('an unreadable token request answers 400 with the grant_type error', async (t) => {
  const { url } = await start(t, { oauth: OAUTH })
  const response = await refresh(url, '{not json', { 'Content-Type': 'application/json' })
  assert.equal(response.status, 400)
  assert.deepEqual(jsonOf(response.text), {
    data: {
      error: 'Invalid grant_type parameter or parameter missing',
      request: '/oauth2/token',
      method: 'POST',
    },
    success: false,
    status: 400,
  })
})

test('a sandbox without oauth refuses every refresh', async (t) => {
  const { url } = await start(t)
  const response = await refresh(url)
  assert.equal(response.status, 400)
  assert.equal(jsonOf(response.text).data.error, 'Invalid refresh token')
})

test('an expired token answers 403 invalid until refreshed', async (t) => {
  const time = clock()
  const { url } = await start(t, { oauth: { ...OAUTH, expiresInSeconds: 60 }, now: time.now })
  const first = jsonOf((await refresh(url)).text)
  assert.equal(first.expires_in, 60)
  assert.equal((await upload(url, png(), { auth: `Bearer ${first.access_token}` })).status, 200)
  time.advance(60_000)
  const expired = await upload(url, png(), { auth: `Bearer ${first.access_token}` })
  assert.equal(expired.status, 403)
  assert.equal(jsonOf(expired.text).data.error, 'The access token provided is invalid.')
  const second = jsonOf((await refresh(url)).text)
  assert.equal((await upload(url, png(), { auth: `Bearer ${second.access_token}` })).status, 200)
})

test('a refresh replaces the earlier token of the account', async (t) => {
  const { url } = await start(t, { oauth: OAUTH })
  const first = jsonOf((await refresh(url)).text)
  const second = jsonOf((await refresh(url)).text)
  assert.equal((await upload(url, png(), { auth: `Bearer ${first.access_token}` })).status, 403)
  assert.equal((await upload(url, png(), { auth: `Bearer ${second.access_token}` })).status, 200)
})

test('DELETE, GET image and credits need auth too; delete works with either auth', async (t) => {
  const { url } = await start(t, { oauth: OAUTH })
  const { data } = jsonOf((await upload(url, png())).text)
  const anonymous = await fetch(`${url}/3/image/${data.deletehash}`, { method: 'DELETE' })
  assert.equal(anonymous.status, 401)
  assert.equal((await jsonBody(anonymous)).data.error, 'Authentication required')
  assert.equal((await fetch(`${url}/3/credits`)).status, 401)
  const { access_token } = jsonOf((await refresh(url)).text)
  const deleted = await fetch(`${url}/3/image/${data.deletehash}`, {
    method: 'DELETE',
    headers: { Authorization: `Bearer ${access_token}` },
  })
  assert.equal(deleted.status, 200)
  assert.deepEqual(await jsonBody(deleted), { data: true, success: true, status: 200 })
})
