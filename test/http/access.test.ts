/** Access control and submission limits, against the whole app with a clock the tests move. */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { type TestContext, test } from 'node:test'
import { request } from 'undici'
import { offline } from '../helpers/downloaders.ts'
import { apiKeys, bearer, newKey } from '../helpers/keys.ts'
import { startService } from '../helpers/service.ts'

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
const { keys: KEYS, API_KEYS } = apiKeys('alice', 'bob')

async function keyed(t: TestContext) {
  return startService(t, { env: { API_KEYS }, overrides: { downloader: offline } })
}

test('with API_KEYS every /v1 route wants a Bearer key: 401 JSON and WWW-Authenticate otherwise', async (t) => {
  const { app } = await keyed(t)
  const id = '00000000-0000-4000-8000-000000000000'
  const routes = [
    { method: 'POST' as const, url: '/v1/images/upload', payload: { urls: ['https://example.com/a.png'] } },
    { method: 'GET' as const, url: `/v1/images/upload/${id}` },
    { method: 'GET' as const, url: `/v1/images/upload/${id}/events` },
    { method: 'GET' as const, url: '/v1/images' },
    { method: 'HEAD' as const, url: '/v1/images' },
  ]
  const cases: Array<[Record<string, string>, string]> = [
    [{}, 'Bearer'],
    [{ authorization: 'Basic YWxpY2U6c2VjcmV0' }, 'Bearer'],
    [bearer(newKey()), 'Bearer error="invalid_token", error_description="the API key is not valid"'],
    [
      bearer(sha256(KEYS.alice)),
      'Bearer error="invalid_token", error_description="the API key is not valid"',
    ],
    [
      { authorization: 'Bearer' },
      'Bearer error="invalid_token", error_description="the API key is not valid"',
    ],
    [
      { authorization: `Bearer ${KEYS.alice} extra` },
      'Bearer error="invalid_token", error_description="the API key is not valid"',
    ],
  ]
  for (const route of routes) {
    for (const [headers, challenge] of cases) {
      const response = await app.inject({ ...route, headers })
      const label = `${route.method} ${route.url} with ${JSON.stringify(headers)}`
      assert.equal(response.statusCode, 401, label)
      assert.equal(response.headers['www-authenticate'], challenge, label)
      if (route.method === 'HEAD') continue
      assert.match(String(response.headers['content-type']), /^application\/json/)
      const body = response.json()
      assert.equal(body.error, 'unauthorized', label)
      assert.match(body.message, challenge === 'Bearer' ? /needs an API key/ : /not valid/, label)
    }
  }

  // The right key passes, whatever the case of the scheme.
  for (const authorization of [`Bearer ${KEYS.alice}`, `bearer ${KEYS.bob}`, `BEARER   ${KEYS.alice}`]) {
    const response = await app.inject({ url: '/v1/images', headers: { authorization } })
    assert.equal(response.statusCode, 200, authorization)
  }
  // A route that does not exist is a 404 either way: the route list is public in /openapi.json.
  assert.equal((await app.inject('/v1/nothing-here')).statusCode, 404)
})

test('the page, its assets, the API document, /docs and the operations routes stay open', async (t) => {
  const { app } = await keyed(t)
  for (const url of [
    '/',
    '/app.js',
    '/checks.js',
    '/app.css',
    '/docs/',
    '/openapi.json',
    '/health',
    '/ready',
  ]) {
    const response = await app.inject(url)
    assert.equal(response.statusCode, 200, url)
  }
  const metrics = await app.inject({ url: '/metrics', headers: bearer('not-a-key') })
  assert.equal(metrics.statusCode, 200, 'a wrong key on an open route is not checked')
})

test('without API_KEYS the API is open and takes no notice of an Authorization header', async (t) => {
  const { app } = await startService(t, { overrides: { downloader: offline } })
  assert.equal((await app.inject('/v1/images')).statusCode, 200)
  const submitted = await app.inject({
    method: 'POST',
    url: '/v1/images/upload',
    headers: bearer('anything'),
    payload: { urls: ['https://example.com/a.png'] },
  })
  assert.equal(submitted.statusCode, 202)
})

test("a job belongs to its key: another key's status and stream answer as an unknown id", async (t) => {
  const { app, service } = await keyed(t)
  const submitted = await app.inject({
    method: 'POST',
    url: '/v1/images/upload',
    headers: bearer(KEYS.alice),
    payload: { urls: ['https://example.com/a.png'] },
  })
  assert.equal(submitted.statusCode, 202)
  const { jobId } = submitted.json<{ jobId: string }>()
  await service.queue.onIdle()
  assert.equal((await service.store.get(jobId))?.owner, 'alice')

  const own = await app.inject({ url: `/v1/images/upload/${jobId}`, headers: bearer(KEYS.alice) })
  assert.equal(own.statusCode, 200)
  assert.equal(own.json().id, jobId)

  const unknown = '00000000-0000-4000-8000-000000000000'
  const notFound = (id: string) => ({ error: 'job_not_found', message: `no job with id ${id}` })
  for (const id of [jobId, unknown]) {
    const other = await app.inject({ url: `/v1/images/upload/${id}`, headers: bearer(KEYS.bob) })
    assert.equal(other.statusCode, 404)
    assert.deepEqual(other.json(), notFound(id))
  }

  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  for (const id of [jobId, unknown]) {
    const stream = await request(`${base}/v1/images/upload/${id}/events`, { headers: bearer(KEYS.bob) })
    assert.equal(stream.statusCode, 404)
    assert.deepEqual(await stream.body.json(), notFound(id))
  }
  const stream = await request(`${base}/v1/images/upload/${jobId}/events`, { headers: bearer(KEYS.alice) })
  assert.equal(stream.statusCode, 200)
  assert.match(await stream.body.text(), /^event: status\ndata: \{"id":"/)
})

test('GET /v1/images lists the links of your own jobs with keys, every link without', async (t) => {
  for (const env of [{ API_KEYS }, {}] as Array<Record<string, string>>) {
    const h = await startService(t, { env })
    const keys = 'API_KEYS' in env
    const o = h.origin.url
    const run = async (urls: string[], headers: Record<string, string>) => {
      const response = await h.app.inject({
        method: 'POST',
        url: '/v1/images/upload',
        headers,
        payload: { urls },
      })
      assert.equal(response.statusCode, 202, response.body)
      await h.service.queue.onIdle()
      const { jobId } = response.json<{ jobId: string }>()
      const status = await h.app.inject({ url: `/v1/images/upload/${jobId}`, headers })
      return status.json<{ uploaded: { complete: string[] } }>().uploaded.complete
    }
    const links = async (headers: Record<string, string>) =>
      (await h.app.inject({ url: '/v1/images', headers })).json<{ uploaded: string[] }>().uploaded
    const alice = await run([`${o}/img/1.png`, `${o}/img/2.png`], keys ? bearer(KEYS.alice) : {})
    const bob = await run([`${o}/img/3.png`], keys ? bearer(KEYS.bob) : {})
    assert.equal(alice.length, 2)
    assert.equal(bob.length, 1)
    // Links are listed in upload order: Alice's two, uploaded concurrently, in either order.
    if (keys) {
      assert.deepEqual((await links(bearer(KEYS.alice))).toSorted(), alice.toSorted())
      assert.deepEqual(await links(bearer(KEYS.bob)), bob)
    } else {
      const all = await links({})
      assert.deepEqual(all.slice(0, 2).toSorted(), alice.toSorted())
      assert.deepEqual(all.slice(2), bob)
    }
  }
})

test('with keys the API document declares the bearer scheme, the /v1 requirement and 401; without, every route is open', async (t) => {
  type Operation = { security?: unknown; responses: Record<string, { headers?: Record<string, unknown> }> }
  type Doc = {
    components?: { securitySchemes?: Record<string, unknown> }
    paths: Record<string, Record<string, Operation>>
  }
  const operations = (doc: Doc) =>
    Object.entries(doc.paths).flatMap(([path, item]) => Object.values(item).map((op) => [path, op] as const))

  for (const secured of [true, false]) {
    const { app } = secured ? await keyed(t) : await startService(t, { overrides: { downloader: offline } })
    const doc = (await app.inject('/openapi.json')).json<Doc>()
    if (secured) {
      const scheme = doc.components?.securitySchemes?.bearer as Record<string, string>
      assert.equal(scheme.type, 'http')
      assert.equal(scheme.scheme, 'bearer')
      assert.match(String(scheme.description), /Authorization: Bearer/)
    } else assert.equal(doc.components?.securitySchemes, undefined, 'no scheme that no route uses')
    for (const [path, operation] of operations(doc)) {
      const api = path.startsWith('/v1/')
      // `[]`: open on purpose, said explicitly.
      assert.deepEqual(operation.security, secured && api ? [{ bearer: [] }] : [], path)
      assert.equal('401' in operation.responses, secured && api, path)
    }
    const upload = doc.paths['/v1/images/upload']?.post
    assert.deepEqual(Object.keys(upload?.responses['429']?.headers ?? {}).sort(), [
      'RateLimit-Limit',
      'RateLimit-Remaining',
      'RateLimit-Reset',
      'Retry-After',
    ])
    assert.deepEqual(Object.keys(upload?.responses['202']?.headers ?? {}).sort(), [
      'Idempotency-Replayed',
      'RateLimit-Limit',
      'RateLimit-Remaining',
      'RateLimit-Reset',
    ])
  }
})
