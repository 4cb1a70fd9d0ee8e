/**
 * The page in a real browser, driven by playwright-core, against the real app, the Imgur sandbox
 * and a fake origin. The browser is Debian's chromium when installed, else the Chromium shipped
 * inside the @sparticuz/chromium npm package (unpacked from node_modules, never downloaded), so
 * these tests run on any machine with Node and npm; they never skip.
 * UPDATE_SCREENSHOT=1 also saves the finished page to docs/screenshot.png for the README.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { type TestContext, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { type Browser, chromium, type Page, type Route } from 'playwright-core'
import { buildApp } from '../../src/http/app.ts'
import type { StatusDocument } from '../../src/http/schemas.ts'
import { createLogger } from '../../src/log.ts'
import { startService } from '../helpers/service.ts'

const SYSTEM_CHROMIUM = '/usr/bin/chromium'
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

async function browserBinary(): Promise<{ executablePath: string; args: string[] }> {
  if (existsSync(SYSTEM_CHROMIUM)) return { executablePath: SYSTEM_CHROMIUM, args: FLAGS }
  const { default: packaged } = await import('@sparticuz/chromium')
  // Not its own flags: they are made for AWS Lambda (--single-process ends the browser with its first context).
  return { executablePath: await packaged.executablePath(), args: FLAGS }
}
const SCREENSHOT = new URL('../../docs/screenshot.png', import.meta.url)

// One browser for the file: starting chromium costs about a second.
let browser: Browser | undefined
async function launch(): Promise<Browser> {
  browser ??= await chromium.launch({ ...(await browserBinary()), headless: true })
  return browser
}
test.after(() => browser?.close())

/** The app as `npm start` runs it in sandbox mode, listening on a real port, and a page open on it. */
async function openPage(
  t: TestContext,
  viewport = { width: 1200, height: 900 },
  env: Record<string, string> = {},
) {
  const h = await startService(t, { env })
  // The harness points IMGUR_API_URL at its sandbox, which reads as live mode; the banner needs sandbox.
  const app = buildApp({
    ...h.service,
    config: { ...h.config, imgurMode: 'sandbox' },
    log: createLogger('silent'),
  })
  t.after(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const context = await (await launch()).newContext({ viewport, colorScheme: 'light' })
  t.after(() => context.close())
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base })
  const page = await context.newPage()
  const problems: string[] = []
  page.on('pageerror', (error) => problems.push(error.message))
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text())
  })
  await page.goto(base)
  return { ...h, base, page, problems }
}

/** Resolves with the image's natural width once it has loaded (or failed: then 0). */
function naturalWidth(page: Page, selector: string, index: number): Promise<number> {
  return page
    .locator(selector)
    .nth(index)
    .evaluate((img: { complete: boolean; naturalWidth: number; decode(): Promise<void> }) =>
      img.decode().then(
        () => img.naturalWidth,
        () => 0,
      ),
    )
}

test('uploads good, broken and duplicate URLs with live progress, thumbnails, reasons and the gallery', async (t) => {
  const { page, origin, problems, status, app } = await openPage(t)
  assert.ok(await page.getByRole('note').filter({ hasText: 'Sandbox mode' }).isVisible(), 'sandbox banner')

  // Opaque colours (the seed is the RGBA pixel) so the screenshot shows something.
  const good = [3910034431, 563540991, 1286557951, 4290840575, 2618922239].map(
    (rgba) => `${origin.url}/img/${rgba}.png`,
  )
  const broken = [`${origin.url}/status/404`, `${origin.url}/html-as-png`]
  const box = page.getByLabel('Image URLs, one per line')
  await box.fill([...good, `${good[1]}#again`, ...broken].join('\n'))
  assert.equal(
    await page.locator('#checks .duplicate').textContent(),
    'line 6 repeats line 2; it is uploaded once',
  )
  assert.equal(await page.locator('#count').textContent(), '8 URLs (7 different)')

  await page.getByRole('button', { name: 'Upload' }).click()
  const job = page.locator('.job[data-status="complete"]')
  await job.waitFor()
  assert.equal(await box.inputValue(), '', 'the box is cleared for the next list')
  assert.equal(await job.locator('.job-counts').textContent(), 'Finished: 5 uploaded, 2 failed.')
  assert.equal(await job.locator('progress').getAttribute('value'), '7')
  assert.equal(await job.locator('progress').getAttribute('max'), '7')

  const final = await status((await job.getAttribute('data-job-id')) ?? '')
  const links = await job.locator('.job-links a').evaluateAll((as) => as.map((a) => a.getAttribute('href')))
  assert.deepEqual(links.toSorted(), final.uploaded.complete.toSorted())
  for (let i = 0; i < good.length; i++)
    assert.ok((await naturalWidth(page, '.job-links img', i)) > 0, `thumbnail ${i}`)
  const failures = await job.locator('.failures li').allInnerTexts()
  assert.deepEqual(
    failures,
    final.items
      .filter((item) => item.state === 'failed')
      .map((item) => `${item.url}: ${item.reason?.message} (${item.reason?.code})`),
  )
  assert.match(failures.join('\n'), /origin answered HTTP 404[\s\S]*not an image/)

  // The gallery was refreshed when the job completed: every link, newest first.
  const { uploaded } = (await app.inject('/v1/images')).json<{ uploaded: string[] }>()
  await page
    .locator('#gallery li')
    .nth(uploaded.length - 1)
    .waitFor()
  const gallery = await page.locator('#gallery a').evaluateAll((as) => as.map((a) => a.getAttribute('href')))
  assert.deepEqual(gallery, uploaded.toReversed())
  assert.ok(await page.locator('#gallery-empty').isHidden())

  await job.getByRole('button', { name: 'Copy all links' }).click()
  await job.getByText('Copied 5 links.').waitFor()
  const clipboard = await page.evaluate('navigator.clipboard.readText()')
  assert.deepEqual(String(clipboard).split('\n').toSorted(), final.uploaded.complete.toSorted())

  if (process.env.UPDATE_SCREENSHOT === '1') {
    await mkdir(new URL('.', SCREENSHOT), { recursive: true })
    await page.screenshot({ path: fileURLToPath(SCREENSHOT), fullPage: true })
  }
  assert.deepEqual(problems, [])
})

test('invalid lines are caught before sending; the server’s own errors are shown; keyboard and phone', async (t) => {
  const { page, problems } = await openPage(t, { width: 375, height: 740 })
  let posts = 0
  page.on('request', (request) => {
    if (request.method() === 'POST') posts++
  })
  const box = page.getByLabel('Image URLs, one per line')
  await box.fill('ftp://example.com/a.png\nhttp://127.0.0.1:9/ok.png\nnot a url')
  assert.deepEqual(await page.locator('#checks .invalid').allInnerTexts(), [
    'line 1: scheme ftp: is not allowed (only http and https)',
    'line 3: not an absolute URL',
  ])
  await page.getByRole('button', { name: 'Upload' }).click()
  await page.getByRole('alert').getByText('Some lines are not URLs the service accepts').waitFor()
  assert.equal(posts, 0, 'nothing was sent')

  // Entries the server refuses are named by their line in the box (comments and blanks counted).
  await page.route('**/v1/images/upload', (route) =>
    route.fulfill({
      status: 400,
      contentType: 'application/json',
      body: JSON.stringify({
        error: 'invalid_urls',
        message: '1 of the submitted URLs is invalid',
        details: { invalid: [{ index: 1, reason: 'pretend the server knows better' }] },
      }),
    }),
  )
  await box.fill('# mine\nhttp://127.0.0.1:9/a.png\n\nhttp://127.0.0.1:9/b.png')
  await page.getByRole('button', { name: 'Upload' }).click()
  await page.getByRole('alert').getByText('(invalid_urls)').waitFor()
  assert.deepEqual(await page.getByRole('alert').locator('li').allInnerTexts(), [
    'line 4 (http://127.0.0.1:9/b.png): pretend the server knows better',
  ])
  await page.unroute('**/v1/images/upload')

  // Keyboard only: open the client id section, type an id the API refuses, Tab to Upload, press Enter.
  await box.fill('http://127.0.0.1:9/ok.png')
  await page.locator('summary').focus()
  await page.keyboard.press('Enter')
  await page.keyboard.press('Tab')
  assert.equal(await page.evaluate('document.activeElement.id'), 'client-id')
  await page.keyboard.type('has spaces in it')
  await page.keyboard.press('Tab')
  assert.equal(await page.evaluate('document.activeElement.id'), 'submit')
  await page.keyboard.press('Enter')
  const alert = page.getByRole('alert')
  await alert.getByText('(invalid_body)').waitFor()
  assert.match(
    (await alert.textContent()) ?? '',
    /invalid request: .*clientId.*\/clientId: must match pattern/s,
  )
  assert.equal(posts, 2)

  // Readable on a phone: nothing wider than the screen.
  assert.equal(await page.evaluate('document.documentElement.scrollWidth'), 375)
  assert.deepEqual(
    problems.filter((text) => !text.includes('400')),
    [],
  )
})

test('with API keys the page asks for one, keeps it in the tab and sends it on every request', async (t) => {
  const key = 'k'.repeat(43)
  const other = 'o'.repeat(43)
  const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
  const { page, origin, problems, base, app } = await openPage(t, undefined, {
    API_KEYS: `alice:${sha256(key)},bob:${sha256(other)}`,
  })
  // Another key's upload never shows on this page.
  const bobs = await app.inject({
    method: 'POST',
    url: '/v1/images/upload',
    headers: { authorization: `Bearer ${other}` },
    payload: { urls: [`${origin.url}/img/4290840575.png`] },
  })
  assert.equal(bobs.statusCode, 202)

  // The gallery's first request was refused: the page shows the key field and says why.
  const keyBox = page.getByLabel('API key')
  const keyError = page.locator('#api-key-error')
  await keyError.getByText('This service needs an API key').waitFor()
  assert.ok(await keyBox.isVisible())

  await keyBox.fill('not-the-key')
  await keyBox.press('Enter')
  await keyError.getByText('The service refused this API key').waitFor()

  await keyBox.fill(key)
  await keyBox.press('Enter')
  await keyError.waitFor({ state: 'hidden' })
  await page.getByLabel('Image URLs, one per line').fill(`${origin.url}/img/3910034431.png`)
  await page.getByRole('button', { name: 'Upload' }).click()
  const job = page.locator('.job[data-status="complete"]')
  await job.waitFor()
  assert.equal(await job.locator('.job-counts').textContent(), 'Finished: 1 uploaded, 0 failed.')
  const mine = (await app.inject({ url: '/v1/images', headers: { authorization: `Bearer ${key}` } })).json<{
    uploaded: string[]
  }>().uploaded
  assert.equal(mine.length, 1)
  await page.locator('#gallery li').first().waitFor()
  assert.deepEqual(
    await page.locator('#gallery a').evaluateAll((as) => as.map((a) => a.getAttribute('href'))),
    mine,
  )

  // Kept for this tab: a reload sends it again without asking.
  assert.equal(await page.evaluate(() => sessionStorage.getItem('imgur-upload:api-key')), key)
  await page.goto(base)
  await page.locator('#gallery li').first().waitFor()
  assert.equal(await page.getByLabel('API key').inputValue(), key)
  assert.ok(await page.locator('#api-key-error').isHidden())
  assert.deepEqual(
    problems.filter((text) => !text.includes('401')),
    [],
  )
})

test('serves the page and its assets with their types, revalidation and the mode, outside the API document', async (t) => {
  const { app } = await startService(t)
  const page = await app.inject('/')
  assert.equal(page.statusCode, 200)
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8')
  assert.equal(page.headers['cache-control'], 'no-cache')
  assert.match(String(page.headers['content-security-policy']), /default-src 'self'/)
  assert.match(page.body, /<html lang="en" data-imgur-mode="live">/)
  for (const [path, type] of [
    ['/app.js', 'text/javascript; charset=utf-8'],
    ['/checks.js', 'text/javascript; charset=utf-8'],
    ['/app.css', 'text/css; charset=utf-8'],
  ]) {
    const asset = await app.inject(path ?? '')
    assert.equal(asset.headers['content-type'], type)
    const again = await app.inject({
      url: path ?? '',
      headers: { 'if-none-match': String(asset.headers.etag) },
    })
    assert.equal(again.statusCode, 304, path)
  }
  const { paths } = (await app.inject('/openapi.json')).json<{ paths: Record<string, unknown> }>()
  for (const path of ['/', '/app.js', '/checks.js', '/app.css'])
    assert.ok(!(path in paths), `${path} is not in the API document`)
  assert.equal((await app.inject('/index.html')).statusCode, 404)
  assert.equal((await app.inject('/../package.json')).statusCode, 404)
})

/** A status document as the contract has it: `links[i]` is item i's link, a reason code, or null (pending). */
function statusOf(
  id: string,
  urls: string[],
  outcomes: Array<string | null>,
  extra: Partial<StatusDocument> = {},
): StatusDocument {
  const items = urls.map((url, i): StatusDocument['items'][number] => {
    const outcome = outcomes[i] ?? null
    if (outcome === null) return { url, state: 'pending', attempts: 0 }
    if (outcome.startsWith('http')) return { url, state: 'complete', attempts: 1, link: outcome }
    return { url, state: 'failed', attempts: 1, reason: { code: outcome, message: `it was ${outcome}` } }
  })
  const settled = items.every((item) => item.state !== 'pending')
  const complete = settled && extra.album?.state !== 'pending'
  return {
    id,
    created: '2026-11-27T10:00:00.000Z',
    finished: complete ? '2026-11-27T10:00:02.000Z' : null,
    status: complete ? 'complete' : 'in-progress',
    uploaded: {
      pending: items.filter((item) => item.state === 'pending').map((item) => item.url),
      complete: items.flatMap((item) => (item.link ? [item.link] : [])),
      failed: items.filter((item) => item.state === 'failed').map((item) => item.url),
    },
    items,
    ...extra,
  }
}

/** Answers a status stream with these events, then ends it; the page reconnects after `retry-after` s. */
function events(route: Route, statuses: StatusDocument[], retryAfter = 1) {
  return route.fulfill({
    status: 200,
    headers: { 'content-type': 'text/event-stream', 'retry-after': String(retryAfter) },
    body: statuses.map((status) => `event: status\ndata: ${JSON.stringify(status)}\n\n`).join(''),
  })
}

const JOB_IDS = [
  '1a2b3c4d-0000-4000-8000-000000000001',
  '1a2b3c4d-0000-4000-8000-000000000002',
  '1a2b3c4d-0000-4000-8000-000000000003',
]

// The service in this branch accepts `album` but makes no albums yet: the page's side of the
// contract is checked with the API's answers played by playwright's routes.
test('an album title is sent with the job; the album shows while it is made, then its link', async (t) => {
  const { page, origin, problems } = await openPage(t)
  const urls = [`${origin.url}/img/3910034431.png`, `${origin.url}/img/563540991.png`]
  const sent: unknown[] = []
  await page.route('**/v1/images/upload', (route) => {
    sent.push(route.request().postDataJSON())
    return route.fulfill({
      status: 202,
      contentType: 'application/json',
      body: JSON.stringify({ jobId: JOB_IDS[sent.length - 1] }),
    })
  })
  const [first = '', second = '', third = ''] = JOB_IDS
  const { promise: albumMade, resolve: makeAlbum } = Promise.withResolvers<void>()
  let firstStreams = 0
  await page.route('**/v1/images/upload/*/events', async (route) => {
    const id = route.request().url().split('/').at(-2) ?? ''
    if (id === first && ++firstStreams === 1) {
      return events(route, [
        statusOf(first, urls, [urls[0] ?? '', null], { album: { state: 'pending' } }),
        statusOf(first, urls, [urls[0] ?? '', urls[1] ?? ''], { album: { state: 'pending' } }),
      ])
    }
    if (id === first) {
      await albumMade
      const album = { state: 'complete', link: 'https://imgur.com/a/Trip1', id: 'Trip1' } as const
      return events(route, [statusOf(first, urls, [urls[0] ?? '', urls[1] ?? ''], { album })])
    }
    const reason = { code: 'album_failed', message: 'Imgur answered HTTP 500' }
    const album = id === second ? ({ state: 'failed', reason } as const) : undefined
    return events(route, [statusOf(id, urls, [urls[0] ?? '', 'download_http_status'], album && { album })])
  })

  const box = page.getByLabel('Image URLs, one per line')
  const albumTitle = page.getByLabel('Album title')
  await box.fill(urls.join('\n'))
  await albumTitle.fill('  Trip to the sea ')
  await page.getByRole('button', { name: 'Upload' }).click()
  const job = page.locator(`.job[data-job-id="${first}"]`)
  await job.getByText('Album “Trip to the sea”: making album…').waitFor()
  assert.deepEqual(sent[0], { urls, album: { title: 'Trip to the sea' } })
  assert.equal(await albumTitle.inputValue(), '', 'the title goes with its list')
  assert.equal(await job.getAttribute('data-status'), 'in-progress', 'in progress while the album is made')
  assert.ok(await job.getByRole('button', { name: 'Cancel' }).isVisible())

  makeAlbum()
  const link = job.getByRole('link', { name: 'https://imgur.com/a/Trip1' })
  await link.waitFor()
  assert.equal(await link.getAttribute('href'), 'https://imgur.com/a/Trip1')
  assert.equal(
    await job.locator('.job-album').textContent(),
    'Album “Trip to the sea”: https://imgur.com/a/Trip1',
  )
  assert.equal(await job.getAttribute('data-status'), 'complete')
  assert.equal(await job.locator('.job-counts').textContent(), 'Finished: 2 uploaded, 0 failed.')
  assert.ok(await job.getByRole('button', { name: 'Cancel' }).isHidden(), 'nothing left to cancel')

  // A failed album shows its reason; without a title no album is asked for, nor shown.
  await box.fill(urls.join('\n'))
  await albumTitle.fill('Doomed')
  await page.getByRole('button', { name: 'Upload' }).click()
  await page
    .locator(`.job[data-job-id="${second}"] .job-album`)
    .getByText('Album “Doomed” could not be made: Imgur answered HTTP 500 (album_failed)')
    .waitFor()
  await box.fill(urls.join('\n'))
  await page.getByRole('button', { name: 'Upload' }).click()
  const plain = page.locator(`.job[data-job-id="${third}"][data-status="complete"]`)
  await plain.waitFor()
  assert.deepEqual(sent[2], { urls })
  assert.ok(await plain.locator('.job-album').isHidden())
  assert.deepEqual(problems, [])
})

test('Cancel posts the cancel route with the API key and shows the final status; keyboard works', async (t) => {
  const key = 'k'.repeat(43)
  const { page, origin, problems } = await openPage(t, undefined, {
    API_KEYS: `alice:${createHash('sha256').update(key).digest('hex')}`,
  })
  await page.getByLabel('API key').fill(key)
  await page.getByLabel('API key').press('Enter')
  const urls = [1, 2, 3].map((n) => `${origin.url}/img/${n}.png`)
  const [first = '', second = ''] = JOB_IDS
  let submissions = 0
  await page.route('**/v1/images/upload', (route) =>
    route.fulfill({
      status: 202,
      contentType: 'application/json',
      body: JSON.stringify({ jobId: JOB_IDS[submissions++] }),
    }),
  )
  // The job stays under way: the stream shows one upload, then the page waits a minute to reconnect.
  await page.route('**/v1/images/upload/*/events', (route) => {
    const id = route.request().url().split('/').at(-2) ?? ''
    return events(route, [statusOf(id, urls, [urls[0] ?? '', null, null])], 60)
  })
  await page.route('**/v1/images/upload/*/cancel', (route) => {
    const id = route.request().url().split('/').at(-2) ?? ''
    if (id !== first) {
      return route.fulfill({
        status: 404,
        contentType: 'application/json',
        body: JSON.stringify({ error: 'job_not_found', message: `no job with id ${id}` }),
      })
    }
    const final = statusOf(id, urls, [urls[0] ?? '', 'cancelled', 'cancelled'])
    return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(final) })
  })

  await page.getByLabel('Image URLs, one per line').fill(urls.join('\n'))
  await page.getByRole('button', { name: 'Upload' }).click()
  const job = page.locator(`.job[data-job-id="${first}"]`)
  await job.getByText('1 of 3 done: 1 uploaded, 0 failed.').waitFor()
  const cancel = job.getByRole('button', { name: 'Cancel' })
  assert.equal(
    await cancel.getAttribute('aria-describedby'),
    await job.locator('h3').getAttribute('id'),
    'the button names its job',
  )

  await cancel.focus()
  const [request] = await Promise.all([
    page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/cancel')),
    page.keyboard.press('Enter'),
  ])
  assert.equal(new URL(request.url()).pathname, `/v1/images/upload/${first}/cancel`)
  assert.equal(request.headers().authorization, `Bearer ${key}`)
  await job.getByText('Cancelled: 1 uploaded, 2 cancelled, 0 failed.').waitFor()
  assert.equal(await job.getAttribute('data-status'), 'complete')
  assert.deepEqual(await job.locator('.failures li').allInnerTexts(), [
    `${urls[1]}: it was cancelled (cancelled)`,
    `${urls[2]}: it was cancelled (cancelled)`,
  ])
  assert.ok(await cancel.isHidden())
  assert.equal(await page.evaluate('document.activeElement.id'), `job-${first}`, 'focus stays on the job')

  // A job the service forgot: the page says so and keeps the button.
  await page.getByLabel('Image URLs, one per line').fill(urls.join('\n'))
  await page.getByRole('button', { name: 'Upload' }).click()
  const other = page.locator(`.job[data-job-id="${second}"]`)
  await other.getByText('1 of 3 done').waitFor()
  await other.getByRole('button', { name: 'Cancel' }).click()
  await other.getByText('Not cancelled: the service no longer knows this job.').waitFor()
  assert.ok(await other.getByRole('button', { name: 'Cancel' }).isEnabled())
  // The 401 is the gallery's first request, before the key was entered; the 404 the forgotten job's.
  assert.deepEqual(
    problems.filter((text) => !/\b(401|404)\b/.test(text)),
    [],
  )
})
