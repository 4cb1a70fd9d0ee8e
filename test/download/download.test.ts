import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createDownloader, type DownloadOptions } from '../../src/download/download.ts'
import type { ServiceError } from '../../src/errors.ts'
import { useDownloaders } from '../helpers/downloaders.ts'
import { bmp, gif, jpeg, png, tiff } from '../helpers/images.ts'

const CAP = 64 * 1024
const BASE: DownloadOptions = {
  maxBytes: CAP,
  timeoutMs: 10_000,
  maxRedirects: 5,
  allowPrivateNetworks: true, // the origin is on loopback; SSRF rules are tested in ssrf.test.ts
  userAgent: 'imgur-upload-service/0.1 (+test)',
}

const fixture = useDownloaders(BASE)
const { downloader } = fixture

/** Asserts the download fails with `code`, `retryable` and (optionally) `message`. */
async function fails(
  promise: Promise<unknown>,
  expected: { code: string; retryable: boolean; message?: string | RegExp },
): Promise<void> {
  let caught: ServiceError | undefined
  await assert.rejects(promise, (error: ServiceError) => {
    caught = error
    return true
  })
  assert.ok(caught)
  assert.equal(caught.name, 'ServiceError', String(caught))
  assert.equal(caught.code, expected.code, caught.message)
  assert.equal(caught.retryable, expected.retryable)
  if (typeof expected.message === 'string') assert.equal(caught.message, expected.message)
  else if (expected.message) assert.match(caught.message, expected.message)
  assert.doesNotMatch(caught.message, /127\.0\.0\.1|:\d{4,5}\b|ECONN|errno/, 'no internal detail leaks')
}

describe('images', () => {
  const cases: Array<[string, Buffer, string, string]> = [
    ['/img/11.png', png(11), 'image/png', 'png'],
    ['/img/12.jpg', jpeg(12), 'image/jpeg', 'jpg'],
    ['/img/13.gif', gif(13), 'image/gif', 'gif'],
    ['/img/14.bmp', bmp(14), 'image/bmp', 'bmp'],
    ['/img/15.tiff', tiff(15), 'image/tiff', 'tiff'],
    ['/apng.png', png(1, { animated: true }), 'image/png', 'png'],
  ]
  for (const [path, bytes, mime, ext] of cases) {
    test(`${path} → ${mime}`, async () => {
      const result = await downloader().download(fixture.origin.url + path)
      assert.deepEqual(result, { bytes, url: fixture.origin.url + path, mime, ext })
    })
  }

  test('same-a and same-b serve identical bytes', async () => {
    const d = downloader()
    const a = await d.download(`${fixture.origin.url}/same-a.png`)
    const b = await d.download(`${fixture.origin.url}/same-b.png`)
    assert.deepEqual(a.bytes, b.bytes)
  })

  test('sends only the fixed outbound headers', async () => {
    await downloader().download(`${fixture.origin.url}/img/21.png`)
    const headers = fixture.origin.headers.get('/img/21.png')
    assert.ok(headers)
    assert.equal(headers['user-agent'], BASE.userAgent)
    assert.equal(headers.accept, 'image/png,image/jpeg,image/gif,image/*;q=0.8,*/*;q=0.5')
    assert.equal(headers['accept-encoding'], 'identity')
    const allowed = new Set(['host', 'connection', 'user-agent', 'accept', 'accept-encoding'])
    assert.deepEqual(
      Object.keys(headers).filter((name) => !allowed.has(name)),
      [],
    )
  })

  test('keeps connections alive across downloads', async () => {
    const d = downloader()
    const before = fixture.origin.connections
    for (let n = 100; n < 120; n++) await d.download(`${fixture.origin.url}/img/${n}.png`)
    // undici's pool may open a second socket while the first finishes its first response.
    assert.ok(
      fixture.origin.connections - before <= 2,
      `${fixture.origin.connections - before} connections for 20 downloads`,
    )
  })
})

describe('content checks', () => {
  test('HTML served as image/png', () =>
    fails(downloader().download(`${fixture.origin.url}/html-as-png`), {
      code: 'not_an_image',
      retryable: false,
      message: 'not an image: looks like HTML',
    }))
  test('WebP served as image/png', () =>
    fails(downloader().download(`${fixture.origin.url}/webp.png`), {
      code: 'unsupported_format',
      retryable: false,
      message: "WebP images are not accepted by Imgur's API",
    }))
  test('JSON', () =>
    fails(downloader().download(`${fixture.origin.url}/json`), {
      code: 'not_an_image',
      retryable: false,
      message: 'not an image: looks like JSON',
    }))
  test('empty body', () =>
    fails(downloader().download(`${fixture.origin.url}/empty`), {
      code: 'download_empty',
      retryable: false,
      message: 'origin sent an empty body',
    }))
})

describe('redirects', () => {
  test('follows up to maxRedirects hops and reports the final URL', async () => {
    const result = await downloader().download(`${fixture.origin.url}/redirect/5`)
    assert.equal(result.url, `${fixture.origin.url}/redirect/0`)
    assert.deepEqual(result.bytes, png(0))
  })
  test('one hop more fails', () =>
    fails(downloader().download(`${fixture.origin.url}/redirect/6`), {
      code: 'download_too_many_redirects',
      retryable: false,
      message: 'origin redirected more than 5 times',
    }))
  test('maxRedirects 0 refuses the first redirect', () =>
    fails(downloader({ maxRedirects: 0 }).download(`${fixture.origin.url}/redirect/1`), {
      code: 'download_too_many_redirects',
      retryable: false,
    }))
  test('a redirect loop is capped', async () => {
    const before = fixture.origin.hits.get('/loop') ?? 0
    await fails(downloader().download(`${fixture.origin.url}/loop`), {
      code: 'download_too_many_redirects',
      retryable: false,
    })
    assert.equal((fixture.origin.hits.get('/loop') ?? 0) - before, 6)
  })
  test('a relative Location resolves against the current URL', async () => {
    const result = await downloader().download(`${fixture.origin.url}/redirect-relative`)
    assert.equal(result.url, `${fixture.origin.url}/img/7.png`)
    assert.deepEqual(result.bytes, png(7))
  })
  test('a redirect without Location fails', () =>
    fails(downloader().download(`${fixture.origin.url}/redirect-no-location`), {
      code: 'download_bad_redirect',
      retryable: false,
      message: 'origin answered HTTP 302 without a Location',
    }))
  test('a redirect to file: fails', () =>
    fails(downloader().download(`${fixture.origin.url}/redirect-scheme`), {
      code: 'download_bad_redirect',
      retryable: false,
      message: 'origin redirected to a URL with scheme file: (only http and https are allowed)',
    }))
  test('a redirect to a URL with credentials fails', () => {
    const target = `${fixture.origin.url.replace('//', '//user:secret@')}/img/1.png`
    return fails(
      downloader().download(`${fixture.origin.url}/redirect-to?url=${encodeURIComponent(target)}`),
      {
        code: 'download_bad_redirect',
        retryable: false,
        message: 'origin redirected to a URL with credentials',
      },
    )
  })
})

describe('HTTP status', () => {
  const cases: Array<[number, boolean]> = [
    [400, false],
    [403, false],
    [404, false],
    [410, false],
    [408, true],
    [429, true],
    [500, true],
    [502, true],
    [503, true],
  ]
  for (const [status, retryable] of cases) {
    test(`${status} is ${retryable ? 'retryable' : 'permanent'}`, () =>
      fails(downloader().download(`${fixture.origin.url}/status/${status}`), {
        code: 'download_http_status',
        retryable,
        message: `origin answered HTTP ${status}`,
      }))
  }
})

describe('invalid input', () => {
  for (const [input, message] of [
    ['not a url', 'not a valid URL'],
    ['file:///etc/passwd', 'URL with scheme file: (only http and https are allowed)'],
    ['ftp://example.com/a.png', 'URL with scheme ftp: (only http and https are allowed)'],
    ['http://user:pw@example.com/a.png', 'URL with credentials'],
  ]) {
    test(input, async () => {
      const before = fixture.origin.requests
      await fails(downloader().download(input as string), {
        code: 'download_bad_url',
        retryable: false,
        message,
      })
      assert.equal(fixture.origin.requests, before)
    })
  }
  test('options are checked at construction', () => {
    assert.throws(() => createDownloader({ ...BASE, maxBytes: 0 }), {
      message: 'Expected `maxBytes` to be an integer >= 1, got `0`',
    })
    assert.throws(() => createDownloader({ ...BASE, timeoutMs: 1.5 }), /`timeoutMs`/)
    assert.throws(() => createDownloader({ ...BASE, userAgent: ' ' }), /`userAgent`/)
  })
})
