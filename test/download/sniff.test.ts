import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { identify, sniffVideo } from '../../src/download/sniff.ts'
import { bmp, gif, HTML, jpeg, png, tiff, webp } from '../helpers/images.ts'

/** A minimal ISO-BMFF `ftyp` box (major brand, minor version 0, compatible brands). */
function ftyp(major: string, ...compatible: string[]): Buffer {
  const brands = [major, '\0\0\0\0', ...compatible].join('')
  const box = Buffer.alloc(8 + brands.length + 16)
  box.writeUInt32BE(8 + brands.length)
  box.write(`ftyp${brands}`, 4, 'latin1')
  return box
}

const rejects = (bytes: Uint8Array, code: string, message: string | RegExp) =>
  assert.rejects(identify(bytes), (error: Error & { code?: string; retryable?: boolean }) => {
    assert.equal(error.code, code)
    assert.equal(error.retryable, false)
    if (typeof message === 'string') assert.equal(error.message, message)
    else assert.match(error.message, message)
    return true
  })

describe('identify: accepted formats', () => {
  const cases: Array<[string, Buffer, string, string]> = [
    ['JPEG', jpeg(1), 'image/jpeg', 'jpg'],
    ['PNG', png(1), 'image/png', 'png'],
    ['APNG (reported as PNG)', png(1, { animated: true }), 'image/png', 'png'],
    ['GIF', gif(1), 'image/gif', 'gif'],
    ['TIFF', tiff(1), 'image/tiff', 'tiff'],
    ['BMP', bmp(1), 'image/bmp', 'bmp'],
    ['padded PNG', png(1, { padTo: 5000 }), 'image/png', 'png'],
  ]
  for (const [name, bytes, mime, ext] of cases) {
    test(name, async () => assert.deepEqual(await identify(bytes), { mime, ext }))
  }
})

describe('identify: images Imgur refuses', () => {
  test('WebP', () => rejects(webp(), 'unsupported_format', "WebP images are not accepted by Imgur's API"))
  test('AVIF, also with the mif1 major brand file-type reads as HEIF', async () => {
    await rejects(
      ftyp('avif', 'mif1', 'miaf'),
      'unsupported_format',
      "AVIF images are not accepted by Imgur's API",
    )
    await rejects(
      ftyp('mif1', 'avif', 'miaf'),
      'unsupported_format',
      "AVIF images are not accepted by Imgur's API",
    )
  })
  test('HEIC/HEIF', async () => {
    await rejects(
      ftyp('heic', 'mif1'),
      'unsupported_format',
      "HEIC/HEIF images are not accepted by Imgur's API",
    )
    await rejects(
      ftyp('mif1', 'heic'),
      'unsupported_format',
      "HEIC/HEIF images are not accepted by Imgur's API",
    )
  })
  test('SVG, with or without an XML declaration', async () => {
    const message = "SVG images are not accepted by Imgur's API"
    await rejects(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), 'unsupported_format', message)
    await rejects(Buffer.from('<?xml version="1.0"?>\n<svg width="1"/>'), 'unsupported_format', message)
  })
  test('ICO', () => {
    const ico = Buffer.from(
      '00000100010010100000010020006804000016000000280000001000000020000000010020',
      'hex',
    )
    return rejects(
      Buffer.concat([ico, Buffer.alloc(64)]),
      'unsupported_format',
      "ICO images are not accepted by Imgur's API",
    )
  })
  test('videos (MP4, MOV, WebM) are not images: they go to the video field', async () => {
    const webm = Buffer.from(
      '1a45dfa3a34286810142f7810142f2810442f381084282847765626d42878104428581021853806701',
      'hex',
    )
    for (const [bytes, name] of [
      [ftyp('isom', 'iso2', 'mp41'), 'MP4'],
      [ftyp('qt  ', 'qt  '), 'MOV'],
      [webm, 'WebM'],
    ] as const) {
      await rejects(bytes, 'unsupported_format', `${name} is a video, not an image`)
    }
  })
})

describe("sniffVideo: a download's head", () => {
  const webm = Buffer.from(
    '1a45dfa3a34286810142f7810142f2810442f381084282847765626d42878104428581021853806701',
    'hex',
  )
  test('names the videos Imgur takes', async () => {
    assert.equal((await sniffVideo(ftyp('isom', 'iso2', 'mp41')))?.mime, 'video/mp4')
    assert.equal((await sniffVideo(ftyp('qt  ', 'qt  ')))?.mime, 'video/quicktime')
    assert.equal((await sniffVideo(webm))?.mime, 'video/webm')
  })
  test('finds no video in images: PNG, JPEG and GIF by their signature, the others through file-type', async () => {
    for (const bytes of [
      png(1),
      png(1, { animated: true }),
      jpeg(1),
      gif(1),
      webp(),
      tiff(1),
      ftyp('avif', 'mif1'),
    ]) {
      assert.equal(await sniffVideo(bytes), undefined)
    }
  })
  test('a file that starts with a PNG, JPEG or GIF signature is never streamed as a video', async () => {
    const mp4 = ftyp('isom', 'iso2', 'mp41')
    for (const signature of ['89504e470d0a1a0a', 'ffd8ff', '47494638']) {
      assert.equal(await sniffVideo(Buffer.concat([Buffer.from(signature, 'hex'), mp4])), undefined)
    }
  })
})

describe('identify: not images, with a message a user can act on', () => {
  test('an HTML error page', () =>
    rejects(Buffer.from(HTML), 'not_an_image', 'not an image: looks like HTML'))
  test('HTML with a BOM and leading whitespace', () =>
    rejects(
      Buffer.from('\uFEFF\n  <html><body>hi</body></html>'),
      'not_an_image',
      'not an image: looks like HTML',
    ))
  test('JSON', () =>
    rejects(Buffer.from('{"error":"nope"}'), 'not_an_image', 'not an image: looks like JSON'))
  test('plain text', () =>
    rejects(Buffer.from('Access denied.\n'), 'not_an_image', 'not an image: looks like text'))
  test('XML', () =>
    rejects(Buffer.from('<?xml version="1.0"?><rss/>'), 'not_an_image', 'not an image: looks like XML'))
  test('"BM" without a plausible bitmap header is not a BMP', async () => {
    await rejects(
      Buffer.from('BM is the start of this sentence'),
      'not_an_image',
      'not an image: looks like text',
    )
    const broken = bmp(1)
    broken.writeUInt16LE(3, 26) // planes must be 1
    await rejects(broken, 'not_an_image', /^not an image: unrecognised content \(first bytes 42 4d /)
  })
  test('other known files are named', () =>
    rejects(
      Buffer.from('%PDF-1.4\n%\u00e2\u00e3\n1 0 obj\n', 'latin1'),
      'not_an_image',
      'not an image: looks like PDF data',
    ))
  test('unknown binary shows its first bytes, briefly', () =>
    rejects(
      Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
      'not_an_image',
      'not an image: unrecognised content (first bytes 00 01 02 03 04 05 06 07…)',
    ))
  test('empty input', () => rejects(new Uint8Array(0), 'not_an_image', 'not an image: the file is empty'))
})

describe('test image builders', () => {
  test('give distinct bytes per seed and are deterministic', () => {
    for (const build of [png, jpeg, gif, bmp, tiff]) {
      const seen = new Set([0, 1, 2, 255, 256, 65536, 2 ** 31].map((seed) => build(seed).toString('hex')))
      assert.equal(seen.size, 7, build.name)
      assert.deepEqual(build(42), build(42))
    }
    assert.notDeepEqual(png(1, { animated: true }), png(2, { animated: true }))
  })
  test('png padTo gives exactly that many bytes and refuses sizes below the minimum', () => {
    assert.equal(png(3, { padTo: 4096 }).length, 4096)
    assert.throws(() => png(3, { padTo: 10 }), RangeError)
  })
})
