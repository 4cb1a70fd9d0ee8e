import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { describe, test } from 'node:test'
import type { DownloadOptions } from '../../src/download/download.ts'
import type { ServiceError } from '../../src/errors.ts'
import { useDownloaders } from '../helpers/downloaders.ts'
import { png } from '../helpers/images.ts'
import { startOrigin } from '../helpers/origin.ts'

const CAP = 64 * 1024
const BASE: DownloadOptions = {
  maxBytes: CAP,
  timeoutMs: 10_000,
  maxRedirects: 5,
  allowPrivateNetworks: true,
  userAgent: 'imgur-upload-service/0.1 (+test)',
}

const fixture = useDownloaders(BASE)
const { downloader } = fixture

async function fails(promise: Promise<unknown>, code: string, retryable: boolean, message?: string) {
  await assert.rejects(promise, (error: ServiceError) => {
    assert.equal(error.name, 'ServiceError', String(error))
    assert.equal(error.code, code, error.message)
    assert.equal(error.retryable, retryable)
    if (message !== undefined) assert.equal(error.message, message)
    assert.doesNotMatch(error.message, /127\.0\.0\.1|ECONN/)
    return true
  })
}

const TOO_LARGE = 'image is larger than the 64 KiB limit'

describe('byte cap', () => {
  test('a body of exactly the cap is accepted, whole', async () => {
    const result = await downloader().download(`${fixture.origin.url}/sized/${CAP}.png`)
    assert.deepEqual(result.bytes, png(CAP, { padTo: CAP }))
  })
  test('a declared Content-Length of cap+1 fails', () =>
    fails(
      downloader().download(`${fixture.origin.url}/sized/${CAP + 1}.png`),
      'download_too_large',
      false,
      TOO_LARGE,
    ))
  test('a declared Content-Length over the cap fails before the body is read', { timeout: 5000 }, () =>
    // The drip never sends more than a few bytes: reading the body would end in a timeout instead.
    fails(
      downloader().download(`${fixture.origin.url}/drip?length=50000000`),
      'download_too_large',
      false,
      TOO_LARGE,
    ),
  )
  test('the cap message is formatted for people', () =>
    fails(
      downloader({ maxBytes: 10 * 1024 * 1024 }).download(`${fixture.origin.url}/drip?length=50000000`),
      'download_too_large',
      false,
      'image is larger than the 10 MiB limit',
    ))
  test('a chunked body (no Content-Length) of exactly the cap is accepted', async () => {
    const result = await downloader().download(`${fixture.origin.url}/chunked-big?bytes=${CAP}`)
    assert.deepEqual(result.bytes, png(CAP, { padTo: CAP }))
  })
  test('a chunked body of cap+1 fails', () =>
    fails(
      downloader().download(`${fixture.origin.url}/chunked-big?bytes=${CAP + 1}`),
      'download_too_large',
      false,
      TOO_LARGE,
    ))
  test('a huge chunked body fails at the cap, not at its end', () =>
    fails(
      downloader().download(`${fixture.origin.url}/chunked-big?bytes=${2 ** 30}`),
      'download_too_large',
      false,
      TOO_LARGE,
    ))
})

describe('compressed anyway', () => {
  test('a gzip body under the cap is decoded', async () => {
    const result = await downloader().download(`${fixture.origin.url}/gzip-bomb?bytes=5000`)
    assert.deepEqual(result.bytes, png(5000, { padTo: 5000 }))
    assert.equal(fixture.origin.headers.get('/gzip-bomb')?.['accept-encoding'], 'identity')
  })
  test('a gzip bomb is judged by its decoded size', () =>
    // ~1 GiB of zeros gzips to ~1 MiB on the wire; the decoded count trips at cap+1.
    fails(
      downloader().download(`${fixture.origin.url}/gzip-bomb?bytes=${2 ** 30}`),
      'download_too_large',
      false,
      TOO_LARGE,
    ))
  test('decoded cap+1 fails even when the wire bytes are far below the cap', () =>
    fails(
      downloader().download(`${fixture.origin.url}/gzip-bomb?bytes=${CAP + 1}`),
      'download_too_large',
      false,
      TOO_LARGE,
    ))
})

describe('lying Content-Length', () => {
  test('shorter than the body: exactly Content-Length bytes are read', async () => {
    const result = await downloader().download(`${fixture.origin.url}/lying-length/short`)
    assert.deepEqual(result.bytes, png(2))
  })
  test('longer than the body, then the connection closes: truncated, never uploaded', () =>
    fails(
      downloader().download(`${fixture.origin.url}/lying-length/long`),
      'download_truncated',
      true,
      'origin closed the connection before the body was complete',
    ))
})

describe('deadline and cancellation', () => {
  test('a body dripping one byte a second fails at the total deadline', { timeout: 10_000 }, async () => {
    const started = performance.now()
    await fails(
      downloader({ timeoutMs: 300 }).download(`${fixture.origin.url}/drip`),
      'download_timeout',
      true,
      'download did not finish within 300 ms',
    )
    assert.ok(performance.now() - started < 5000)
  })
  test('a drip faster than bodyTimeout still fails at the total deadline', { timeout: 10_000 }, () =>
    // bodyTimeout resets on every chunk: only the total deadline can stop this one.
    fails(
      downloader({ timeoutMs: 500 }).download(`${fixture.origin.url}/drip?every=50`),
      'download_timeout',
      true,
      'download did not finish within 500 ms',
    ),
  )
  test('slow headers fail at the deadline', () =>
    fails(
      downloader({ timeoutMs: 300 }).download(`${fixture.origin.url}/slow-headers?ms=20000`),
      'download_timeout',
      true,
      'download did not finish within 300 ms',
    ))
  test('the deadline covers every redirect hop together', () =>
    fails(
      downloader({ timeoutMs: 300 }).download(
        `${fixture.origin.url}/redirect-to?url=${encodeURIComponent(`${fixture.origin.url}/slow-headers?ms=20000`)}`,
      ),
      'download_timeout',
      true,
    ))
  test("the caller's signal aborting mid-download is a cancellation, not a timeout", async () => {
    const controller = new AbortController()
    const arrived = fixture.origin.waitForRequest('/drip')
    const pending = downloader().download(`${fixture.origin.url}/drip`, controller.signal)
    await arrived
    controller.abort()
    await fails(pending, 'cancelled', false, 'download cancelled')
  })
  test("a download, done or failed, leaves no listener on the caller's signal", async () => {
    const item = new AbortController()
    await downloader().download(`${fixture.origin.url}/img/3.png`, item.signal)
    await fails(
      downloader({ timeoutMs: 300 }).download(`${fixture.origin.url}/slow-headers?ms=20000`, item.signal),
      'download_timeout',
      true,
    )
    assert.deepEqual(getEventListeners(item.signal, 'abort'), [])
  })
  test('an already aborted signal makes no request', async () => {
    const before = fixture.origin.requests
    await fails(
      downloader().download(`${fixture.origin.url}/img/1.png`, AbortSignal.abort()),
      'cancelled',
      false,
    )
    assert.equal(fixture.origin.requests, before)
  })
})

describe('network failures', () => {
  test('connection reset', () =>
    fails(
      downloader().download(`${fixture.origin.url}/reset`),
      'download_network',
      true,
      'connection reset by origin',
    ))
  test('connection refused', async () => {
    const gone = await startOrigin()
    await gone.close()
    await fails(
      downloader().download(`${gone.url}/img/1.png`),
      'download_network',
      true,
      'connection refused by origin',
    )
  })
})
