import assert from 'node:assert/strict'
import { test } from 'node:test'
import { cancelledError, networkError, parseImgurError, timeoutError } from '../../src/imgur/errors.ts'

const NOW = 1_700_000_000_000
const classic = (status: number, error: string) =>
  JSON.stringify({ data: { error, request: '/3/image', method: 'POST' }, success: false, status })
const html = (title: string) =>
  `<!DOCTYPE html>\n<html><head><title>${title}</title></head><body><h1>${title}</h1></body></html>`

type Case = {
  name: string
  status: number
  headers?: Record<string, string | string[]>
  body: string
  code: string
  retryable: boolean
  message: string
  retryAfterMs?: number
}

// Every shape from imgur-api.md × the statuses it comes with.
// biome-ignore format: one row per case reads as the table it is
const cases: Case[] = [
  { name: 'classic empty image', status: 400, body: classic(400, 'No image data was sent to the upload api'), code: 'imgur_rejected', retryable: false, message: 'Imgur rejected the upload (No image data was sent to the upload api)' },
  { name: 'error object 1003', status: 400, body: JSON.stringify({ data: { error: { code: 1003, message: 'File type invalid (1)', type: 'ImgurException', exception: {} }, request: '/3/image', method: 'POST' }, success: false, status: 400 }), code: 'imgur_rejected', retryable: false, message: 'Imgur rejected the file type (File type invalid (1))' },
  { name: 'classic size limit', status: 400, body: classic(400, 'File is over the size limit'), code: 'imgur_too_large', retryable: false, message: 'Imgur refused the file as too large (File is over the size limit); its API takes images up to 10 MB' },
  { name: '413 empty', status: 413, body: '', code: 'imgur_too_large', retryable: false, message: 'Imgur refused the file as too large (413); its API takes images up to 10 MB' },
  { name: '413 HTML', status: 413, body: html('413 Request Entity Too Large'), code: 'imgur_too_large', retryable: false, message: 'Imgur refused the file as too large (Request Entity Too Large); its API takes images up to 10 MB' },
  { name: 'short CDN block', status: 400, headers: { 'CDN-Error': 'yes' }, body: JSON.stringify({ data: { error: 'These actions are forbidden.' }, success: false, status: 400 }), code: 'imgur_forbidden', retryable: false, message: "Imgur's network refused the request (These actions are forbidden.) — an operator must act" },
  { name: 'same text without CDN-Error', status: 400, body: JSON.stringify({ data: { error: 'These actions are forbidden.' } }), code: 'imgur_rejected', retryable: false, message: 'Imgur rejected the upload (These actions are forbidden.)' },
  { name: 'other 400', status: 400, body: classic(400, 'Bad request'), code: 'imgur_rejected', retryable: false, message: 'Imgur rejected the upload (Bad request)' },
  { name: '401', status: 401, body: classic(401, 'Authentication required'), code: 'imgur_auth', retryable: false, message: 'Imgur requires authentication (401)' },
  { name: 'invalid client id', status: 403, body: classic(403, 'Invalid client_id'), code: 'imgur_client_id_refused', retryable: false, message: 'Imgur refused the client id (403 Invalid client_id)' },
  { name: 'malformed auth', status: 403, body: classic(403, 'Malformed auth header'), code: 'imgur_client_id_refused', retryable: false, message: 'Imgur refused the client id (403 Malformed auth header)' },
  { name: 'token invalid', status: 403, body: classic(403, 'The access token provided is invalid.'), code: 'imgur_token_invalid', retryable: false, message: "Imgur refused the account's access token (403 The access token provided is invalid.)" },
  { name: '403 over capacity', status: 403, body: classic(403, 'Imgur is temporarily over capacity. Please try again later.'), code: 'imgur_over_capacity', retryable: true, message: "Imgur is over capacity, often a block on this server's IP (403 Imgur is temporarily over capacity. Please try again later.)" },
  { name: '500 over capacity', status: 500, body: classic(500, 'Imgur is temporarily over capacity. Please try again later.'), code: 'imgur_over_capacity', retryable: true, message: "Imgur is over capacity, often a block on this server's IP (500 Imgur is temporarily over capacity. Please try again later.)" },
  { name: 'other 403', status: 403, body: classic(403, 'Permission denied'), code: 'imgur_forbidden', retryable: false, message: 'Imgur refused the request (403 Permission denied)' },
  { name: '429 errors array, post reset in seconds', status: 429, headers: { 'x-post-rate-limit-limit': '1250', 'x-post-rate-limit-remaining': '0', 'x-post-rate-limit-reset': '1800' }, body: JSON.stringify({ errors: [{ id: 'legacy-api-1', code: '429', status: 'Too Many Requests', detail: 'Too Many Requests' }] }), code: 'imgur_rate_limited', retryable: true, message: "Imgur's rate limit was reached (429 Too Many Requests); its budget resets in 30 min", retryAfterMs: 1_800_000 },
  { name: '429 HTML, no headers', status: 429, body: html('429 Too Many Requests'), code: 'imgur_rate_limited', retryable: true, message: "Imgur's rate limit was reached (429 Too Many Requests); Imgur gave no reset time" },
  { name: '429 Retry-After wins', status: 429, headers: { 'retry-after': '45', 'x-post-rate-limit-remaining': '0', 'x-post-rate-limit-reset': '1800' }, body: classic(429, 'Rate limit'), code: 'imgur_rate_limited', retryable: true, message: "Imgur's rate limit was reached (429 Rate limit); its budget resets in 45 s", retryAfterMs: 45_000 },
  { name: '429 client budget, epoch reset', status: 429, headers: { 'X-RateLimit-ClientLimit': '12500', 'X-RateLimit-ClientRemaining': '0', 'X-RateLimit-ClientReset': String(NOW / 1000 + 7200) }, body: '', code: 'imgur_rate_limited', retryable: true, message: "Imgur's rate limit was reached (429); its budget resets in 2 h", retryAfterMs: 7_200_000 },
  { name: '429 two exhausted budgets: the later reset', status: 429, headers: { 'x-post-rate-limit-remaining': '0', 'x-post-rate-limit-reset': '600', 'x-ratelimit-userremaining': '5', 'x-ratelimit-userreset': '3600', 'x-ratelimit-clientremaining': '900' }, body: '', code: 'imgur_rate_limited', retryable: true, message: "Imgur's rate limit was reached (429); its budget resets in 60 min", retryAfterMs: 3_600_000 },
  { name: '503 HTML first byte timeout', status: 503, body: html('503 first byte timeout'), code: 'imgur_unavailable', retryable: true, message: 'Imgur answered 503 (first byte timeout)' },
  { name: '503 empty', status: 503, body: '', code: 'imgur_unavailable', retryable: true, message: 'Imgur answered 503' },
  { name: '503 Retry-After in seconds', status: 503, headers: { 'Retry-After': '20' }, body: '', code: 'imgur_unavailable', retryable: true, message: 'Imgur answered 503', retryAfterMs: 20_000 },
  { name: '403 over capacity, Retry-After as a date', status: 403, headers: { 'retry-after': new Date(NOW + 90_000).toUTCString() }, body: classic(403, 'Imgur is temporarily over capacity. Please try again later.'), code: 'imgur_over_capacity', retryable: true, message: "Imgur is over capacity, often a block on this server's IP (403 Imgur is temporarily over capacity. Please try again later.)", retryAfterMs: 90_000 },
  { name: '502 plain text', status: 502, body: 'Bad Gateway\n', code: 'imgur_unavailable', retryable: true, message: 'Imgur answered 502 (Bad Gateway)' },
  { name: 'body status differs: HTTP wins', status: 504, body: classic(400, 'No image data was sent to the upload api'), code: 'imgur_unavailable', retryable: true, message: 'Imgur answered 504 (No image data was sent to the upload api)' },
  { name: 'HTML with an overlong title', status: 500, body: html('x'.repeat(300)), code: 'imgur_unavailable', retryable: true, message: 'Imgur answered 500' },
  { name: '404 HTML page', status: 404, body: html('404 Not Found'), code: 'imgur_rejected', retryable: false, message: 'Imgur refused the upload (404 Not Found)' },
  { name: 'unexpected redirect', status: 302, headers: { location: '/elsewhere' }, body: '', code: 'imgur_bad_response', retryable: true, message: 'Imgur answered with an unexpected status (302)' },
]

for (const c of cases) {
  test(`parseImgurError: ${c.name}`, () => {
    const error = parseImgurError(c.status, c.headers ?? {}, c.body, NOW)
    assert.equal(error.code, c.code)
    assert.equal(error.retryable, c.retryable)
    assert.equal(error.message, c.message)
    assert.equal(error.retryAfterMs, c.retryAfterMs)
    assert.equal(error.details?.imgurStatus, c.status)
  })
}

test('parseImgurError keeps the Imgur error code for logs and reads array header values', () => {
  const body = JSON.stringify({ data: { error: { code: 1003, message: 'File type invalid (1)' } } })
  assert.equal(parseImgurError(400, {}, body).details?.imgurCode, 1003)
  assert.equal(parseImgurError(400, { 'cdn-error': ['yes'] }, classic(400, 'x')).code, 'imgur_forbidden')
})

test('transport failures: network is retryable with the raw cause, cancel is permanent', () => {
  const reset = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })
  const network = networkError(reset)
  assert.deepEqual([network.code, network.retryable, network.cause], ['imgur_network', true, reset])
  assert.equal(network.message, 'The connection to Imgur failed (UND_ERR_SOCKET)')
  assert.deepEqual(
    [timeoutError(5000, reset).code, timeoutError(5000, reset).retryable],
    ['imgur_timeout', true],
  )
  assert.deepEqual([cancelledError().code, cancelledError().retryable], ['cancelled', false])
})
