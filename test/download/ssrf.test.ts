/**
 * SSRF rules end to end, offline. Everything here is loopback, so the tests need a policy in
 * which some loopback address counts as "the internet": `isBlocked` (the downloader's test seam)
 * calls 127.0.0.1 public and leaves every other rule as in production. A second origin on
 * 127.0.0.2, same port, plays the private service an attacker is after: any request it receives
 * means a check was bypassed. Injected `lookup`s give fake names (`public.test`, `rebind.test`)
 * whatever answers a test needs, including different answers per call (DNS rebinding).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isBlockedAddress } from '../../src/download/address.ts'
import { createDownloader, type DownloadOptions } from '../../src/download/download.ts'
import type { ServiceError } from '../../src/errors.ts'
import { imageDownloads } from '../helpers/downloaders.ts'
import { png } from '../helpers/images.ts'
import { type Origin, startOrigin } from '../helpers/origin.ts'

type Answer = { address: string; family: 4 | 6 }
const v4 = (address: string): Answer => ({ address, family: 4 })

let outside: Origin // 127.0.0.1: public in the test policy
let inside: Origin // 127.0.0.2: private, must never be reached
let port: string
const downloaders: Array<{ close(): Promise<void> }> = []

before(async () => {
  inside = await startOrigin({ host: '127.0.0.2' })
  port = new URL(inside.url).port
  outside = await startOrigin({ host: '127.0.0.1', port: Number(port) })
})
after(async () => {
  await Promise.all([outside.close(), inside.close()])
  await Promise.all(downloaders.map((d) => d.close()))
})

/** A resolver answering from a script, one entry per call (the last entry repeats); counts calls. */
function scripted(...script: Answer[][]) {
  const resolver = async (_hostname: string) => {
    resolver.calls++
    return script[Math.min(resolver.calls - 1, script.length - 1)] ?? []
  }
  resolver.calls = 0
  return resolver
}

function downloader(overrides: Partial<DownloadOptions> = {}) {
  const d = createDownloader({
    maxBytes: 1024 * 1024,
    timeoutMs: 5000,
    maxRedirects: 5,
    allowPrivateNetworks: false,
    userAgent: 'imgur-upload-service/0.1 (+test)',
    ...overrides,
  })
  downloaders.push(d)
  return imageDownloads(d)
}
const testPolicy = (ip: string) => ip !== '127.0.0.1' && isBlockedAddress(ip)

async function blocked(promise: Promise<unknown>, message: string) {
  await assert.rejects(promise, (error: ServiceError) => {
    assert.equal(error.code, 'download_blocked', error.message)
    assert.equal(error.retryable, false)
    assert.equal(error.message, message)
    return true
  })
}

describe('production policy: loopback in any spelling is refused without a request', () => {
  const spellings = [
    '127.1',
    '0x7f.1',
    '2130706433',
    '017700000001',
    '127.0.0.1.',
    '[::ffff:7f00:1]',
    '[::ffff:127.0.0.1]',
    '0.0.0.0',
    '0',
    '[::]',
    '[::1]',
  ]
  for (const host of spellings) {
    test(host, async () => {
      const lookup = scripted([v4('127.0.0.1')])
      const before = outside.connections
      await blocked(
        downloader({ lookup }).download(`http://${host}:${port}/img/1.png`),
        'blocked: private address literal',
      )
      assert.equal(lookup.calls, 0)
      assert.equal(outside.connections, before)
    })
  }
  for (const host of ['localhost', 'foo.localhost', 'LocalHost.', 'metadata.google.internal']) {
    test(host, async () => {
      const lookup = scripted([v4('127.0.0.1')])
      const before = outside.connections
      await blocked(
        downloader({ lookup }).download(`http://${host}:${port}/img/1.png`),
        'blocked: host name not allowed',
      )
      assert.equal(lookup.calls, 0, 'refused before any lookup')
      assert.equal(outside.connections, before)
    })
  }
  test('a name resolving to loopback is refused at connect time, before any TCP connection', async () => {
    const lookup = scripted([v4('127.0.0.1')])
    const before = outside.connections
    await blocked(
      downloader({ lookup }).download(`http://evil.test:${port}/img/1.png`),
      'blocked: evil.test resolves to a private or reserved address',
    )
    assert.equal(lookup.calls, 1)
    assert.equal(outside.connections, before)
  })
})

describe('DNS rebinding: the address dialled is the address judged', () => {
  test('public first, private after: one resolution, and it is the one dialled', async () => {
    const lookup = scripted([v4('127.0.0.1')], [v4('127.0.0.2')])
    const insideBefore = inside.requests
    const result = await downloader({ lookup, isBlocked: testPolicy }).download(
      `http://rebind.test:${port}/img/3.png`,
    )
    assert.deepEqual(result.bytes, png(3))
    assert.equal(lookup.calls, 1, 'no second resolution for a rebinding answer to slip into')
    assert.equal(outside.hits.get('/img/3.png'), 1)
    assert.equal(inside.requests, insideBefore)
  })
  test('the answer the connection gets is judged, whatever earlier calls said', async () => {
    const lookup = scripted([v4('127.0.0.2')], [v4('127.0.0.1')])
    const before = inside.connections
    await blocked(
      downloader({ lookup, isBlocked: testPolicy }).download(`http://rebind.test:${port}/img/4.png`),
      'blocked: rebind.test resolves to a private or reserved address',
    )
    assert.equal(inside.connections, before)
  })
  test('several answers with one blocked: refused, nothing dialled (Happy Eyeballs may pick any)', async () => {
    for (const answers of [
      [v4('127.0.0.1'), v4('127.0.0.2')],
      [v4('127.0.0.1'), { address: '::1', family: 6 } as const],
      [v4('127.0.0.1'), { address: '::ffff:127.0.0.2', family: 6 } as const],
    ]) {
      const before = outside.connections + inside.connections
      await blocked(
        downloader({ lookup: scripted(answers), isBlocked: testPolicy }).download(
          `http://multi.test:${port}/img/5.png`,
        ),
        'blocked: multi.test resolves to a private or reserved address',
      )
      assert.equal(outside.connections + inside.connections, before)
    }
  })
})

describe('redirects are re-checked at every hop', () => {
  const lookup = async (hostname: string): Promise<Answer[]> =>
    hostname === 'public.test' ? [v4('127.0.0.1')] : [v4('127.0.0.2')]
  const via = (target: string) => `http://public.test:${port}/redirect-to?url=${encodeURIComponent(target)}`

  test('control: a redirect to another public host is followed', async () => {
    const result = await downloader({ lookup, isBlocked: testPolicy }).download(
      via(`http://public.test:${port}/img/9.png`),
    )
    assert.equal(result.url, `http://public.test:${port}/img/9.png`)
    assert.deepEqual(result.bytes, png(9))
  })
  test('control: with private networks allowed the same redirect does reach the private origin', async () => {
    await downloader({ lookup, allowPrivateNetworks: true }).download(
      via(`http://127.0.0.2:${port}/img/8.png`),
    )
    assert.equal(inside.hits.get('/img/8.png'), 1)
  })
  const refused: Array<[target: string, message: string]> = [
    [`http://127.0.0.2:PORT/img/1.png`, 'blocked: private address literal'],
    [`http://[::ffff:127.0.0.2]:PORT/img/1.png`, 'blocked: private address literal'],
    [`http://localhost:PORT/img/1.png`, 'blocked: host name not allowed'],
    [
      `http://internal.test:PORT/img/1.png`,
      'blocked: internal.test resolves to a private or reserved address',
    ],
  ]
  for (const [target, message] of refused) {
    test(`a redirect to ${target.replace(':PORT', '')} is refused`, async () => {
      const before = inside.requests
      await blocked(
        downloader({ lookup, isBlocked: testPolicy }).download(via(target.replace('PORT', port))),
        message,
      )
      assert.equal(inside.requests, before)
    })
  }
})
