import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MAX_URL_LENGTH, parseSubmittedUrls } from '../src/urls.ts'

test('the normalised form drops the fragment and applies WHATWG normalisation', () => {
  assert.deepEqual(parseSubmittedUrls(['HTTPS://Example.COM:443/a/../b.png#frag', 'http://example.com']), {
    ok: true,
    urls: ['HTTPS://Example.COM:443/a/../b.png#frag', 'http://example.com'],
    targets: ['https://example.com/b.png', 'http://example.com/'],
  })
})

test('duplicates are stripped, keeping the first occurrence in submission order', () => {
  const result = parseSubmittedUrls([
    'https://a.test/1.png',
    'https://b.test/2.png',
    'HTTPS://A.TEST/1.png#again',
    'https://a.test:443/1.png',
    'https://c.test/3.png',
    'https://b.test/2.png',
  ])
  assert.deepEqual(result, {
    ok: true,
    urls: ['https://a.test/1.png', 'https://b.test/2.png', 'https://c.test/3.png'],
    targets: ['https://a.test/1.png', 'https://b.test/2.png', 'https://c.test/3.png'],
  })
})

test('the submitted spelling is kept while the normalised one is downloaded', () => {
  const result = parseSubmittedUrls(['HTTP://Example.com/x.png#top'])
  assert.deepEqual(result, {
    ok: true,
    urls: ['HTTP://Example.com/x.png#top'],
    targets: ['http://example.com/x.png'],
  })
})

test('every invalid entry is named by index and reason', () => {
  const result = parseSubmittedUrls([
    'https://ok.test/a.png',
    42,
    null,
    'not a url',
    'ftp://files.test/a.png',
    'https://user:pass@host.test/a.png',
    '',
    `https://long.test/${'a'.repeat(MAX_URL_LENGTH)}`,
    'javascript:alert(1)',
    { url: 'x' },
  ])
  assert.equal(result.ok, false)
  assert.ok(!result.ok)
  assert.deepEqual(
    result.problems.map((p) => p.index),
    [1, 2, 3, 4, 5, 6, 7, 8, 9],
  )
  const reasons = Object.fromEntries(result.problems.map((p) => [p.index, p.reason]))
  assert.equal(reasons[1], 'expected a string, got number')
  assert.equal(reasons[2], 'expected a string, got null')
  assert.equal(reasons[3], 'not an absolute URL')
  assert.match(reasons[4] as string, /scheme ftp: is not allowed/)
  assert.equal(reasons[5], 'credentials in URLs are not allowed')
  assert.equal(reasons[6], 'empty string')
  assert.match(reasons[7] as string, /longer than 2048/)
  assert.match(reasons[8] as string, /scheme javascript:/)
  assert.equal(reasons[9], 'expected a string, got object')
})

test('a URL of exactly the maximum length is accepted', () => {
  const url = `https://x.test/${'a'.repeat(MAX_URL_LENGTH - 'https://x.test/'.length)}`
  assert.equal(url.length, MAX_URL_LENGTH)
  assert.equal(parseSubmittedUrls([url]).ok, true)
})
