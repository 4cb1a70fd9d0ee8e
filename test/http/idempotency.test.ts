/** Idempotent submissions: the key table alone, then the whole service. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { request } from 'undici'
import { ServiceError } from '../../src/errors.ts'
import { type Answer, canonicalJson, IdempotencyKeys, parseKey } from '../../src/http/idempotency.ts'
import { offline } from '../helpers/downloaders.ts'
import { apiKeys, bearer } from '../helpers/keys.ts'
import { memoryOnly, startService } from '../helpers/service.ts'

const ANSWER: Answer = { statusCode: 202, location: '/v1/images/upload/1', body: '{"jobId":"1"}' }
const code = (expected: string, status: number) => (error: unknown) =>
  error instanceof ServiceError && error.code === expected && error.statusCode === status

function claimed(found: ReturnType<IdempotencyKeys['claim']>) {
  assert.ok('claim' in found, 'a new key is claimed')
  return found.claim
}

test('options are checked at construction with exact messages', () => {
  assert.throws(() => new IdempotencyKeys({ ttlMs: 0 }), /Expected `ttlMs` to be an integer >= 1, got `0`/)
  assert.throws(
    () => new IdempotencyKeys({ ttlMs: 1, maxKeys: 1.5 }),
    /Expected `maxKeys` to be an integer >= 1, got `1.5`/,
  )
})

test('a key is claimed once: replayed with the same body, 409 while answered, 422 with another body', () => {
  const keys = new IdempotencyKeys({ ttlMs: 1_000 })
  const claim = claimed(keys.claim('alice', 'k', { urls: ['a'], album: { title: 't', description: 'd' } }))
  assert.throws(
    () => keys.claim('alice', 'k', { urls: ['a'], album: { title: 't', description: 'd' } }),
    code('idempotency_request_in_progress', 409),
  )
  assert.throws(() => keys.claim('alice', 'k', { urls: ['b'] }), code('idempotency_key_reused', 422))
  claim.remember(ANSWER)
  // The same body with its keys in another order is the same body.
  const again = keys.claim('alice', 'k', { album: { description: 'd', title: 't' }, urls: ['a'] })
  assert.deepEqual(again, { replay: ANSWER })
  assert.throws(() => keys.claim('alice', 'k', { urls: ['a', 'b'] }), code('idempotency_key_reused', 422))
  claimed(keys.claim('bob', 'k', { urls: ['a'] }))
  assert.equal(keys.size, 2)
})

test('a forgotten claim (an error answer) leaves the key free; forgetting after remembering does nothing', () => {
  const keys = new IdempotencyKeys({ ttlMs: 1_000 })
  claimed(keys.claim('s', 'k', { urls: ['bad'] })).forget()
  assert.equal(keys.size, 0)
  const claim = claimed(keys.claim('s', 'k', { urls: ['good'] }))
  claim.remember(ANSWER)
  claim.forget()
  assert.deepEqual(keys.claim('s', 'k', { urls: ['good'] }), { replay: ANSWER })
})

test('keys expire after the TTL, and expired ones are dropped as new ones come', () => {
  let now = 0
  const keys = new IdempotencyKeys({ ttlMs: 1_000, now: () => now })
  claimed(keys.claim('s', 'old', { n: 1 })).remember(ANSWER)
  now = 999
  assert.deepEqual(keys.claim('s', 'old', { n: 1 }), { replay: ANSWER })
  now = 1_000
  claimed(keys.claim('s', 'old', { n: 2 })).remember(ANSWER)
  claimed(keys.claim('s', 'new', { n: 1 }))
  now = 2_000
  claimed(keys.claim('s', 'newer', { n: 1 }))
  // `old` expired and went; `new` is still being answered, so it stays.
  assert.equal(keys.size, 2)
})

test('memory is bounded: past maxKeys the oldest answered key goes, never one being answered', () => {
  const keys = new IdempotencyKeys({ ttlMs: 60_000, maxKeys: 2 })
  const busy = claimed(keys.claim('s', 'busy', {}))
  claimed(keys.claim('s', 'a', {})).remember(ANSWER)
  claimed(keys.claim('s', 'b', {})).remember(ANSWER)
  assert.equal(keys.size, 2)
  assert.throws(() => keys.claim('s', 'busy', {}), code('idempotency_request_in_progress', 409))
  claimed(keys.claim('s', 'a', {}))
  busy.remember(ANSWER)
  assert.deepEqual(keys.claim('s', 'busy', {}), { replay: ANSWER })
})

test('keys are 1 to 255 printable ASCII characters, bare or as the draft’s quoted string', () => {
  assert.equal(parseKey('8e03978e-40d5-43e8-bc93-6894a57f9324'), '8e03978e-40d5-43e8-bc93-6894a57f9324')
  assert.equal(parseKey('"abc"'), 'abc')
  assert.equal(parseKey('"a \\"b\\" \\\\ c"'), 'a "b" \\ c')
  assert.equal(parseKey('with space ~!'), 'with space ~!')
  assert.equal(parseKey('k'.repeat(255)), 'k'.repeat(255))
  for (const bad of ['', '""', 'k'.repeat(256), 'caf\u00e9', 'tab\there', 'nul\u0000', '\u{1F511}']) {
    assert.throws(() => parseKey(bad), code('invalid_idempotency_key', 400), JSON.stringify(bad))
  }
  assert.throws(() => parseKey(['a', 'b']), code('invalid_idempotency_key', 400))
})

test('the body identity ignores key order and whitespace but nothing else; deep nesting is refused', () => {
  assert.equal(canonicalJson({ b: [1, { d: 2, c: 'x' }], a: null }), '{"a":null,"b":[1,{"c":"x","d":2}]}')
  assert.notEqual(canonicalJson({ urls: ['a', 'b'] }), canonicalJson({ urls: ['b', 'a'] }))
  let deep: unknown = []
  for (let i = 0; i < 100_000; i += 1) deep = [deep]
  assert.throws(() => canonicalJson({ urls: deep }), code('invalid_body', 400))
})

const post = (key: string | undefined, urls: string[], headers: Record<string, string> = {}) => ({
  method: 'POST' as const,
  url: '/v1/images/upload',
  headers: { ...headers, ...(key !== undefined && { 'idempotency-key': key }) },
  payload: { urls },
})

test('a repeated submission replays the first answer, creates no job and spends no quota', async (t) => {
  const { app, service } = await startService(t, {
    env: { SUBMIT_RATE_LIMIT: '2' },
    overrides: { downloader: offline },
  })
  const urls = ['https://example.com/a.png', 'https://example.com/b.png']
  const first = await app.inject(post('order-42', urls))
  assert.equal(first.statusCode, 202)
  assert.equal(first.headers['idempotency-replayed'], undefined)
  for (let i = 0; i < 3; i += 1) {
    const again = await app.inject({
      ...post('order-42', []),
      // The same body, written differently.
      payload: `{ "urls" : ${JSON.stringify(urls)} }`,
      headers: { 'idempotency-key': 'order-42', 'content-type': 'application/json' },
    })
    assert.equal(again.statusCode, 202)
    assert.equal(again.body, first.body)
    assert.equal(again.headers.location, first.headers.location)
    assert.equal(again.headers['idempotency-replayed'], 'true')
    assert.match(String(again.headers['content-type']), /^application\/json/)
  }
  assert.equal((await service.store.stats()).jobs, 1)
  // The limit is 2 a minute: the replays spent none of it.
  assert.equal((await app.inject(post(undefined, ['https://example.com/c.png']))).statusCode, 202)
  assert.equal((await app.inject(post(undefined, ['https://example.com/d.png']))).statusCode, 429)
  // Past the limit, a replay still answers: it is not a submission.
  assert.equal((await app.inject(post('order-42', urls))).headers['idempotency-replayed'], 'true')
})

test('the same key with another body is 422; an invalid key is 400; neither makes a job', async (t) => {
  const { app, service } = await startService(t, { overrides: { downloader: offline } })
  assert.equal((await app.inject(post('k', ['https://example.com/a.png']))).statusCode, 202)
  const reused = await app.inject(post('k', ['https://example.com/other.png']))
  assert.equal(reused.statusCode, 422)
  assert.equal(reused.json().error, 'idempotency_key_reused')
  for (const key of ['', 'k'.repeat(256), 'caf\u00e9']) {
    const invalid = await app.inject(post(key, ['https://example.com/b.png']))
    assert.equal(invalid.statusCode, 400, key)
    assert.equal(invalid.json().error, 'invalid_idempotency_key', key)
  }
  assert.equal((await service.store.stats()).jobs, 1)
})

test('concurrent retries of one submission, over real connections, make one job', async (t) => {
  const { app, service } = await startService(t, { overrides: { downloader: offline } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const send = async () => {
    const response = await request(`${base}/v1/images/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'same' },
      body: JSON.stringify({ urls: ['https://example.com/a.png'] }),
    })
    const body = (await response.body.json()) as { jobId?: string; error?: string }
    return { status: response.statusCode, headers: response.headers, body }
  }
  const answers = await Promise.all(Array.from({ length: 8 }, send))
  assert.equal((await service.store.stats()).jobs, 1)
  const fresh = answers.filter((a) => a.status === 202 && a.headers['idempotency-replayed'] === undefined)
  assert.equal(fresh.length, 1)
  for (const answer of answers) {
    // Each retry either came after the first answer (a replay) or while it was being made (409).
    if (answer.status === 202) assert.equal(answer.body.jobId, fresh[0]?.body.jobId)
    else {
      assert.equal(answer.status, 409)
      assert.equal(answer.body.error, 'idempotency_request_in_progress')
      assert.equal(answer.headers['retry-after'], '1')
    }
  }
})

test('an error answer is not remembered: the client fixes the body and retries with the same key', async (t) => {
  const { app, service } = await startService(t, { overrides: { downloader: offline } })
  const bad = await app.inject(post('retry-me', ['not a url']))
  assert.equal(bad.statusCode, 400)
  assert.equal(bad.json().error, 'invalid_urls')
  const good = await app.inject(post('retry-me', ['https://example.com/a.png']))
  assert.equal(good.statusCode, 202)
  assert.equal(good.headers['idempotency-replayed'], undefined)

  // A full queue (503) is not remembered either.
  await service.queue.close(0)
  const refused = await app.inject(post('later', ['https://example.com/b.png']))
  assert.equal(refused.statusCode, 503)
  assert.equal((await app.inject(post('later', ['https://example.com/c.png']))).statusCode, 503)
})

test('after IDEMPOTENCY_TTL_MS the key is free again', {
  skip: memoryOnly(
    "the test moves the app's clock past the TTL; a fleet's keys expire on Redis's own clock (test/fleet/idempotency.test.ts waits for it)",
  ),
}, async (t) => {
  let now = Date.UTC(2026, 11, 1, 10, 0, 0)
  const { app, service } = await startService(t, {
    env: { IDEMPOTENCY_TTL_MS: '60000' },
    overrides: { downloader: offline },
    now: () => now,
  })
  const urls = ['https://example.com/a.png']
  const first = (await app.inject(post('k', urls))).json().jobId
  now += 59_999
  const replay = await app.inject(post('k', urls))
  assert.equal(replay.json().jobId, first)
  now += 1
  const fresh = await app.inject(post('k', urls))
  assert.equal(fresh.statusCode, 202)
  assert.equal(fresh.headers['idempotency-replayed'], undefined)
  assert.notEqual(fresh.json().jobId, first)
  assert.equal((await service.store.stats()).jobs, 2)
})

test('keys are scoped per API key, and per address without keys', async (t) => {
  const { keys, API_KEYS } = apiKeys('alice', 'bob')
  const keyed = await startService(t, { env: { API_KEYS }, overrides: { downloader: offline } })
  const urls = ['https://example.com/a.png']
  const alice = await keyed.app.inject(post('k', urls, bearer(keys.alice)))
  const bob = await keyed.app.inject(post('k', urls, bearer(keys.bob)))
  assert.equal(bob.statusCode, 202)
  assert.equal(bob.headers['idempotency-replayed'], undefined)
  assert.notEqual(bob.json().jobId, alice.json().jobId, "one key's job is never another's answer")
  // Bob's own body differs from Alice's without clashing with hers.
  const bobOther = await keyed.app.inject(post('k2', ['https://example.com/z.png'], bearer(keys.bob)))
  assert.equal(bobOther.statusCode, 202)
  const aliceAgain = await keyed.app.inject(post('k', urls, bearer(keys.alice)))
  assert.equal(aliceAgain.json().jobId, alice.json().jobId)
  assert.equal((await keyed.service.store.stats()).jobs, 3)

  const open = await startService(t, { overrides: { downloader: offline } })
  const from = (remoteAddress: string) =>
    open.app.inject({ ...post('k', urls), remoteAddress }).then((r) => r.json().jobId)
  const [one, other, oneAgain] = [await from('192.0.2.1'), await from('192.0.2.2'), await from('192.0.2.1')]
  assert.notEqual(one, other)
  assert.equal(oneAgain, one)
})
