import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ALBUM_IMAGE_BYTES, ALBUM_OVERHEAD_BYTES } from '../../src/sandbox/albums.ts'
import { resolveOptions } from '../../src/sandbox/options.ts'
import { UPLOAD_CREDITS } from '../../src/sandbox/rate-limits.ts'
import { CLIENT, gif, type Json, jpeg, jsonOf, mp4, png, post, start, upload } from './fixtures.ts'

const OAUTH = { clientId: 'app-id', clientSecret: 'app-secret', refreshToken: 'refresh-me', accountId: 4242 }

function classic(status: number, error: string, method = 'POST', request = '/3/album') {
  return { data: { error, request, method }, success: false, status }
}

/** Uploads each file (`{ video }` in the video field) and answers Imgur's `data` of each, in order. */
async function uploadAll(url: string, files: Array<Uint8Array | { video: Uint8Array }>, auth = CLIENT) {
  const uploaded: Json[] = []
  for (const file of files) {
    const [bytes, field] = 'video' in file ? [file.video, 'video'] : [file, 'image']
    const response = await upload(url, bytes, { auth, field })
    assert.equal(response.status, 200, response.text)
    uploaded.push(jsonOf(response.text).data)
  }
  return uploaded
}

function form(fields: Array<[string, string]>): URLSearchParams {
  const body = new URLSearchParams()
  for (const [key, value] of fields) body.append(key, value)
  return body
}

async function read(url: string, path: string, auth: string | null = CLIENT) {
  const response = await fetch(`${url}${path}`, { headers: auth === null ? {} : { Authorization: auth } })
  return { status: response.status, headers: response.headers, text: await response.text() }
}

async function bearer(url: string): Promise<string> {
  const response = await post(
    url,
    '/oauth2/token',
    new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: OAUTH.clientId,
      client_secret: OAUTH.clientSecret,
      refresh_token: OAUTH.refreshToken,
    }),
    null,
  )
  return `Bearer ${jsonOf(response.text).access_token}`
}

test("an anonymous album of deletehashes answers Imgur's Basic model and keeps its images in order", async (t) => {
  const { sandbox, url } = await start(t)
  const [a, b, c] = await uploadAll(url, [png(3, 2), gif(5, 4), jpeg(7, 6)])
  const before = sandbox.requests.length
  const response = await post(
    url,
    '/3/album',
    form([
      ['deletehashes[]', c.deletehash],
      ['deletehashes[]', a.deletehash],
      ['deletehashes[]', b.deletehash],
      ['title', 'Cats & <dogs>'],
      ['description', 'three of them'],
      ['privacy', 'hidden'],
    ]),
  )
  assert.equal(response.status, 200, response.text)
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/)
  const body = jsonOf(response.text)
  assert.deepEqual(Object.keys(body), ['data', 'success', 'status'])
  assert.deepEqual(Object.keys(body.data), ['id', 'deletehash'])
  assert.match(body.data.id, /^[A-Za-z0-9]{7}$/)
  assert.match(body.data.deletehash, /^[A-Za-z0-9]{15}$/)
  assert.equal(body.success, true)
  assert.equal(body.status, 200)
  // Priced like an upload: 10 client credits and one POST.
  assert.equal(response.headers.get('x-ratelimit-clientremaining'), String(12500 - 4 * UPLOAD_CREDITS))
  assert.equal(response.headers.get('x-post-rate-limit-remaining'), String(1250 - 4))
  assert.deepEqual(sandbox.requests.slice(before), [
    { method: 'POST', path: '/3/album', status: 200, authTag: sandbox.authTag(CLIENT) },
  ])
  const [record] = sandbox.albums
  assert.deepEqual(
    { ...record, datetime: 0 },
    {
      id: body.data.id,
      deletehash: body.data.deletehash,
      imageIds: [c.id, a.id, b.id],
      fields: ['deletehashes'],
      title: 'Cats & <dogs>',
      description: 'three of them',
      privacy: 'hidden',
      cover: undefined,
      auth: 'client-id',
      clientId: 'test-client',
      link: `${url}/a/${body.data.id}`,
      datetime: 0,
    },
  )

  const got = await read(url, `/3/album/${body.data.id}`)
  assert.equal(got.status, 200)
  assert.equal(got.headers.get('x-ratelimit-clientlimit'), '12500')
  const album = jsonOf(got.text)
  assert.equal(album.success, true)
  assert.equal(album.data.id, body.data.id)
  assert.equal(album.data.title, 'Cats & <dogs>')
  assert.equal(album.data.description, 'three of them')
  assert.equal(album.data.privacy, 'hidden')
  assert.equal(album.data.link, `${url}/a/${body.data.id}`)
  assert.equal(album.data.images_count, 3)
  assert.equal(album.data.cover, c.id)
  assert.equal(album.data.account_id, null)
  assert.equal(album.data.deletehash, undefined, 'a read never shows the deletehash')
  assert.deepEqual(
    album.data.images.map((image: Json) => [image.id, image.link, image.deletehash]),
    [c, a, b].map((image) => [image.id, image.link, undefined]),
  )

  const page = await read(url, `/a/${body.data.id}`, null)
  assert.equal(page.status, 200)
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
  assert.match(page.text, /<title>Cats &#38; &#60;dogs&#62; - Album on Imgur<\/title>/)
  assert.doesNotMatch(page.text, /<dogs>/)
  const sources = [...page.text.matchAll(/<img src="([^"]+)"/g)].map((match) => match[1])
  assert.deepEqual(sources, [c.link, a.link, b.link])
  for (const link of sources) assert.equal((await fetch(link as string)).status, 200)
})

test('deletehashes may come comma-separated, in multipart or JSON; a video shows as a video', async (t) => {
  const { url } = await start(t)
  const [a, b, clip] = await uploadAll(url, [png(3, 2), gif(5, 4), { video: mp4() }])
  const multipart = new FormData()
  multipart.append('deletehashes', `${b.deletehash},${a.deletehash}`)
  multipart.append('cover', a.id)
  const first = jsonOf((await post(url, '/3/album', multipart)).text).data
  const album = jsonOf((await read(url, `/3/album/${first.id}`)).text).data
  assert.deepEqual(
    album.images.map((image: Json) => image.id),
    [b.id, a.id],
  )
  assert.equal(album.cover, a.id)

  const json = JSON.stringify({ deletehashes: [clip.deletehash, a.deletehash] })
  const second = await post(url, '/3/album', json, CLIENT, { 'content-type': 'application/json' })
  assert.equal(second.status, 200, second.text)
  const page = await read(url, `/a/${jsonOf(second.text).data.id}`, null)
  assert.match(page.text, new RegExp(`<video src="${clip.mp4}"[^>]*></video>[\\s\\S]*<img src="${a.link}"`))
})

test('an album without images is made empty, as Imgur does', async (t) => {
  const { url } = await start(t)
  const made = await post(url, '/3/album', form([['title', 'later']]))
  assert.equal(made.status, 200)
  const album = jsonOf((await read(url, `/3/album/${jsonOf(made.text).data.id}`)).text).data
  assert.equal(album.images_count, 0)
  assert.deepEqual(album.images, [])
  assert.equal(album.cover, null)
})

test('an anonymous caller owns only the images whose deletehash it gives: ids or unknown hashes are refused', async (t) => {
  const { sandbox, url } = await start(t)
  const [a] = await uploadAll(url, [png(3, 2)])
  for (const fields of [
    [['ids[]', a.id]],
    [
      ['deletehashes[]', a.deletehash],
      ['deletehashes[]', 'nOtAdElEtEhAsH1'],
    ],
    [['deletehashes[]', a.id]],
  ] as Array<Array<[string, string]>>) {
    const response = await post(url, '/3/album', form(fields))
    assert.equal(response.status, 403, JSON.stringify(fields))
    const body = jsonOf(response.text)
    assert.match(body.data.error, /^You must own all the image ids to add them to album [A-Za-z0-9]{7}$/)
    assert.deepEqual(body, classic(403, body.data.error))
    assert.ok(response.headers.get('x-post-rate-limit-remaining'))
  }
  assert.equal(sandbox.albums.length, 0)
  // Refusals cost nothing: only the upload was paid for.
  const credits = await read(url, '/3/credits')
  assert.equal(jsonOf(credits.text).data.ClientRemaining, 12500 - UPLOAD_CREDITS)
})

test("an account album takes the account's image ids; others' images are refused", async (t) => {
  const { sandbox, url } = await start(t, { oauth: OAUTH })
  const token = await bearer(url)
  const [a, b] = await uploadAll(url, [png(3, 2), gif(5, 4)], token)
  const [anonymous] = await uploadAll(url, [jpeg(7, 6)])

  const made = await post(
    url,
    '/3/album',
    form([
      ['ids[]', b.id],
      ['ids[]', a.id],
      ['title', 'mine'],
    ]),
    token,
  )
  assert.equal(made.status, 200, made.text)
  const body = jsonOf(made.text)
  assert.deepEqual(
    Object.keys(body.data),
    ['id'],
    'no deletehash: an account changes its albums with its token',
  )
  assert.equal(body.success, true)
  const record = sandbox.albums[0]
  assert.deepEqual(
    [record?.auth, record?.accountId, record?.fields, record?.imageIds],
    ['bearer', 4242, ['ids'], [b.id, a.id]],
  )
  const album = jsonOf((await read(url, `/3/album/${body.data.id}`, token)).text).data
  assert.equal(album.account_id, 4242)
  assert.deepEqual(
    album.images.map((image: Json) => image.id),
    [b.id, a.id],
  )

  const refused = await post(
    url,
    '/3/album',
    form([
      ['ids[]', a.id],
      ['ids[]', anonymous.id],
    ]),
    token,
  )
  assert.equal(refused.status, 403)
  assert.match(jsonOf(refused.text).data.error, /^You must own all the image ids/)
  // A deletehash proves ownership in either mode.
  const mixed = await post(url, '/3/album', form([['deletehashes[]', anonymous.deletehash]]), token)
  assert.equal(mixed.status, 200, mixed.text)
})

test('album calls are checked like uploads: auth, privacy, unknown albums', async (t) => {
  const { url } = await start(t, { clientIds: ['test-client'] })
  const none = await post(url, '/3/album', form([]), null)
  assert.equal(none.status, 401)
  assert.deepEqual(jsonOf(none.text), classic(401, 'Authentication required'))
  const wrong = await post(url, '/3/album', form([]), 'Client-ID someone-else')
  assert.deepEqual(jsonOf(wrong.text), classic(403, 'Invalid client_id'))
  const privacy = await post(url, '/3/album', form([['privacy', 'everyone']]))
  assert.equal(privacy.status, 400)
  assert.deepEqual(
    jsonOf(privacy.text),
    classic(400, 'Invalid privacy setting, expected one of public, hidden, secret'),
  )
  const unknown = await read(url, '/3/album/NoSuchA')
  assert.equal(unknown.status, 404)
  assert.deepEqual(
    jsonOf(unknown.text),
    classic(404, 'Unable to find an album with the id, NoSuchA', 'GET', '/3/album/NoSuchA'),
  )
  const anonymousRead = await read(url, '/3/album/NoSuchA', null)
  assert.equal(anonymousRead.status, 401)
  const page = await read(url, '/a/NoSuchA', null)
  assert.equal(page.status, 404)
  assert.match(page.text, /<html>/)
})

test('an album is paid for like an upload: with the budget spent it answers 429 and is not made', async (t) => {
  const { sandbox, url } = await start(t, { budget: { clientCredits: 2 * UPLOAD_CREDITS } })
  const [a] = await uploadAll(url, [png(3, 2)])
  const first = await post(url, '/3/album', form([['deletehashes[]', a.deletehash]]))
  assert.equal(first.status, 200)
  assert.equal(first.headers.get('x-ratelimit-clientremaining'), '0')
  const second = await post(url, '/3/album', form([['deletehashes[]', a.deletehash]]))
  assert.equal(second.status, 429)
  assert.deepEqual(jsonOf(second.text), classic(429, 'Too Many Requests'))
  assert.equal(sandbox.albums.length, 1)
})

test('scripted faults strike albums only when aimed at them', async (t) => {
  const { sandbox, url } = await start(t)
  sandbox.script({ fault: 'server-error', on: 'album' }, 'over-capacity')
  const refused = await upload(url, png(3, 2))
  assert.equal(refused.status, 403, 'the upload takes the fault aimed at uploads')
  const [a] = await uploadAll(url, [png(3, 2)])
  const failed = await post(url, '/3/album', form([['deletehashes[]', a.deletehash]]))
  assert.equal(failed.status, 500)
  assert.deepEqual(jsonOf(failed.text), classic(500, 'Internal server error'))
  assert.equal(sandbox.requests.at(-1)?.fault, 'server-error')
  const made = await post(url, '/3/album', form([['deletehashes[]', a.deletehash]]))
  assert.equal(made.status, 200)
  assert.throws(
    () => sandbox.script({ fault: 'server-error', on: 'credits' as 'album' }),
    /^TypeError: Expected `on` to be upload or album, got `credits`$/,
  )
})

test('albums are bounded: past maxAlbumBytes the oldest go first and answer 404', async (t) => {
  assert.equal(resolveOptions({}).maxAlbumBytes, 16 * 1024 * 1024)
  assert.throws(
    () => resolveOptions({ maxAlbumBytes: 0 }),
    /Expected `maxAlbumBytes` to be an integer >= 1, got `0`/,
  )
  const one = ALBUM_OVERHEAD_BYTES + ALBUM_IMAGE_BYTES
  const { url } = await start(t, { maxAlbumBytes: 2 * one })
  const [a, b] = await uploadAll(url, [png(3, 2), gif(5, 4)])
  const ids: string[] = []
  for (const image of [a, b, a]) {
    const made = await post(url, '/3/album', form([['deletehashes[]', image.deletehash]]))
    ids.push(jsonOf(made.text).data.id)
  }
  assert.equal((await read(url, `/3/album/${ids[0]}`)).status, 404)
  assert.equal((await read(url, `/a/${ids[0]}`, null)).status, 404)
  for (const id of ids.slice(1)) assert.equal((await read(url, `/3/album/${id}`)).status, 200)
  // One album larger than the whole budget is refused, not kept.
  const big = await post(
    url,
    '/3/album',
    form([
      ['deletehashes[]', a.deletehash],
      ['deletehashes[]', b.deletehash],
      ['title', 'x'.repeat(one)],
    ]),
  )
  assert.equal(big.status, 400)
  assert.match(jsonOf(big.text).data.error, /^Too many images for one album/)
})

test('an image deleted after the album was made leaves the album', async (t) => {
  const { url } = await start(t)
  const [a, b] = await uploadAll(url, [png(3, 2), gif(5, 4)])
  const made = jsonOf(
    (
      await post(
        url,
        '/3/album',
        form([
          ['deletehashes[]', a.deletehash],
          ['deletehashes[]', b.deletehash],
        ]),
      )
    ).text,
  ).data
  const removed = await fetch(`${url}/3/image/${a.deletehash}`, {
    method: 'DELETE',
    headers: { Authorization: CLIENT },
  })
  assert.equal(removed.status, 200)
  await removed.text()
  const album = jsonOf((await read(url, `/3/album/${made.id}`)).text).data
  assert.equal(album.images_count, 1)
  assert.equal(album.images[0].id, b.id)
})
