/**
 * The service never downloads from its own origin (PUBLIC_URL), submitted or reached by a
 * redirect. `own` plays the service: any request or connection it receives means the check was
 * bypassed. Private networks are allowed here, so only the own-origin rule stands in the way.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { originOf } from '../../src/download/address.ts'
import { createDownloader, type DownloadOptions } from '../../src/download/download.ts'
import type { ServiceError } from '../../src/errors.ts'
import { TEST_USER_AGENT, useDownloaders } from '../helpers/downloaders.ts'
import { png } from '../helpers/images.ts'
import { type Origin, startOrigin } from '../helpers/origin.ts'
import { startService } from '../helpers/service.ts'

const BASE: DownloadOptions = {
  maxBytes: 1024 * 1024,
  timeoutMs: 10_000,
  maxRedirects: 5,
  allowPrivateNetworks: true,
  userAgent: TEST_USER_AGENT,
}
const fixture = useDownloaders(BASE)
const { downloader } = fixture

let own: Origin
before(async () => {
  own = await startOrigin()
})
after(() => own.close())

const SUBMITTED = 'URL points at this service itself'
const REDIRECTED = 'origin redirected to this service itself'

async function refused(promise: Promise<unknown>, message: string) {
  await assert.rejects(promise, (error: ServiceError) => {
    assert.deepEqual(
      [error.code, error.retryable, error.message],
      ['download_url_is_this_service', false, message],
    )
    return true
  })
}

/** A resolver that counts calls and answers nothing: a URL that reaches it passed the own-origin check. */
function counting() {
  const resolver = async (hostname: string): Promise<never> => {
    resolver.calls++
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
  }
  resolver.calls = 0
  return resolver
}

describe('downloader with ownUrls', () => {
  test('a URL on the own origin is refused without a connection', async () => {
    await refused(downloader({ ownUrls: [own.url] }).download(`${own.url}/img/1.png`), SUBMITTED)
    assert.deepEqual([own.requests, own.connections], [0, 0])
  })

  test('a redirect to the own origin is refused before that hop is requested', async () => {
    const before = fixture.origin.hits.get('/redirect-to') ?? 0
    const target = encodeURIComponent(`${own.url}/img/1.png`)
    await refused(
      downloader({ ownUrls: [own.url] }).download(`${fixture.origin.url}/redirect-to?url=${target}`),
      REDIRECTED,
    )
    assert.equal(fixture.origin.hits.get('/redirect-to'), before + 1, 'the first hop was requested')
    assert.deepEqual([own.requests, own.connections], [0, 0])
  })

  test('other origins download as usual, the same host on another port included', async () => {
    assert.equal(new URL(fixture.origin.url).hostname, new URL(own.url).hostname)
    const result = await downloader({ ownUrls: [own.url] }).download(`${fixture.origin.url}/img/1.png`)
    assert.deepEqual(result.bytes, png(1))
    assert.deepEqual([own.requests, own.connections], [0, 0])
  })

  test('origins compare by scheme, lower-cased host without trailing dot, and effective port', async () => {
    const ownUrls = ['http://UP.Example:80', 'https://secure.example/base/path']
    for (const href of [
      'http://up.example/a.png',
      'http://up.example:80/a.png',
      'HTTP://UP.EXAMPLE/a.png?x=1#y',
      'http://up.example./a.png',
      'https://secure.example/a.png',
      'https://secure.example:443/elsewhere',
      'https://Secure.Example./',
    ]) {
      const lookup = counting()
      await refused(downloader({ ownUrls, lookup }).download(href), SUBMITTED)
      assert.equal(lookup.calls, 0, `${href}: refused before any lookup`)
    }
    for (const href of [
      'https://up.example/a.png', // another scheme
      'http://up.example:8080/a.png', // another port
      'http://www.up.example/a.png', // another host
      'http://secure.example/a.png',
      'https://secure.example:8443/a.png',
    ]) {
      const lookup = counting()
      await assert.rejects(downloader({ ownUrls, lookup }).download(href), { code: 'download_dns_not_found' })
      assert.equal(lookup.calls, 1, `${href}: not the service, so it is looked up`)
    }
  })

  test('no ownUrls, or an empty list, refuses nothing', async () => {
    for (const overrides of [{}, { ownUrls: [] }]) {
      const result = await downloader(overrides).download(`${fixture.origin.url}/img/2.png`)
      assert.deepEqual(result.bytes, png(2))
    }
  })

  test('ownUrls must hold http(s) URLs', () => {
    for (const bad of ['ftp://up.example', 'not a url', '/relative']) {
      assert.throws(() => createDownloader({ ...BASE, ownUrls: [bad] }), {
        name: 'TypeError',
        message: `Expected \`ownUrls\` to hold http(s) URLs, got \`${bad}\``,
      })
    }
  })
})

test('originOf folds case, a trailing dot and default ports', () => {
  assert.deepEqual(
    ['http://X.example:80/a', 'https://x.example./', 'http://[::1]/', 'https://x.example:8443'].map((href) =>
      originOf(new URL(href)),
    ),
    ['http://x.example:80', 'https://x.example:443', 'http://[::1]:80', 'https://x.example:8443'],
  )
})

test('the service refuses its PUBLIC_URL, submitted or by redirect; other URLs of the job upload', async (t) => {
  const { origin, run } = await startService(t, { env: { PUBLIC_URL: `${own.url}/` } })
  const direct = `${own.url}/img/3.png`
  const redirected = `${origin.url}/redirect-to?url=${encodeURIComponent(direct)}`
  const body = await run([direct, redirected, `${origin.url}/img/4.png`])
  assert.deepEqual(
    body.items.map((item) => [item.state, item.attempts, item.reason]),
    [
      ['failed', 1, { code: 'download_url_is_this_service', message: SUBMITTED }],
      ['failed', 1, { code: 'download_url_is_this_service', message: REDIRECTED }],
      ['complete', 1, undefined],
    ],
  )
  assert.deepEqual([own.requests, own.connections], [0, 0])
})
