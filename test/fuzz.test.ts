import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { ServiceError } from '../src/errors.ts'
import { startService } from './helpers/service.ts'

// No generated URL may be dialled: every download fails at once, as if every host were blocked.
const blocked = async (): Promise<never> => {
  throw new ServiceError('download_blocked', 'blocked: tests never dial out')
}
const offline = { open: blocked, close: async () => {} }

const key = fc.oneof(
  fc.constantFrom('urls', 'clientId', '__proto__', 'constructor', 'prototype', 'toString', ''),
  fc.string(),
)
const weird = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'grapheme-composite' }),
  fc.constantFrom(
    '\u0000',
    '\ud800',
    '\u202e',
    'https://xn--80ak6aa92e.com/a.png',
    'http://[::1]/',
    'http://0x7f.1/',
  ),
)
const urlish = fc.oneof(fc.webUrl({ withFragments: true, withQueryParameters: true }), weird)
const value = fc.letrec((tie) => ({
  any: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    weird,
    urlish,
    fc.array(tie('any'), { maxLength: 5 }),
    fc.dictionary(key, tie('any'), { maxKeys: 5 }),
  ),
})).any
const body = fc.oneof(
  value,
  fc.record({ urls: fc.array(urlish, { maxLength: 20 }) }),
  fc.record({ urls: fc.array(fc.oneof(urlish, value), { minLength: 1, maxLength: 10 }), clientId: value }),
  fc.record(
    { urls: fc.array(urlish, { minLength: 1, maxLength: 3 }), extra: value },
    { requiredKeys: ['urls'] },
  ),
  fc.array(urlish, { minLength: 1000, maxLength: 1500 }).map((urls) => ({ urls })),
)
const deep = fc.integer({ min: 1, max: 20_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`)

test('thousands of random and adversarial bodies: never a 5xx, always a JSON error or a 202', async (t) => {
  // Thousands of submissions from one address: the limits would answer 429 long before the end.
  const { app } = await startService(t, {
    env: { SUBMIT_RATE_LIMIT: '1000000', DAILY_URL_QUOTA: '0' },
    overrides: { downloader: offline },
  })
  const post = async (payload: string, contentType = 'application/json') => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/images/upload',
      payload,
      headers: { 'content-type': contentType },
    })
    assert.ok(
      response.statusCode < 500,
      `${response.statusCode} for ${payload.slice(0, 200)}: ${response.body}`,
    )
    const answer = response.json()
    if (response.statusCode === 202) assert.equal(typeof answer.jobId, 'string')
    else {
      assert.ok([400, 413, 415].includes(response.statusCode), String(response.statusCode))
      assert.equal(typeof answer.error, 'string')
      assert.equal(typeof answer.message, 'string')
    }
    return response.statusCode
  }
  const seen = new Set<number>()
  await fc.assert(
    fc.asyncProperty(body, async (b) => {
      seen.add(await post(JSON.stringify(b) ?? 'null'))
    }),
    { numRuns: 2000 },
  )
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.string({ unit: 'binary' }), deep),
      fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-16'),
      async (raw, type) => {
        seen.add(await post(raw, type))
      },
    ),
    { numRuns: 1000 },
  )
  assert.ok(seen.has(202) && seen.has(400) && seen.has(415), `statuses seen: ${[...seen]}`)
})
