import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, test } from 'node:test'
import { Budgets } from '../../src/budgets.ts'
import { createImgurClient, type ImgurClientOptions } from '../../src/imgur/client.ts'
import { classic, type FakeImgur, formOf, json, type Reply, startFakeImgur, success } from './fake-imgur.ts'

const CLIENT_ID = 'cfg0client0id0abc'
const JOB_CLIENT_ID = 'job0client0id0xyz'
const NOW = 1_700_000_000_000
const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47])
const input = { bytes: PNG, mime: 'image/png', filename: 'cat.png' }
const hash = (id: string) => createHash('sha256').update(id).digest('hex').slice(0, 12)

const open: Array<{ close(): Promise<void> }> = []
after(() => Promise.all(open.map((thing) => thing.close())))

async function setup(
  respond: (request: FakeImgur['seen'][number]) => Reply,
  options: Partial<ImgurClientOptions> = {},
) {
  const imgur = await startFakeImgur(respond)
  const client = createImgurClient({
    apiUrl: imgur.url,
    clientId: CLIENT_ID,
    timeoutMs: 2000,
    userAgent: 'imgur-upload-test/1',
    now: () => NOW,
    ...options,
  })
  open.push(imgur, client)
  return { imgur, client }
}

test('uploads the bytes as a multipart file with the configured Client-ID', async () => {
  const { imgur, client } = await setup(() => success())
  const uploaded = await client.upload(input)
  assert.deepEqual(uploaded, {
    id: 'AbC1234',
    link: 'https://i.imgur.com/AbC1234.png',
    deletehash: 'dEl3t3h4sh12345',
    type: 'image/png',
    size: 4,
  })
  const [request] = imgur.seen
  assert.ok(request)
  assert.equal(request.method, 'POST')
  assert.equal(request.path, '/3/image')
  assert.equal(request.headers.authorization, `Client-ID ${CLIENT_ID}`)
  assert.equal(request.headers['user-agent'], 'imgur-upload-test/1')
  assert.match(String(request.headers['content-type']), /^multipart\/form-data; boundary=/)
  const form = await formOf(request)
  assert.deepEqual([...form.keys()].sort(), ['image', 'type'])
  assert.equal(form.get('type'), 'file')
  assert.equal(form.get('url'), null)
  const image = form.get('image')
  assert.ok(image instanceof Blob && 'name' in image, 'image must be sent as a file')
  assert.equal(image.name, 'cat.png')
  assert.equal(image.type, 'image/png')
  assert.deepEqual(new Uint8Array(await image.arrayBuffer()), PNG)
})

test("a job's own client id replaces the configured one, and budgets are keyed by its hash", async () => {
  const { imgur, client } = await setup(() => ({
    ...(success() as Exclude<Reply, string>),
    headers: {
      'x-ratelimit-clientlimit': '12500',
      'x-ratelimit-clientremaining': '12490',
      'x-ratelimit-clientreset': '3600',
    },
  }))
  await client.upload({ ...input, clientId: JOB_CLIENT_ID })
  assert.equal(imgur.seen[0]?.headers.authorization, `Client-ID ${JOB_CLIENT_ID}`)
  assert.equal(client.credentialKey(JOB_CLIENT_ID), `client:${hash(JOB_CLIENT_ID)}`)
  assert.equal(client.credentialKey(), `client:${hash(CLIENT_ID)}`)
  assert.deepEqual(client.budgets.snapshot(), [
    {
      key: `client:${hash(JOB_CLIENT_ID)}`,
      client: { limit: 12_500, remaining: 12_490, resetAt: NOW + 3_600_000 },
      inFlight: 0,
    },
  ])
})

test('the injected budgets receive every reading, bounded to the most recently used credentials', async () => {
  const headers = { 'x-ratelimit-clientremaining': '12490', 'x-ratelimit-clientreset': '3600' }
  const budgets = new Budgets({ maxEntries: 2 })
  const { client } = await setup(() => ({ ...(success() as Exclude<Reply, string>), headers }), { budgets })
  assert.equal(client.budgets, budgets)
  for (const clientId of ['job-id-1', 'job-id-2', 'job-id-3']) await client.upload({ ...input, clientId })
  assert.deepEqual(
    client.budgets.snapshot().map((entry) => entry.key),
    [`client:${hash('job-id-3')}`, `client:${hash('job-id-2')}`],
  )
})

test('a 200 that is not an upload is a retryable bad response, never a success', async () => {
  for (const body of [
    '<html>ok</html>',
    JSON.stringify({ data: { id: 'x', deletehash: 'y' }, success: true }),
  ]) {
    const { client } = await setup(() => ({ status: 200, body }))
    await assert.rejects(client.upload(input), { code: 'imgur_bad_response', retryable: true })
  }
})

const failures: Array<[string, Reply, string, boolean]> = [
  [
    '400 file type',
    json(400, { data: { error: { code: 1003, message: 'File type invalid (1)' } } }),
    'imgur_rejected',
    false,
  ],
  ['413', { status: 413, body: '' }, 'imgur_too_large', false],
  ['401', classic(401, 'Authentication required'), 'imgur_auth', false],
  ['403 client id', classic(403, 'Invalid client_id'), 'imgur_client_id_refused', false],
  [
    '403 over capacity',
    classic(403, 'Imgur is temporarily over capacity. Please try again later.'),
    'imgur_over_capacity',
    true,
  ],
  [
    'HTML 503',
    {
      status: 503,
      headers: { 'content-type': 'text/html' },
      body: '<html><head><title>503 first byte timeout</title></head></html>',
    },
    'imgur_unavailable',
    true,
  ],
  ['empty 503', { status: 503 }, 'imgur_unavailable', true],
]
for (const [name, reply, code, retryable] of failures) {
  test(`an Imgur ${name} fails the upload as ${code}`, async () => {
    const { client } = await setup(() => reply)
    await assert.rejects(client.upload(input), { code, retryable })
  })
}

test('a 429 records the exhausted budget and blocks the key until its reset', async () => {
  const { client } = await setup(() =>
    json(
      429,
      { errors: [{ code: '429', status: 'Too Many Requests', detail: 'Too Many Requests' }] },
      {
        'x-post-rate-limit-limit': '1250',
        'x-post-rate-limit-remaining': '0',
        'x-post-rate-limit-reset': '900',
      },
    ),
  )
  await assert.rejects(client.upload(input), {
    code: 'imgur_rate_limited',
    retryable: true,
    retryAfterMs: 900_000,
  })
  const key = client.credentialKey()
  assert.deepEqual(client.budgets.reserve(key, NOW), { ok: false, waitMs: 900_000, resetAt: NOW + 900_000 })
  assert.equal(client.budgets.snapshot().find((entry) => entry.key === key)?.blockedUntil, NOW + 900_000)
})

test('a connection reset is a retryable network failure with the raw error as cause', async () => {
  const { client } = await setup(() => 'reset')
  const error = await client.upload(input).catch((caught: unknown) => caught)
  assert.ok(error instanceof Error && 'code' in error)
  assert.equal(error.code, 'imgur_network')
  assert.equal((error as { retryable?: boolean }).retryable, true)
  assert.ok(error.cause instanceof Error)
})

test('a silent Imgur hits the deadline as imgur_timeout', async () => {
  const { client } = await setup(() => 'hang', { timeoutMs: 150 })
  await assert.rejects(client.upload(input), { code: 'imgur_timeout', retryable: true })
})

test("the caller's abort cancels the upload in flight", async () => {
  const controller = new AbortController()
  const { client } = await setup(() => {
    controller.abort()
    return 'hang'
  })
  await assert.rejects(client.upload({ ...input, signal: controller.signal }), {
    code: 'cancelled',
    retryable: false,
  })
})

test('without any credential nothing is sent', async () => {
  const { imgur, client } = await setup(() => success(), { clientId: undefined })
  await assert.rejects(client.upload(input), { code: 'imgur_no_credentials', retryable: false })
  assert.equal(imgur.seen.length, 0)
  assert.equal(client.credentialKey(), 'none')
})

test('an error echoing the client id does not leak it', async () => {
  const { client } = await setup((request) =>
    classic(403, `Invalid client_id ${request.headers.authorization}`),
  )
  const error = (await client
    .upload({ ...input, clientId: JOB_CLIENT_ID })
    .catch((caught: unknown) => caught)) as Error
  assert.equal((error as { code?: string }).code, 'imgur_client_id_refused')
  assert.ok(!error.message.includes(JOB_CLIENT_ID) && !error.message.includes(CLIENT_ID), error.message)
  assert.match(error.message, /\[redacted\]/)
})

test('construction rejects a bad apiUrl or timeout with the exact option named', () => {
  assert.throws(() => createImgurClient({ apiUrl: 'ftp://x', timeoutMs: 1, userAgent: 'x' }), /`apiUrl`/)
  assert.throws(
    () => createImgurClient({ apiUrl: 'http://x', timeoutMs: 0, userAgent: 'x' }),
    /`timeoutMs` to be an integer >= 1, got `0`/,
  )
})
