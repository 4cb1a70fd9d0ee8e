import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import {
  bmp,
  CLIENT,
  gif,
  htmlPage,
  jpeg,
  jsonBody,
  jsonOf,
  mov,
  mp4,
  png,
  post,
  start,
  tiff,
  upload,
  webm,
} from './fixtures.ts'

const IMAGES = [
  { name: 'PNG', bytes: png(3, 2), type: 'image/png', ext: 'png', width: 3, height: 2, animated: false },
  {
    name: 'APNG',
    bytes: png(4, 4, { animated: true }),
    type: 'image/png',
    ext: 'png',
    width: 4,
    height: 4,
    animated: true,
  },
  { name: 'GIF', bytes: gif(5, 4), type: 'image/gif', ext: 'gif', width: 5, height: 4, animated: false },
  {
    name: 'animated GIF',
    bytes: gif(5, 4, 3),
    type: 'image/gif',
    ext: 'gif',
    width: 5,
    height: 4,
    animated: true,
  },
  { name: 'JPEG', bytes: jpeg(7, 6), type: 'image/jpeg', ext: 'jpg', width: 7, height: 6, animated: false },
  { name: 'BMP', bytes: bmp(2, 3), type: 'image/bmp', ext: 'bmp', width: 2, height: 3, animated: false },
  { name: 'TIFF', bytes: tiff(9, 8), type: 'image/tiff', ext: 'tiff', width: 9, height: 8, animated: false },
]

for (const image of IMAGES) {
  test(`a ${image.name} upload answers Imgur's success shape`, async (t) => {
    const { sandbox, url } = await start(t)
    const before = Math.floor(Date.now() / 1000)
    const response = await upload(url, image.bytes)
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/)
    const body = jsonOf(response.text)
    assert.deepEqual(Object.keys(body), ['status', 'success', 'data'])
    assert.equal(body.status, 200)
    assert.equal(body.success, true)
    const { data } = body
    assert.match(data.id, /^[A-Za-z0-9]{7}$/)
    assert.match(data.deletehash, /^[A-Za-z0-9]{15}$/)
    assert.equal(data.link, `${url}/${data.id}.${image.ext}`)
    assert.equal(data.type, image.type)
    assert.equal(data.width, image.width)
    assert.equal(data.height, image.height)
    assert.equal(data.size, image.bytes.length)
    assert.equal(data.animated, image.animated)
    assert.ok(data.datetime >= before && data.datetime <= before + 5)
    assert.equal(data.title, null)
    assert.equal(data.description, null)
    assert.equal(data.name, '')
    assert.equal(data.account_id, null)
    assert.equal(data.account_url, null)
    assert.equal(data.mp4, '')
    assert.equal(data.hls, '')
    assert.equal(data.gifv, '')
    assert.equal(data.processing, undefined)

    assert.deepEqual(sandbox.uploads, [
      {
        id: data.id,
        deletehash: data.deletehash,
        link: data.link,
        type: image.type,
        size: image.bytes.length,
        sha256: createHash('sha256').update(image.bytes).digest('hex'),
        auth: 'client-id',
        clientId: 'test-client',
        field: 'image',
      },
    ])
    assert.deepEqual(sandbox.requests, [
      { method: 'POST', path: '/3/image', status: 200, authTag: sandbox.authTag(CLIENT) },
    ])

    const served = await fetch(data.link)
    assert.equal(served.status, 200)
    assert.equal(served.headers.get('content-type'), image.type)
    assert.deepEqual(Buffer.from(await served.arrayBuffer()), image.bytes)
  })
}

test('title, description and name fields are echoed; publicUrl is the base of links', async (t) => {
  const { url } = await start(t, { publicUrl: 'https://i.example.test/' })
  const response = await upload(url, png(), {
    path: '/3/upload',
    fields: { type: 'file', title: 'A title', description: 'Some words', name: 'cat.png' },
  })
  assert.equal(response.status, 200)
  const { data } = jsonOf(response.text)
  assert.equal(data.title, 'A title')
  assert.equal(data.description, 'Some words')
  assert.equal(data.name, 'cat.png')
  assert.equal(data.link, `https://i.example.test/${data.id}.png`)
})

test('base64 in a urlencoded body is accepted with type=base64 and without type', async (t) => {
  const { sandbox, url } = await start(t)
  const image = jpeg(10, 20)
  const encoded = image.toString('base64')
  const bodies: Array<Record<string, string>> = [{ image: encoded, type: 'base64' }, { image: encoded }]
  for (const params of bodies) {
    const response = await post(url, '/3/image', new URLSearchParams(params))
    assert.equal(response.status, 200)
    const { data } = jsonOf(response.text)
    assert.equal(data.type, 'image/jpeg')
    assert.equal(data.size, image.length)
    assert.equal(data.width, 10)
    assert.equal(data.height, 20)
  }
  assert.equal(sandbox.uploads.length, 2)
})

test('base64 text in a multipart text field is accepted', async (t) => {
  const { url } = await start(t)
  const form = new FormData()
  form.append('image', gif().toString('base64'))
  form.append('type', 'base64')
  const response = await post(url, '/3/image', form)
  assert.equal(response.status, 200)
  assert.equal(jsonOf(response.text).data.type, 'image/gif')
})

test('a raw body with an image/* Content-Type is accepted', async (t) => {
  const { sandbox, url } = await start(t)
  const image = bmp(4, 4)
  const response = await post(url, '/3/upload', image, CLIENT, { 'Content-Type': 'image/bmp' })
  assert.equal(response.status, 200)
  assert.equal(jsonOf(response.text).data.type, 'image/bmp')
  assert.equal(sandbox.uploads[0]?.size, image.length)
})

test('type=base64 with binary data fails like Imgur (400, image corrupt)', async (t) => {
  const { sandbox, url } = await start(t)
  const response = await upload(url, png(), { fields: { type: 'base64' } })
  assert.equal(response.status, 400)
  assert.deepEqual(jsonOf(response.text), {
    data: { error: 'Image format not supported, or image is corrupt.', request: '/3/image', method: 'POST' },
    success: false,
    status: 400,
  })
  assert.equal(sandbox.uploads.length, 0)
})

test('URL uploads are refused with 400 and counted', async (t) => {
  const { sandbox, url } = await start(t)
  assert.equal(sandbox.urlUploads, 0)
  const byValue = await post(url, '/3/image', new URLSearchParams({ image: 'https://example.com/cat.png' }))
  const byType = await post(url, '/3/upload', new URLSearchParams({ image: 'cat', type: 'url' }))
  for (const [response, path] of [
    [byValue, '/3/image'],
    [byType, '/3/upload'],
  ] as const) {
    assert.equal(response.status, 400)
    const body = jsonOf(response.text)
    assert.equal(body.success, false)
    assert.equal(body.data.request, path)
    assert.match(body.data.error, /URL/)
  }
  assert.equal(sandbox.urlUploads, 2)
  assert.equal(sandbox.uploads.length, 0)
  sandbox.reset()
  assert.equal(sandbox.urlUploads, 0)
})

test('formats Imgur rejects answer the 1003 error object', async (t) => {
  const { url } = await start(t)
  const cases = [
    { bytes: htmlPage(), field: 'image' },
    { bytes: Buffer.from('RIFF\x1a\0\0\0WEBPVP8L', 'latin1'), field: 'image' },
    { bytes: mp4(), field: 'image' },
    { bytes: png(), field: 'video' },
  ]
  for (const { bytes, field } of cases) {
    const response = await upload(url, bytes, { field, path: '/3/upload' })
    assert.equal(response.status, 400, `${field}: ${bytes.subarray(0, 8).toString('latin1')}`)
    assert.deepEqual(jsonOf(response.text), {
      data: {
        error: { code: 1003, message: 'File type invalid (1)', type: 'ImgurException', exception: {} },
        request: '/3/upload',
        method: 'POST',
      },
      success: false,
      status: 400,
    })
  }
})

test('an empty upload answers "No image data was sent to the upload api"', async (t) => {
  const { url } = await start(t)
  const emptyFile = await upload(url, new Uint8Array(0))
  const noField = await post(url, '/3/upload', new URLSearchParams({ title: 'nothing' }))
  const emptyRaw = await post(url, '/3/image', new Uint8Array(0), CLIENT, { 'Content-Type': 'image/png' })
  for (const [response, path] of [
    [emptyFile, '/3/image'],
    [noField, '/3/upload'],
    [emptyRaw, '/3/image'],
  ] as const) {
    assert.equal(response.status, 400)
    assert.deepEqual(jsonOf(response.text), {
      data: { error: 'No image data was sent to the upload api', request: path, method: 'POST' },
      success: false,
      status: 400,
    })
  }
})

test('over the image cap: 400 on /3/image, 413 on /3/upload', async (t) => {
  const { sandbox, url } = await start(t, { maxImageBytes: 200 })
  const big = bmp(20, 20)
  assert.ok(big.length > 200)
  const image = await upload(url, big)
  assert.equal(image.status, 400)
  assert.deepEqual(jsonOf(image.text), {
    data: { error: 'File is over the size limit', request: '/3/image', method: 'POST' },
    success: false,
    status: 400,
  })
  const uploaded = await upload(url, big, { path: '/3/upload' })
  assert.equal(uploaded.status, 413)
  const body = jsonOf(uploaded.text)
  assert.match(body.id, /^legacy-api-/)
  assert.equal(body.code, 413)
  assert.equal(body.detail, 'file is over the size limit')
  assert.equal(body.status, 'Request Entity Too Large')
  assert.equal((await upload(url, png(1, 1))).status, 200)
  assert.equal(sandbox.uploads.length, 1)
})

test('a body far over every cap is drained and answered as too large', async (t) => {
  const { url } = await start(t, { maxImageBytes: 1000, maxVideoBytes: 1000 })
  const response = await post(url, '/3/upload', Buffer.alloc(200_000, 1), CLIENT, {
    'Content-Type': 'image/png',
  })
  assert.equal(response.status, 413)
  assert.equal(jsonOf(response.text).code, 413)
})

test('videos: the video field takes MP4, MOV and WebM, with processing pending then completed', async (t) => {
  const { sandbox, url } = await start(t, { maxImageBytes: 10 })
  const videos = [
    { bytes: mp4(), type: 'video/mp4' },
    { bytes: mov(), type: 'video/quicktime' },
    { bytes: webm(), type: 'video/webm' },
  ]
  for (const video of videos) {
    const response = await upload(url, video.bytes, { field: 'video', path: '/3/upload' })
    assert.equal(response.status, 200)
    const { data } = jsonOf(response.text)
    assert.equal(data.type, video.type)
    assert.equal(data.animated, true)
    assert.equal(data.link, `${url}/${data.id}.mp4`)
    assert.equal(data.mp4, data.link)
    assert.equal(data.gifv, `${url}/${data.id}.gifv`)
    assert.equal(data.hls, `${url}/${data.id}.m3u8`)
    assert.deepEqual(data.processing, { status: 'pending' })

    const later = await fetch(`${url}/3/image/${data.id}`, { headers: { Authorization: CLIENT } })
    assert.equal(later.status, 200)
    const body = await jsonBody(later)
    assert.deepEqual(body.data.processing, { status: 'completed' })
    assert.equal(body.data.id, data.id)

    const served = await fetch(data.link)
    assert.equal(served.headers.get('content-type'), video.type)
    assert.deepEqual(Buffer.from(await served.arrayBuffer()), video.bytes)
    const gifv = await fetch(data.gifv)
    assert.match(await gifv.text(), /<video src="\w{7}\.mp4"/)
  }
  assert.deepEqual(
    sandbox.uploads.map((record) => record.field),
    ['video', 'video', 'video'],
  )
})

test('over the video cap is too large', async (t) => {
  const { url } = await start(t, { maxVideoBytes: 20 })
  const response = await upload(url, mp4(), { field: 'video' })
  assert.equal(response.status, 400)
  assert.equal(jsonOf(response.text).data.error, 'File is over the size limit')
})

test('GET /3/image/:id answers the data object without the deletehash; unknown ids answer 404', async (t) => {
  const { url } = await start(t)
  const { data } = jsonOf((await upload(url, png())).text)
  const { deletehash, ...readable } = data
  assert.match(deletehash, /^[A-Za-z0-9]{15}$/)
  const found = await fetch(`${url}/3/image/${data.id}`, { headers: { Authorization: CLIENT } })
  assert.equal(found.status, 200)
  const text = await found.text()
  assert.deepEqual(jsonOf(text), { data: readable, success: true, status: 200 })
  assert.ok(!text.includes(deletehash), 'only the upload answer carries the deletehash')
  const missing = await fetch(`${url}/3/image/zzzzzzz`, { headers: { Authorization: CLIENT } })
  assert.equal(missing.status, 404)
  assert.equal((await jsonBody(missing)).data.error, 'Unable to find an image with the id, zzzzzzz')
})

test('DELETE /3/image/:deletehash removes the image; a second delete is a 404 page', async (t) => {
  const { sandbox, url } = await start(t)
  const { data } = jsonOf((await upload(url, gif())).text)
  const remove = () =>
    fetch(`${url}/3/image/${data.deletehash}`, { method: 'DELETE', headers: { Authorization: CLIENT } })
  const first = await remove()
  assert.equal(first.status, 200)
  assert.deepEqual(await jsonBody(first), { data: true, success: true, status: 200 })
  assert.ok(first.headers.get('x-ratelimit-clientremaining'))
  const second = await remove()
  assert.equal(second.status, 404)
  assert.match(second.headers.get('content-type') ?? '', /^text\/html/)
  assert.match(await second.text(), /<html>/)
  assert.equal((await fetch(data.link)).status, 404)
  assert.equal((await fetch(`${url}/3/image/${data.id}`, { headers: { Authorization: CLIENT } })).status, 404)
  assert.deepEqual(
    sandbox.requests.map((r) => [r.method, r.status]),
    [
      ['POST', 200],
      ['DELETE', 200],
      ['DELETE', 404],
      ['GET', 404],
    ],
  )
})

test('links are served only under their own extension; the home page and unknown paths', async (t) => {
  const { url } = await start(t)
  const { data } = jsonOf((await upload(url, png())).text)
  assert.equal((await fetch(`${url}/${data.id}.jpg`)).status, 404)
  const home = await fetch(`${url}/`)
  assert.equal(home.status, 200)
  assert.match(await home.text(), /Imgur sandbox/)
  for (const path of ['/nope', '/3/gallery/hot', '/3/image', '/oauth2/authorize']) {
    const response = await fetch(`${url}${path}`, { headers: { Authorization: CLIENT } })
    assert.equal(response.status, 404, path)
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/)
    await response.text()
  }
})

test('ids come from the injected random and stay unique when it repeats itself', async (t) => {
  const { sandbox, url } = await start(t, { random: () => 0 })
  const first = jsonOf((await upload(url, png())).text).data
  const second = jsonOf((await upload(url, png())).text).data
  assert.equal(first.id, 'AAAAAAA')
  assert.equal(first.deletehash, 'AAAAAAAAAAAAAAA')
  assert.match(second.id, /^[A-Za-z0-9]{7}$/)
  assert.notEqual(second.id, first.id)
  assert.notEqual(second.deletehash, first.deletehash)
  assert.deepEqual(
    sandbox.uploads.map((record) => record.id),
    [first.id, second.id],
  )
})

test('an unreadable body answers 400 image corrupt', async (t) => {
  const { url } = await start(t)
  const broken = await post(url, '/3/image', 'no boundary here', CLIENT, {
    'Content-Type': 'multipart/form-data; boundary=xyz',
  })
  const text = await post(url, '/3/upload', 'hello', CLIENT, { 'Content-Type': 'text/plain' })
  for (const [response, path] of [
    [broken, '/3/image'],
    [text, '/3/upload'],
  ] as const) {
    assert.equal(response.status, 400)
    assert.deepEqual(jsonOf(response.text), {
      data: { error: 'Image format not supported, or image is corrupt.', request: path, method: 'POST' },
      success: false,
      status: 400,
    })
  }
})

test('a JSON body with base64 image data is accepted', async (t) => {
  const { url } = await start(t)
  const response = await post(
    url,
    '/3/image',
    JSON.stringify({ image: tiff().toString('base64'), type: 'base64' }),
    CLIENT,
    {
      'Content-Type': 'application/json',
    },
  )
  assert.equal(response.status, 200)
  assert.equal(jsonOf(response.text).data.type, 'image/tiff')
})
