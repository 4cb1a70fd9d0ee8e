/** Albums through the HTTP API, against the Imgur sandbox. */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import { startService } from './helpers/service.ts'

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
const OAUTH = { clientId: 'app-id', clientSecret: 'app-secret', refreshToken: 'refresh-me' }

const albumCalls = (requests: ReadonlyArray<{ path: string; status: number }>) =>
  requests.filter((request) => request.path === '/3/album').map((request) => request.status)

test('an anonymous album holds the uploaded images once each, in submission order, and opens', async (t) => {
  const { origin, sandbox, run } = await startService(t)
  const urls = [
    `${origin.url}/same-a.png`,
    `${origin.url}/status/404`,
    `${origin.url}/img/2.jpg`,
    `${origin.url}/same-b.png`,
  ]
  const body = await run(urls, { album: { title: 'Holiday <2025>', description: 'the good ones' } })
  assert.equal(body.status, 'complete')
  assert.match(body.finished ?? '', ISO_MS)
  assert.deepEqual(body.uploaded.failed, [urls[1]])
  const [linkA, link2, linkB] = body.uploaded.complete
  assert.equal(linkB, linkA, 'the same bytes are one image')
  const album = body.album
  assert.ok(album)
  assert.equal(album.state, 'complete')
  assert.match(album.id ?? '', /^[A-Za-z0-9]{7}$/)
  assert.match(album.deletehash ?? '', /^[A-Za-z0-9]{15}$/)
  assert.equal(album.link, `${sandbox.url}/a/${album.id}`)
  assert.equal(album.reason, undefined)

  const idOf = (link: string | undefined) => sandbox.uploads.find((upload) => upload.link === link)?.id
  const [record] = sandbox.albums
  assert.deepEqual(
    [record?.fields, record?.auth, record?.imageIds, record?.title, record?.description],
    [['deletehashes'], 'client-id', [idOf(linkA), idOf(link2)], 'Holiday <2025>', 'the good ones'],
  )
  assert.deepEqual(albumCalls(sandbox.requests), [200])
  assert.equal(sandbox.requests.at(-1)?.path, '/3/album', 'the album is made after every upload')

  const read = await fetch(`${sandbox.url}/3/album/${album.id}`, {
    headers: { Authorization: 'Client-ID configured-client-id' },
  })
  const { data } = (await read.json()) as { data: { link: string; images: Array<{ link: string }> } }
  assert.equal(data.link, album.link)
  assert.deepEqual(
    data.images.map((image) => image.link),
    [linkA, link2],
  )

  const page = await fetch(album.link ?? '')
  assert.equal(page.status, 200)
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
  const html = await page.text()
  assert.match(html, /<title>Holiday &#60;2025&#62; - Album on Imgur<\/title>/)
  assert.deepEqual(
    [...html.matchAll(/<img src="([^"]+)"/g)].map((match) => match[1]),
    [linkA, link2],
  )
})

test("account mode makes the album of the account's image ids with its Bearer token", async (t) => {
  const { origin, sandbox, run } = await startService(t, {
    sandbox: { oauth: OAUTH },
    env: { IMGUR_CLIENT_ID: 'app-id', IMGUR_CLIENT_SECRET: 'app-secret', IMGUR_REFRESH_TOKEN: 'refresh-me' },
  })
  const urls = [`${origin.url}/img/1.png`, `${origin.url}/img/2.png`, `${origin.url}/same-a.png`]
  const body = await run(urls, { album: { title: 'mine' } })
  assert.equal(body.status, 'complete')
  assert.equal(body.album?.state, 'complete')
  assert.equal(body.album?.deletehash, undefined, 'an account album has no deletehash')
  assert.equal(body.album?.link, `${sandbox.url}/a/${body.album?.id}`)
  const [record] = sandbox.albums
  assert.deepEqual(record?.fields, ['ids'])
  assert.equal(record?.auth, 'bearer')
  assert.deepEqual(
    record?.imageIds,
    body.uploaded.complete.map((link) => sandbox.uploads.find((upload) => upload.link === link)?.id),
  )
  const paths = sandbox.requests.map((request) => request.path)
  assert.deepEqual(paths.slice(0, 1), ['/oauth2/token'])
  assert.deepEqual(paths.slice(-1), ['/3/album'])
  assert.match(sandbox.requests.at(-1)?.authTag ?? '', /^Bearer /)
})

test('the job stays in-progress until its album is made; `finished` is set then', async (t) => {
  const { origin, service, submit, status } = await startService(t, { sandbox: { latencyMs: 300 } })
  const urls = [`${origin.url}/img/1.png`, `${origin.url}/img/2.png`]
  const seen: string[] = []
  service.store.on('itemsSettled', (job) => seen.push(job.id))
  const jobId = await submit(urls, { album: {} })
  await service.queue.onIdle()
  assert.deepEqual(seen, [jobId])
  const waiting = await status(jobId)
  assert.equal(waiting.status, 'in-progress')
  assert.equal(waiting.finished, null)
  assert.equal(waiting.uploaded.complete.length, 2)
  assert.deepEqual(waiting.album, { state: 'pending' })

  await service.albums.onIdle()
  const done = await status(jobId)
  assert.equal(done.status, 'complete')
  assert.equal(done.album?.state, 'complete')
  assert.match(done.finished ?? '', ISO_MS)
  assert.ok((done.finished ?? '') >= done.created)
})

test('a job whose every URL failed completes with its album failed as album_empty', async (t) => {
  const { origin, sandbox, run } = await startService(t)
  const body = await run([`${origin.url}/status/404`, `${origin.url}/html-as-png`], { album: {} })
  assert.equal(body.status, 'complete')
  assert.match(body.finished ?? '', ISO_MS)
  assert.equal(body.uploaded.failed.length, 2)
  assert.equal(body.album?.state, 'failed')
  assert.equal(body.album?.reason?.code, 'album_empty')
  assert.match(body.album?.reason?.message ?? '', /no URL of the job was uploaded/)
  assert.equal(body.album?.link, undefined)
  assert.deepEqual(albumCalls(sandbox.requests), [])
})

test('a retryable fault on the album is retried, then the album is made', async (t) => {
  const { origin, sandbox, run, logs } = await startService(t)
  sandbox.script({ fault: 'server-error', on: 'album' }, { fault: 'unavailable-html', on: 'album' })
  const body = await run([`${origin.url}/img/1.png`], { album: {} })
  assert.equal(body.status, 'complete')
  assert.equal(body.album?.state, 'complete')
  assert.deepEqual(albumCalls(sandbox.requests), [500, 503, 200])
  assert.equal(sandbox.albums.length, 1)
  const retries = logs.map((line) => JSON.parse(line)).filter((line) => line.msg === 'album will be retried')
  assert.deepEqual(
    retries.map((line) => [line.code, line.attempt]),
    [
      ['imgur_unavailable', 1],
      ['imgur_unavailable', 2],
    ],
  )
})

test('a permanent fault fails the album with its reason; the job is complete with its links', async (t) => {
  const { origin, sandbox, run } = await startService(t)
  sandbox.script({ fault: 'forbidden-cdn', on: 'album' })
  const body = await run([`${origin.url}/img/1.png`], { album: {} })
  assert.equal(body.status, 'complete')
  assert.match(body.finished ?? '', ISO_MS)
  assert.equal(body.uploaded.complete.length, 1)
  assert.equal(body.album?.state, 'failed')
  assert.equal(body.album?.reason?.code, 'imgur_forbidden')
  assert.match(body.album?.reason?.message ?? '', /These actions are forbidden/)
  assert.deepEqual(albumCalls(sandbox.requests), [400])
})

test('retries of the album end after RETRY_MAX_ATTEMPTS with the last reason', async (t) => {
  const { origin, sandbox, run } = await startService(t, { env: { RETRY_MAX_ATTEMPTS: '2' } })
  sandbox.script({ fault: 'server-error', on: 'album' }, { fault: 'server-error', on: 'album' })
  const body = await run([`${origin.url}/img/1.png`], { album: {} })
  assert.equal(body.status, 'complete')
  assert.equal(body.album?.reason?.code, 'imgur_unavailable')
  assert.deepEqual(albumCalls(sandbox.requests), [500, 500])
})

test('an album needs budget like an upload: with it spent until after the wait limit, it fails unsent', async (t) => {
  const { origin, sandbox, run } = await startService(t, { sandbox: { budget: { clientCredits: 10 } } })
  const body = await run([`${origin.url}/img/1.png`], { album: {} })
  assert.equal(body.uploaded.complete.length, 1)
  assert.equal(body.status, 'complete')
  assert.equal(body.album?.reason?.code, 'imgur_rate_limited')
  assert.match(body.album?.reason?.message ?? '', /spent until .*; the album was not made/)
  assert.deepEqual(albumCalls(sandbox.requests), [])
})

test('shutdown cancels an album waiting to retry: the job completes with the album failed', async (t) => {
  const { origin, sandbox, service, submit, status, statusAfterClose } = await startService(t, {
    env: { RETRY_BASE_DELAY_MS: '600000', RETRY_MAX_DELAY_MS: '600000' },
  })
  sandbox.script({ fault: 'server-error', on: 'album' })
  const retry = once(service.albums, 'retry')
  const jobId = await submit([`${origin.url}/img/1.png`], { album: {} })
  await retry
  assert.equal((await status(jobId)).status, 'in-progress')
  await service.close(0)
  const body = await statusAfterClose(jobId)
  assert.ok(body)
  assert.equal(body.status, 'complete')
  assert.match(body.finished ?? '', ISO_MS)
  assert.deepEqual(body.album, {
    state: 'failed',
    reason: { code: 'cancelled', message: 'the service shut down before the album was made' },
  })
  assert.deepEqual(albumCalls(sandbox.requests), [500])
})

test('a job without an album never calls the album API', async (t) => {
  const { origin, sandbox, run } = await startService(t)
  const body = await run([`${origin.url}/img/1.png`])
  assert.equal(body.status, 'complete')
  assert.equal(body.album, undefined)
  assert.deepEqual(albumCalls(sandbox.requests), [])
})
