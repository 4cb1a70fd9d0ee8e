import assert from 'node:assert/strict'
import { test } from 'node:test'
import { sniffImage, sniffVideo } from '../../src/sandbox/formats.ts'
import { bmp, gif, heic, htmlPage, jpeg, mov, mp4, png, tiff, webm, webp } from './fixtures.ts'

test('image formats with their dimensions', () => {
  assert.deepEqual(sniffImage(png(640, 480)), {
    type: 'image/png',
    ext: 'png',
    width: 640,
    height: 480,
    animated: false,
  })
  assert.equal(sniffImage(png(1, 1, { animated: true }))?.animated, true)
  assert.deepEqual(sniffImage(gif(300, 200, 2)), {
    type: 'image/gif',
    ext: 'gif',
    width: 300,
    height: 200,
    animated: true,
  })
  assert.deepEqual(sniffImage(jpeg(1920, 1080)), {
    type: 'image/jpeg',
    ext: 'jpg',
    width: 1920,
    height: 1080,
    animated: false,
  })
  assert.deepEqual(sniffImage(bmp(33, 44)), {
    type: 'image/bmp',
    ext: 'bmp',
    width: 33,
    height: 44,
    animated: false,
  })
  assert.deepEqual(sniffImage(tiff(70, 80)), {
    type: 'image/tiff',
    ext: 'tiff',
    width: 70,
    height: 80,
    animated: false,
  })
})

test('a big-endian TIFF and an OS/2 BMP header', () => {
  const motorola = Buffer.alloc(8 + 2 + 12 + 4)
  motorola.write('MM\0*', 0, 'latin1')
  motorola.writeUInt32BE(8, 4)
  motorola.writeUInt16BE(1, 8)
  motorola.writeUInt16BE(257, 10)
  motorola.writeUInt16BE(3, 12)
  motorola.writeUInt32BE(1, 14)
  motorola.writeUInt16BE(12, 18)
  assert.deepEqual(sniffImage(motorola), {
    type: 'image/tiff',
    ext: 'tiff',
    width: 0,
    height: 12,
    animated: false,
  })
  const core = Buffer.alloc(26)
  core.write('BM', 0, 'latin1')
  core.writeUInt32LE(12, 14)
  core.writeUInt16LE(5, 18)
  core.writeUInt16LE(6, 20)
  assert.deepEqual(sniffImage(core), { type: 'image/bmp', ext: 'bmp', width: 5, height: 6, animated: false })
})

test('a progressive JPEG after other segments; a JPEG without SOF has unknown dimensions', () => {
  const dqt = Buffer.from([0xff, 0xdb, 0x00, 0x04, 0x00, 0x00])
  const sof2 = Buffer.from([0xff, 0xc2, 0x00, 0x0b, 0x08, 0x00, 0x0a, 0x00, 0x14, 0x01, 0x01, 0x11, 0x00])
  const progressive = Buffer.concat([Buffer.from([0xff, 0xd8]), dqt, sof2])
  assert.deepEqual(sniffImage(progressive), {
    type: 'image/jpeg',
    ext: 'jpg',
    width: 20,
    height: 10,
    animated: false,
  })
  assert.deepEqual(sniffImage(Buffer.from([0xff, 0xd8, 0xff, 0xd9])), {
    type: 'image/jpeg',
    ext: 'jpg',
    width: 0,
    height: 0,
    animated: false,
  })
})

test('formats Imgur rejects are not images', () => {
  for (const bytes of [webp(), heic(), htmlPage(), mp4(), webm(), Buffer.alloc(0), Buffer.from('BM')]) {
    assert.equal(sniffImage(bytes), undefined)
  }
})

test('video formats: MP4, MOV and WebM; HEIC is ftyp but not a video', () => {
  assert.deepEqual(sniffVideo(mp4()), { type: 'video/mp4', ext: 'mp4', width: 0, height: 0, animated: true })
  assert.equal(sniffVideo(mov())?.type, 'video/quicktime')
  assert.equal(sniffVideo(webm())?.type, 'video/webm')
  for (const bytes of [heic(), png(), gif(), Buffer.alloc(0)]) assert.equal(sniffVideo(bytes), undefined)
})

test('truncated headers never throw', () => {
  for (const bytes of [png(), gif(1, 1, 2), jpeg(), bmp(), tiff()]) {
    for (let length = 0; length < bytes.length; length += 1) {
      assert.doesNotThrow(() => sniffImage(bytes.subarray(0, length)))
    }
  }
})
