import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, test } from 'node:test'
import { ServiceError } from '../../src/errors.ts'
import { createImgurClient, type VideoInput } from '../../src/imgur/client.ts'
import { multipartStream } from '../../src/imgur/payload.ts'
import { classic, formOf, startFakeImgur, success } from './fake-imgur.ts'

const open: Array<{ close(): Promise<void> }> = []
after(() => Promise.all(open.map((thing) => thing.close())))

const VIDEO = Buffer.concat([
  Buffer.from('\0\0\0\x18ftypisom\0\0\x02\0isommp41', 'latin1'),
  Buffer.alloc(100_000, 7),
])

async function* chunksOf(bytes: Buffer, size = 16_384, failAfter = Number.POSITIVE_INFINITY) {
  for (let at = 0; at < bytes.length; at += size) {
    if (at >= failAfter)
      throw new ServiceError('download_truncated', 'origin closed the connection', { retryable: true })
    yield bytes.subarray(at, at + size)
  }
}

const input = (over: Partial<VideoInput> = {}): VideoInput => ({
  chunks: chunksOf(VIDEO),
  length: VIDEO.length,
  mime: 'video/mp4',
  filename: 'video.mp4',
  ...over,
})

async function client(reply = () => success(), extra = {}) {
  const imgur = await startFakeImgur(reply)
  const c = createImgurClient({
    apiUrl: imgur.url,
    clientId: 'cid0',
    timeoutMs: 5000,
    userAgent: 't',
    ...extra,
  })
  open.push(imgur, c)
  return { imgur, client: c }
}

test('the multipart body is exactly as long as announced, and parses back to the same fields', async () => {
  const { body, headers } = multipartStream(
    { type: 'file' },
    {
      field: 'video',
      filename: 'video.mp4',
      mime: 'video/mp4',
      chunks: chunksOf(VIDEO),
      length: VIDEO.length,
    },
  )
  const parts: Uint8Array[] = []
  for await (const part of body) parts.push(part)
  const bytes = Buffer.concat(parts)
  assert.equal(headers['content-length'], String(bytes.length))
  const form = await formOf({ method: 'POST', path: '/', headers, body: bytes })
  assert.equal(form.get('type'), 'file')
  const file = form.get('video') as File
  assert.equal(file.name, 'video.mp4')
  assert.equal(file.type, 'video/mp4')
  assert.deepEqual(Buffer.from(await file.arrayBuffer()), VIDEO)
})

test('every body has a boundary of its own, random and long enough not to occur in the file', () => {
  const file = {
    field: 'image',
    filename: 'image.png',
    mime: 'image/png',
    chunks: chunksOf(VIDEO),
    length: 1,
  }
  const boundaries = Array.from({ length: 50 }, () => {
    const type = multipartStream({}, file).headers['content-type']
    return /; boundary=(.+)$/.exec(type)?.[1]
  })
  assert.equal(new Set(boundaries).size, 50)
  for (const boundary of boundaries) assert.match(String(boundary), /^----imgur-upload-[0-9a-f-]{36}$/)
})

test('a video is streamed in the `video` field with type=file and an exact Content-Length', async () => {
  const { imgur, client: c } = await client()
  const uploaded = await c.uploadVideo(input())
  assert.equal(uploaded.link, 'https://i.imgur.com/AbC1234.png')
  const [seen] = imgur.seen
  assert.equal(seen?.headers['content-length'], String(seen?.body.length))
  assert.equal(seen?.headers['transfer-encoding'], undefined)
  const form = await formOf(seen as NonNullable<typeof seen>)
  assert.equal(form.get('type'), 'file')
  assert.equal(form.get('image'), null)
  assert.deepEqual(Buffer.from(await (form.get('video') as File).arrayBuffer()), VIDEO)
})

test('without a known length the upload is sent chunked', async () => {
  const { imgur, client: c } = await client()
  await c.uploadVideo(input({ length: undefined }))
  assert.equal(imgur.seen[0]?.headers['content-length'], undefined)
  assert.equal(imgur.seen[0]?.headers['transfer-encoding'], 'chunked')
})

test("a download failing mid-stream aborts the upload with the download's reason", async () => {
  let complete = 0
  const requests: Array<Promise<boolean>> = []
  const server = createServer((req, res) => {
    req.on('data', () => {})
    req.on('end', () => {
      complete += 1
      res.end('{}')
    })
    req.on('error', () => {})
    requests.push(new Promise((resolve) => req.on('close', () => resolve(req.complete))))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  open.push({ close: () => new Promise((resolve) => server.close(() => resolve())) })
  const c = createImgurClient({
    apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    clientId: 'cid0',
    timeoutMs: 5000,
    userAgent: 't',
  })
  open.push(c)
  for (const length of [VIDEO.length, undefined]) {
    await assert.rejects(c.uploadVideo(input({ chunks: chunksOf(VIDEO, 16_384, 50_000), length })), {
      code: 'download_truncated',
    })
  }
  // A request cut off early may not even reach the server's handler; none ever completes.
  assert.ok(
    (await Promise.all(requests)).every((finished) => !finished),
    'every request was cut off',
  )
  assert.equal(complete, 0, 'Imgur never received a whole body')
})

test('Imgur refusing a video as too large says the video limit', async () => {
  const { client: c } = await client(() => classic(400, 'File is over the size limit'))
  await assert.rejects(c.uploadVideo(input()), {
    code: 'imgur_too_large',
    message: 'Imgur refused the video as too large; its API takes videos up to 200 MB',
  })
})

test('an expired account token during a video upload is refreshed, and the item retried (the stream is spent)', async () => {
  let issued = 0
  const imgur = await startFakeImgur((request) => {
    if (request.path === '/oauth2/token') {
      return {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          access_token: `access-${issued++}`,
          expires_in: 3600,
          refresh_token: 'r0r0r0r0',
        }),
      }
    }
    return request.headers.authorization === 'Bearer access-0'
      ? classic(403, 'The access token provided is invalid.')
      : success()
  })
  const c = createImgurClient({
    apiUrl: imgur.url,
    clientId: 'acct0client',
    clientSecret: 'acct0secret',
    refreshToken: 'r0r0r0r0',
    timeoutMs: 5000,
    userAgent: 't',
  })
  open.push(imgur, c)
  await assert.rejects(c.uploadVideo(input()), { code: 'imgur_token_invalid', retryable: true })
  assert.equal(
    imgur.seen.filter((r) => r.path === '/3/image').length,
    1,
    'a spent stream is never sent again',
  )
  const uploaded = await c.uploadVideo(input())
  assert.equal(uploaded.id, 'AbC1234')
  assert.equal(imgur.seen.at(-1)?.headers.authorization, 'Bearer access-1')
})
