import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { fileTypeFromBuffer } from 'file-type'
import { commonImage, identify, sniffVideo } from '../../src/download/sniff.ts'
import { bmp, chunk, gif, HTML, jpeg, png, tiff, webp } from '../helpers/images.ts'

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

describe('commonImage: PNG, APNG, JPEG and GIF without file-type', () => {
  const NAMES: Record<string, string> = { png: 'PNG', apng: 'APNG', jpg: 'JPEG', gif: 'GIF' }
  const PNG_SIGNATURE = Buffer.from('89504e470d0a1a0a', 'hex')

  test('tells the images the service meets most, so file-type is not run for them', () => {
    assert.equal(commonImage(png(1))?.name, 'PNG')
    assert.equal(commonImage(png(1, { padTo: 5000 }))?.name, 'PNG')
    assert.equal(commonImage(png(1, { animated: true }))?.name, 'APNG')
    assert.equal(commonImage(jpeg(1))?.name, 'JPEG')
    assert.equal(commonImage(gif(1))?.name, 'GIF')
  })

  test('leaves to file-type what it is not sure of: JPEG-LS, other formats, PNGs it cannot walk to an IDAT', () => {
    const ihdr = chunk('IHDR', Buffer.alloc(13))
    const negative = Buffer.from('80000000', 'hex')
    for (const bytes of [
      Buffer.from('ffd8fff7000000', 'hex'), // JPEG-LS: file-type names it, and it is refused
      Buffer.from('ffd8ff', 'hex'),
      webp(),
      tiff(1),
      bmp(1),
      Buffer.from(HTML),
      PNG_SIGNATURE,
      Buffer.concat([PNG_SIGNATURE, ihdr]), // no IDAT before the end
      Buffer.concat([PNG_SIGNATURE, chunk('tEXt', Buffer.from('a')), ihdr]), // a chunk before IHDR
      Buffer.concat([PNG_SIGNATURE, chunk('IHDR', Buffer.alloc(12))]), // an IHDR of the wrong size
      Buffer.concat([PNG_SIGNATURE, negative, Buffer.from('IDAT'), Buffer.alloc(8)]), // a negative length
      // A chunk whose declared length runs past the end, before any IDAT.
      Buffer.concat([
        PNG_SIGNATURE,
        ihdr,
        Buffer.from('00ffffff', 'hex'),
        Buffer.from('tEXt'),
        Buffer.alloc(8),
      ]),
    ]) {
      assert.equal(commonImage(bytes), undefined, bytes.subarray(0, 40).toString('hex'))
    }
  })

  test('whenever it answers, file-type gives the same answer (random PNG chunk walks, signatures and tails)', async () => {
    const type = fc.oneof(
      fc.constantFrom('IHDR', 'IDAT', 'acTL', 'CgBI', 'tEXt', 'IEND', 'fcTL'),
      fc.string({
        unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
        minLength: 4,
        maxLength: 4,
      }),
    )
    // A chunk whose declared length may or may not match the data that follows it.
    const pngChunk = fc
      .record({
        type,
        data: fc.uint8Array({ maxLength: 40 }),
        length: fc.oneof(
          fc.constant(undefined),
          fc.constant(13),
          fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        ),
      })
      .map(({ type, data, length }) => {
        const whole = chunk(type, data)
        if (length !== undefined) whole.writeInt32BE(length, 0)
        return whole
      })
    const file = fc.oneof(
      // Chunks, then a tail that may hold a chunk's header alone, cut off at the end.
      fc
        .tuple(
          fc.boolean(),
          fc.array(pngChunk, { maxLength: 6 }),
          fc.oneof(fc.uint8Array({ maxLength: 12 }), pngChunk),
        )
        .map(([header, chunks, tail]) => {
          const first = header ? [chunk('IHDR', Buffer.alloc(13))] : []
          const cut = Buffer.from(tail).subarray(0, 8)
          return Buffer.concat([PNG_SIGNATURE, ...first, ...chunks, cut])
        }),
      fc
        .tuple(fc.constantFrom('ffd8ff', '474946', '89504e47'), fc.uint8Array({ maxLength: 40 }))
        .map(([signature, rest]) => Buffer.concat([Buffer.from(signature, 'hex'), rest])),
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
    )
    let answered = 0
    await fc.assert(
      fc.asyncProperty(file, async (bytes) => {
        const known = commonImage(bytes)
        if (known === undefined) return
        answered += 1
        const found = await fileTypeFromBuffer(bytes)
        assert.equal(
          known.name,
          NAMES[found?.ext ?? ''],
          `${bytes.toString('hex')}: file-type says ${found?.ext}`,
        )
      }),
      { numRuns: 3000 },
    )
    // The property must not hold only because nothing was answered.
    assert.ok(answered > 300, `only ${answered} of 3000 files were answered`)
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

/** The npm packages a child loads while it sniffs the images `make` (test/helpers/images.ts) makes. */
function packagesLoadedSniffing(make: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'sniff-loaded-'))
  try {
    const file = join(dir, 'packages')
    const script = `
      import { classify, sniffVideo } from ${JSON.stringify(new URL('../../src/download/sniff.ts', import.meta.url).href)}
      import * as images from ${JSON.stringify(new URL('../helpers/images.ts', import.meta.url).href)}
      for (const bytes of ${make}) {
        await sniffVideo(bytes.subarray(0, 64))
        await classify(bytes)
      }`
    const child = spawnSync(
      process.execPath,
      ['--import', './test/helpers/loaded-packages.ts', '--input-type=module', '-e', script],
      { env: { ...process.env, LOADED_PACKAGES_FILE: file }, encoding: 'utf8' },
    )
    assert.equal(child.status, 0, child.stderr)
    return readFileSync(file, 'utf8').split('\n')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

test('file-type is loaded with the first bytes commonImage cannot tell, not before', () => {
  // Its code would be heap that every full collection of the pipeline's thread marks.
  const common = packagesLoadedSniffing(
    '[images.png(1), images.jpeg(2), images.gif(3), images.png(4, { animated: true })]',
  )
  assert.ok(!common.includes('file-type'), `loaded: ${common.join(', ')}`)
  assert.ok(packagesLoadedSniffing('[images.png(1), images.tiff(5)]').includes('file-type'))
})
