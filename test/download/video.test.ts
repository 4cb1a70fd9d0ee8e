import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { DownloadOptions, Opened } from '../../src/download/download.ts'
import { useDownloaders } from '../helpers/downloaders.ts'
import { mp4, webp } from '../helpers/formats.ts'
import { png } from '../helpers/images.ts'

const BASE: DownloadOptions = {
  maxBytes: 64 * 1024,
  maxVideoBytes: 300_000,
  timeoutMs: 10_000,
  maxRedirects: 5,
  allowPrivateNetworks: true,
  userAgent: 'imgur-upload-service/0.1 (+test)',
}

const fixture = useDownloaders(BASE)
const { downloader } = fixture

async function drain(opened: Opened): Promise<Buffer> {
  assert.equal(opened.kind, 'video')
  if (opened.kind !== 'video') throw new Error('not a video')
  const parts: Buffer[] = []
  for await (const chunk of opened.stream.chunks) parts.push(chunk)
  return Buffer.concat(parts)
}

describe('open(): decided after the first bytes', () => {
  test('an image is buffered and typed, including formats to convert', async () => {
    const opened = await downloader().open(`${fixture.origin.url}/img/3.png`)
    assert.equal(opened.kind, 'file')
    assert.deepEqual(opened.kind === 'file' && opened.bytes, png(3))
    assert.equal(opened.type.kind, 'image')
    fixture.origin.put('/photo.webp', await webp(), 'image/webp')
    const converted = await downloader().open(`${fixture.origin.url}/photo.webp`)
    assert.deepEqual([converted.type.kind, converted.type.mime], ['convertible', 'image/webp'])
  })
  test('a video larger than the image cap is streamed whole, with its declared length', async () => {
    const opened = await downloader().open(`${fixture.origin.url}/video/200000.mp4`)
    assert.equal(opened.kind === 'video' && opened.length, 200_000)
    assert.deepEqual(opened.type, { kind: 'video', mime: 'video/mp4', ext: 'mp4', name: 'MP4' })
    assert.deepEqual(await drain(opened), Buffer.concat([...mp4(200_000)]))
  })
  test('a chunked video has no length and is streamed all the same', async () => {
    const opened = await downloader().open(`${fixture.origin.url}/video/200000.mp4?chunked`)
    assert.equal(opened.kind === 'video' && opened.length, undefined)
    assert.equal((await drain(opened)).length, 200_000)
  })
})

describe('video limits', () => {
  test('exactly the cap passes; cap+1 fails while streaming, never truncated', async () => {
    assert.equal(
      (await drain(await downloader().open(`${fixture.origin.url}/video/300000.mp4?chunked`))).length,
      300_000,
    )
    const opened = await downloader().open(`${fixture.origin.url}/video/300001.mp4?chunked`)
    await assert.rejects(drain(opened), {
      code: 'download_too_large',
      message: 'video is larger than the 293 KiB limit',
    })
  })
  test('a declared length over every cap fails before the body is read', () =>
    assert.rejects(downloader().open(`${fixture.origin.url}/video/300001.mp4`), {
      code: 'download_too_large',
      message: 'file is larger than the limits (64 KiB for images, 293 KiB for videos)',
    }))
  test('a declared length over the video cap but under the image one fails before the body is read', async () => {
    const path = '/video/600000.mp4'
    const cutOff = fixture.origin.waitForClose(path)
    // The origin stops after 100 KB and holds the connection: reading on would end in
    // download_timeout, and streaming would hand back a video instead of refusing it.
    await assert.rejects(
      downloader({ maxBytes: 1_000_000 }).open(`${fixture.origin.url}${path}?stall=100000`),
      { code: 'download_too_large', message: 'video is larger than the 293 KiB limit' },
    )
    await cutOff
  })
  test('an origin reset mid-video is a truncation', async () => {
    const opened = await downloader().open(`${fixture.origin.url}/video/200000.mp4?reset=100000`)
    await assert.rejects(drain(opened), { code: 'download_truncated', retryable: true })
  })
  test('a stalled video fails at the video deadline, not the image one', async () => {
    const d = downloader({ timeoutMs: 100, videoTimeoutMs: 400 })
    const opened = await d.open(`${fixture.origin.url}/video/200000.mp4?stall=100000`)
    await new Promise((resolve) => setTimeout(resolve, 150)) // past the image deadline: still fine
    const started = performance.now()
    await assert.rejects(drain(opened), {
      code: 'download_timeout',
      message: 'download did not finish within 400 ms',
    })
    assert.ok(performance.now() - started < 2000)
  })
  test('cancel() ends a stalled video at once', async () => {
    const opened = await downloader().open(`${fixture.origin.url}/video/200000.mp4?stall=100000`)
    assert.equal(opened.kind, 'video')
    if (opened.kind !== 'video') return
    const reading = drain(opened)
    setTimeout(() => opened.stream.cancel(), 50)
    await assert.rejects(reading)
  })
  test('with videos off, a video is refused by its first bytes', () =>
    assert.rejects(downloader({ maxVideoBytes: 0 }).open(`${fixture.origin.url}/video/200000.mp4?chunked`), {
      code: 'unsupported_format',
      message: 'MP4 videos are not accepted: video uploads are off',
    }))
  test('download() (images only) refuses a video', () =>
    assert.rejects(downloader().download(`${fixture.origin.url}/video/2000.mp4`), {
      code: 'unsupported_format',
      message: 'MP4 is a video, not an image',
    }))
})
