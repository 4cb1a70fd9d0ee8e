import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startService } from './helpers/service.ts'

type Case = { name: string; status: number; code: string; payload?: string; contentType?: string }

const json = 'application/json'
const good = 'https://example.com/a.png'

const cases: Case[] = [
  {
    name: 'text/plain',
    status: 415,
    code: 'unsupported_media_type',
    payload: '{"urls":[]}',
    contentType: 'text/plain',
  },
  {
    name: 'form body',
    status: 415,
    code: 'unsupported_media_type',
    payload: 'urls=x',
    contentType: 'application/x-www-form-urlencoded',
  },
  { name: 'no content type', status: 415, code: 'unsupported_media_type', payload: '{}', contentType: '' },
  { name: 'malformed JSON', status: 400, code: 'invalid_json', payload: '{"urls": [', contentType: json },
  { name: 'empty body', status: 400, code: 'invalid_json', payload: '', contentType: json },
  { name: 'JSON array body', status: 400, code: 'invalid_body', payload: '[]', contentType: json },
  { name: 'missing urls', status: 400, code: 'invalid_body', payload: '{}', contentType: json },
  {
    name: 'urls not an array',
    status: 400,
    code: 'invalid_body',
    payload: `{"urls":"${good}"}`,
    contentType: json,
  },
  { name: 'empty urls', status: 400, code: 'invalid_body', payload: '{"urls":[]}', contentType: json },
  {
    name: 'unknown field',
    status: 400,
    code: 'invalid_body',
    payload: `{"urls":["${good}"],"album":"x"}`,
    contentType: json,
  },
  {
    name: 'too many URLs',
    status: 400,
    code: 'invalid_body',
    payload: JSON.stringify({ urls: [1, 2, 3, 4].map((n) => `${good}?${n}`) }),
    contentType: json,
  },
  {
    name: 'clientId empty',
    status: 400,
    code: 'invalid_body',
    payload: `{"urls":["${good}"],"clientId":""}`,
    contentType: json,
  },
  {
    name: 'clientId too long',
    status: 400,
    code: 'invalid_body',
    payload: JSON.stringify({ urls: [good], clientId: 'x'.repeat(65) }),
    contentType: json,
  },
  {
    name: 'clientId with a newline',
    status: 400,
    code: 'invalid_body',
    payload: JSON.stringify({ urls: [good], clientId: 'a\r\nX: y' }),
    contentType: json,
  },
  {
    name: 'clientId a number',
    status: 400,
    code: 'invalid_body',
    payload: `{"urls":["${good}"],"clientId":5}`,
    contentType: json,
  },
  {
    name: '__proto__ key',
    status: 400,
    code: 'invalid_json',
    payload: `{"urls":["${good}"],"__proto__":{"x":1}}`,
    contentType: json,
  },
  {
    name: 'body over 1 MiB',
    status: 413,
    code: 'body_too_large',
    payload: JSON.stringify({ urls: [`${good}?${'a'.repeat(1024 * 1024)}`] }),
    contentType: json,
  },
]

test('bad submissions get a clear JSON error and create no job', async (t) => {
  const { app, service } = await startService(t, { env: { MAX_URLS_PER_JOB: '3' } })
  for (const { name, status, code, payload, contentType } of cases) {
    const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {}
    const response = await app.inject({ method: 'POST', url: '/v1/images/upload', payload, headers })
    assert.equal(response.statusCode, status, `${name}: ${response.body}`)
    assert.match(String(response.headers['content-type']), /^application\/json/, name)
    const body = response.json()
    assert.equal(body.error, code, name)
    assert.equal(typeof body.message, 'string', name)
    assert.ok(body.message.length > 0, name)
  }
  assert.equal((await service.store.stats()).jobs, 0)
})

test('invalid URL entries are all named by index and reason', async (t) => {
  const { app, service } = await startService(t)
  const response = await app.inject({
    method: 'POST',
    url: '/v1/images/upload',
    payload: { urls: [good, 'ftp://x.test/a.png', 7, 'nope', 'https://u:p@x.test/a.png'] },
  })
  assert.equal(response.statusCode, 400)
  const body = response.json()
  assert.equal(body.error, 'invalid_urls')
  assert.equal(body.message, '4 of the submitted URLs are invalid')
  assert.deepEqual(
    body.details.invalid.map((p: { index: number }) => p.index),
    [1, 2, 3, 4],
  )
  assert.equal((await service.store.stats()).jobs, 0)
})

test('unknown and malformed job ids, and unknown routes, answer 404 in JSON', async (t) => {
  const { app } = await startService(t)
  for (const url of [
    '/v1/images/upload/2b1f7d4e-5a8c-4f7e-9d3b-1c2a3b4c5d6e',
    '/v1/images/upload/not-a-uuid',
    '/v1/images/upload/%00',
    `/v1/images/upload/${'a'.repeat(150)}`,
    `/v1/images/upload/${'a'.repeat(150)}/events`,
    '/nope',
  ]) {
    const response = await app.inject({ method: 'GET', url })
    assert.equal(response.statusCode, 404, url)
    assert.match(String(response.headers['content-type']), /^application\/json/)
    assert.ok(['job_not_found', 'not_found'].includes(response.json().error), url)
  }
})

test('a full queue answers 503 with Retry-After and loses nothing already queued', async (t) => {
  const { app, service, origin } = await startService(t, { env: { MAX_PENDING_ITEMS: '2' } })
  const first = await app.inject({
    method: 'POST',
    url: '/v1/images/upload',
    payload: { urls: [`${origin.url}/img/1.png`, `${origin.url}/img/2.png`] },
  })
  assert.equal(first.statusCode, 202)
  const second = await app.inject({
    method: 'POST',
    url: '/v1/images/upload',
    payload: { urls: [`${origin.url}/img/3.png`] },
  })
  assert.equal(second.statusCode, 503)
  assert.equal(second.json().error, 'queue_full')
  assert.ok(Number(second.headers['retry-after']) > 0)
  assert.equal((await service.store.stats()).jobs, 1)
  await service.queue.onIdle()
  assert.equal((await service.store.stats()).pendingItems, 0)
  const third = await app.inject({
    method: 'POST',
    url: '/v1/images/upload',
    payload: { urls: [`${origin.url}/img/3.png`] },
  })
  assert.equal(third.statusCode, 202, 'room again once the queue drained')
})
