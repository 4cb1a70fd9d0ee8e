import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import sharp from 'sharp'
import { animatedWebp, avif, heicPhoto, noise, webp, webpBomb, webpRotated } from '../helpers/formats.ts'
import { png } from '../helpers/images.ts'
import { assertPartition, startService } from '../helpers/service.ts'

test('formats Imgur refuses are converted, and the status says from what', async (t) => {
  const { origin, sandbox, run } = await startService(t)
  origin.put('/still.webp', await webp(), 'image/webp')
  origin.put('/rotated.webp', await webpRotated(), 'image/webp')
  origin.put('/animated.webp', await animatedWebp(3, 16), 'image/webp')
  origin.put('/photo.avif', await avif(), 'image/avif')
  origin.put('/phone.heic', heicPhoto(), 'image/heic')
  origin.put('/bomb.webp', webpBomb(), 'image/webp')
  const urls = [
    '/still.webp',
    '/rotated.webp',
    '/animated.webp',
    '/photo.avif',
    '/phone.heic',
    '/bomb.webp',
  ].map((path) => `${origin.url}${path}`)
  const body = await run([...urls, `${origin.url}/img/1.png`])
  assertPartition(body, [...urls, `${origin.url}/img/1.png`])
  const [still, rotated, animated, photo, phone, bomb, plain] = body.items
  assert.equal(still?.converted?.from, 'image/webp')
  assert.equal(rotated?.state, 'complete')
  assert.deepEqual(animated?.converted, { from: 'image/webp', to: 'image/gif' })
  assert.equal(photo?.converted?.from, 'image/avif')
  assert.equal(phone?.converted?.from, 'image/heic')
  assert.equal(bomb?.reason?.code, 'image_too_many_pixels')
  assert.equal(plain?.converted, undefined, 'nothing said when nothing was done')
  assert.equal(plain?.reencoded, undefined)

  // What reached Imgur: formats it takes, in the `image` field, with the orientation applied.
  const types = sandbox.uploads.map((upload) => [upload.field, upload.type])
  assert.equal(types.length, 6)
  assert.ok(types.every(([field, type]) => field === 'image' && /^image\/(png|jpeg|gif)$/.test(String(type))))
  const turned = await fetch(rotated?.link ?? '')
  const meta = await sharp(Buffer.from(await turned.arrayBuffer())).metadata()
  assert.deepEqual([meta.width, meta.height], [20, 40])
  const gif = sandbox.uploads.find((upload) => upload.type === 'image/gif')
  assert.equal(gif?.link, animated?.link)
})

test('an oversized photo is re-encoded under MAX_IMAGE_BYTES and uploaded; the status says so', async (t) => {
  const { origin, sandbox, run } = await startService(t, { env: { MAX_IMAGE_BYTES: '200000' } })
  const bytes = await noise(1200, 900).jpeg({ quality: 100 }).toBuffer()
  origin.put('/big.jpg', bytes, 'image/jpeg')
  const body = await run([`${origin.url}/big.jpg`, `${origin.url}/sized/300000.png`])
  const [photo, padded] = body.items
  assert.equal(photo?.state, 'complete')
  const uploaded = sandbox.uploads.find((upload) => upload.link === photo?.link)
  assert.deepEqual(photo?.reencoded, { fromBytes: bytes.length, toBytes: uploaded?.size })
  assert.equal(photo?.converted, undefined)
  assert.equal(uploaded?.type, 'image/jpeg')
  assert.ok((uploaded?.size ?? Number.POSITIVE_INFINITY) <= 200_000)
  // A 1 × 1 PNG padded to 300 kB is re-encoded to a few bytes.
  assert.equal(padded?.state, 'complete')
  assert.equal(padded?.reencoded?.fromBytes, 300_000)
})

test('limits: past MAX_DOWNLOAD_BYTES nothing is downloaded; what cannot fit fails with image_too_large', async (t) => {
  const { origin, sandbox, run } = await startService(t, {
    // Not even a 1 × 1 JPEG fits in 100 bytes.
    env: { MAX_IMAGE_BYTES: '100', MAX_DOWNLOAD_BYTES: '100000', RETRY_MAX_ATTEMPTS: '1' },
  })
  origin.put('/noisy.jpg', await noise(200, 200).jpeg({ quality: 100 }).toBuffer(), 'image/jpeg')
  const body = await run([
    `${origin.url}/sized/100001.png`,
    `${origin.url}/chunked-big?bytes=100001`,
    `${origin.url}/noisy.jpg`,
  ])
  assert.deepEqual(
    body.items.map((item) => item.reason?.code),
    ['download_too_large', 'download_too_large', 'image_too_large'],
  )
  assert.equal(sandbox.requests.length, 0)
})

test('with CONVERT_UNSUPPORTED and REENCODE_OVERSIZED off, behaviour is as before', async (t) => {
  const { origin, sandbox, run } = await startService(t, {
    env: { CONVERT_UNSUPPORTED: 'false', REENCODE_OVERSIZED: 'false', MAX_IMAGE_BYTES: '100000' },
  })
  origin.put('/still.webp', await webp(), 'image/webp')
  const body = await run([
    `${origin.url}/still.webp`,
    `${origin.url}/sized/100001.png`,
    `${origin.url}/img/2.png`,
  ])
  assert.deepEqual(
    body.items.map((item) => [item.reason?.code, item.reason?.message]),
    [
      ['unsupported_format', "WebP images are not accepted by Imgur's API"],
      ['download_too_large', 'image is larger than the 97.7 KiB limit'],
      [undefined, undefined],
    ],
  )
  assert.equal(sandbox.uploads.length, 1)
  assert.equal(sandbox.uploads[0]?.sha256, createHash('sha256').update(png(2)).digest('hex'))
})
