import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { mov, mp4, webm } from './helpers/formats.ts'
import { assertPartition, startService } from './helpers/service.ts'

const sha256 = (chunks: Iterable<Buffer>) => {
  const hash = createHash('sha256')
  for (const chunk of chunks) hash.update(chunk)
  return hash.digest('hex')
}

test('MP4, MOV and WebM go to the `video` field, streamed, and the status gives Imgur’s video links', async (t) => {
  const { origin, sandbox, run } = await startService(t, { env: { MAX_IMAGE_BYTES: '100000' } })
  origin.put('/clip.mov', mov(), 'video/quicktime')
  origin.put('/clip.webm', webm(), 'video/webm')
  const urls = [
    `${origin.url}/video/2000000.mp4`,
    `${origin.url}/video/300000.mp4?chunked`,
    `${origin.url}/clip.mov`,
    `${origin.url}/clip.webm`,
  ]
  const body = await run(urls)
  assertPartition(body, urls)
  assert.deepEqual(
    body.items.map((item) => item.state),
    ['complete', 'complete', 'complete', 'complete'],
  )
  const records = body.items.map((item) => sandbox.uploads.find((upload) => upload.link === item.link))
  assert.deepEqual(
    records.map((record) => [record?.field, record?.type]),
    [
      ['video', 'video/mp4'],
      ['video', 'video/mp4'],
      ['video', 'video/quicktime'],
      ['video', 'video/webm'],
    ],
  )
  // Every byte arrived, in order, through a request that was never held whole.
  assert.equal(records[0]?.sha256, sha256(mp4(2_000_000)))
  assert.equal(records[1]?.sha256, sha256(mp4(300_000)))
  assert.ok(body.items.every((item) => item.link?.endsWith('.mp4')))
  const served = await fetch(body.items[2]?.link ?? '')
  assert.equal(served.status, 200)
  assert.deepEqual(Buffer.from(await served.arrayBuffer()), mov())
})

test('a video over MAX_VIDEO_BYTES fails at cap+1, declared or streamed, and nothing is uploaded', async (t) => {
  const { origin, sandbox, run } = await startService(t, {
    env: { MAX_IMAGE_BYTES: '10000', MAX_DOWNLOAD_BYTES: '10000', MAX_VIDEO_BYTES: '300000' },
  })
  const body = await run([
    `${origin.url}/video/300000.mp4?chunked`,
    `${origin.url}/video/300001.mp4`,
    `${origin.url}/video/300001.mp4?chunked`,
  ])
  const [exact, declared, streamed] = body.items
  assert.equal(exact?.state, 'complete')
  assert.deepEqual(declared?.reason, {
    code: 'download_too_large',
    message: 'file is larger than the limits (9.8 KiB for images, 293 KiB for videos)',
  })
  assert.deepEqual(streamed?.reason, {
    code: 'download_too_large',
    message: 'video is larger than the 293 KiB limit',
  })
  assert.equal(sandbox.uploads.length, 1)
  // The streamed one had started uploading: that request was cut off, never answered as a success.
  assert.equal(sandbox.requests.filter((request) => request.status === 200).length, 1)
})

test('with MAX_DOWNLOAD_BYTES above MAX_VIDEO_BYTES, a video declaring more than its cap never starts an upload', async (t) => {
  const { origin, sandbox, run } = await startService(t, {
    env: {
      MAX_IMAGE_BYTES: '10000',
      MAX_DOWNLOAD_BYTES: '1000000',
      MAX_VIDEO_BYTES: '300000',
      VIDEO_TIMEOUT_MS: '10000',
      RETRY_MAX_ATTEMPTS: '1',
    },
  })
  // The origin sends 100 KB of it and holds the connection: a video streamed to Imgur would
  // wait there until VIDEO_TIMEOUT_MS and fail as download_timeout.
  const body = await run([`${origin.url}/video/300000.mp4`, `${origin.url}/video/600000.mp4?stall=100000`])
  const [exact, declared] = body.items
  assert.equal(exact?.state, 'complete')
  assert.deepEqual(declared?.reason, {
    code: 'download_too_large',
    message: 'video is larger than the 293 KiB limit',
  })
  assert.equal(sandbox.requests.length, 1, 'only the video within its cap reached Imgur')
})

test('an origin dropping the connection mid-video fails the item; the half-sent upload is not counted', async (t) => {
  const { origin, sandbox, run } = await startService(t, { env: { RETRY_MAX_ATTEMPTS: '1' } })
  const body = await run([
    `${origin.url}/video/400000.mp4?reset=200000`,
    `${origin.url}/video/400000.mp4?chunked&reset=200000`,
  ])
  for (const item of body.items) {
    assert.equal(item.state, 'failed')
    assert.equal(item.reason?.code, 'download_truncated')
  }
  assert.equal(sandbox.uploads.length, 0)
  assert.equal(sandbox.requests.length, 0, 'no upload request was ever answered')
})

test('a retryable Imgur failure downloads and streams the video again', async (t) => {
  const { origin, sandbox, run } = await startService(t)
  sandbox.script('server-error')
  const body = await run([`${origin.url}/video/200000.mp4`])
  assert.equal(body.items[0]?.state, 'complete')
  assert.equal(body.items[0]?.attempts, 2)
  assert.equal(origin.hits.get('/video/200000.mp4'), 2)
  assert.equal(sandbox.uploads[0]?.sha256, sha256(mp4(200_000)))
})

test('Imgur cutting the upload off mid-video fails it with the network reason', async (t) => {
  const { origin, sandbox, run } = await startService(t, { env: { RETRY_MAX_ATTEMPTS: '1' } })
  sandbox.script('reset')
  const body = await run([`${origin.url}/video/5000000.mp4`])
  assert.equal(body.items[0]?.reason?.code, 'imgur_network')
  assert.equal(sandbox.uploads.length, 0)
})

test('with MAX_VIDEO_BYTES=0 videos are refused by their first bytes', async (t) => {
  const { origin, sandbox, run } = await startService(t, { env: { MAX_VIDEO_BYTES: '0' } })
  const body = await run([`${origin.url}/video/200000.mp4`])
  assert.deepEqual(body.items[0]?.reason, {
    code: 'unsupported_format',
    message: 'MP4 videos are not accepted: video uploads are off',
  })
  assert.equal(sandbox.requests.length, 0)
})
