import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import sharp from 'sharp'
import { createPreparer, type PrepareOptions } from '../../src/convert/prepare.ts'
import { classify } from '../../src/download/sniff.ts'
import {
  animatedWebp,
  avif,
  gradient,
  heicHevc,
  heicPhoto,
  heicPhotoRotated,
  heifAv1,
  noise,
  PREPARE_OPTIONS,
  pngBomb,
  webp,
  webpBomb,
  webpDisplayP3,
  webpRotated,
  webpWithAlpha,
} from '../helpers/formats.ts'
import { png } from '../helpers/images.ts'

const OPTIONS: PrepareOptions = { ...PREPARE_OPTIONS, concurrency: 2 }

async function prepare(bytes: Buffer, options: Partial<PrepareOptions> = {}) {
  return createPreparer({ ...OPTIONS, ...options }).prepare(bytes, await classify(bytes))
}

async function fails(promise: Promise<unknown>, code: string, message: RegExp) {
  await assert.rejects(promise, (error: Error & { code?: string; retryable?: boolean }) => {
    assert.equal(error.code, code, error.message)
    assert.equal(error.retryable, false)
    assert.match(error.message, message)
    return true
  })
}

describe('images Imgur takes, under the cap', () => {
  test('go through untouched: the same bytes, nothing reported', async () => {
    const bytes = png(1)
    const prepared = await prepare(bytes)
    assert.equal(prepared.bytes, bytes)
    assert.deepEqual(prepared, { bytes, mime: 'image/png', ext: 'png' })
  })
})

describe('conversion of formats Imgur refuses', () => {
  test('an opaque lossy WebP becomes a JPEG, same size, same look', async () => {
    const prepared = await prepare(await webp(40, 20))
    assert.deepEqual(prepared.converted, { from: 'image/webp', to: 'image/jpeg' })
    assert.equal(prepared.reencoded, undefined)
    const meta = await sharp(prepared.bytes).metadata()
    assert.deepEqual([meta.width, meta.height], [40, 20])
    // Left edge red, right edge blue, as drawn.
    const { data } = await sharp(prepared.bytes).raw().toBuffer({ resolveWithObject: true })
    assert.ok((data[0] ?? 0) > 200 && (data[2] ?? 255) < 60, `left pixel ${data.subarray(0, 3).join(',')}`)
  })
  test('a WebP with transparency becomes a PNG that keeps it', async () => {
    const prepared = await prepare(await webpWithAlpha())
    assert.equal(prepared.mime, 'image/png')
    const stats = await sharp(prepared.bytes).stats()
    assert.equal(stats.isOpaque, false)
  })
  test('an animated WebP becomes an animated GIF with its frames', async () => {
    const prepared = await prepare(await animatedWebp(3, 16))
    assert.deepEqual(prepared.converted, { from: 'image/webp', to: 'image/gif' })
    const meta = await sharp(prepared.bytes, { animated: true }).metadata()
    assert.equal(meta.format, 'gif')
    assert.equal(meta.pages, 3)
    assert.equal(meta.pageHeight, 16)
  })
  test('an animated WebP whose GIF is over the cap fails, or is scaled down when re-encoding is on', async () => {
    const bytes = await animatedWebp(4, 96, true)
    await fails(
      prepare(bytes, { maxImageBytes: 20_000, reencodeOversized: false }),
      'image_too_large',
      /converted to GIF, the WebP image is .* over the 19\.5 KiB limit \(re-encoding to fit is off\)/,
    )
    const prepared = await prepare(bytes, { maxImageBytes: 20_000 })
    assert.ok(prepared.bytes.length <= 20_000)
    const meta = await sharp(prepared.bytes, { animated: true }).metadata()
    assert.equal(meta.pages, 4)
    assert.ok(meta.width < 96)
    assert.deepEqual(prepared.reencoded, { fromBytes: bytes.length, toBytes: prepared.bytes.length })
  })
  test('AVIF is converted', async () => {
    const prepared = await prepare(await avif())
    assert.equal(prepared.converted?.from, 'image/avif')
    assert.deepEqual([(await sharp(prepared.bytes).metadata()).width], [40])
  })
  test('a HEIF the image library can decode (AV1-coded, brand heic) is converted', async () => {
    const prepared = await prepare(await heifAv1())
    assert.equal(prepared.converted?.from, 'image/heic')
    assert.equal((await sharp(prepared.bytes).metadata()).width, 40)
  })
  test('a HEVC-coded HEIC (what phones make) is converted to JPEG, same size, same look', async () => {
    const bytes = heicPhoto()
    const prepared = await prepare(bytes)
    assert.deepEqual(prepared.converted, { from: 'image/heic', to: 'image/jpeg' })
    assert.equal(prepared.reencoded, undefined)
    const meta = await sharp(prepared.bytes).metadata()
    assert.deepEqual([meta.width, meta.height], [64, 48])
    assert.equal(meta.hasAlpha, false)
    // Left edge red, right edge blue, as drawn (lossy twice over, so roughly).
    const { data } = await sharp(prepared.bytes).raw().toBuffer({ resolveWithObject: true })
    assert.ok((data[0] ?? 0) > 200 && (data[2] ?? 255) < 60, `left pixel ${data.subarray(0, 3).join(',')}`)
    const right = (64 - 1) * meta.channels
    assert.ok(
      (data[right] ?? 255) < 60 && (data[right + 2] ?? 0) > 200,
      `right pixel ${data.subarray(right, right + 3).join(',')}`,
    )
  })
  test("a HEVC HEIC's rotation (irot box) is applied: 64 × 48 turned anticlockwise is 48 × 64", async () => {
    const prepared = await prepare(heicPhotoRotated())
    const { data, info } = await sharp(prepared.bytes).raw().toBuffer({ resolveWithObject: true })
    assert.deepEqual([info.width, info.height], [48, 64])
    // The right edge (blue) is now on top, the top-left corner (red) bottom left.
    assert.ok(
      (data[2] ?? 0) > 200 && (data[0] ?? 255) < 60,
      `top-left pixel ${data.subarray(0, 3).join(',')}`,
    )
    const bottomLeft = 63 * 48 * info.channels
    assert.ok((data[bottomLeft] ?? 0) > 200 && (data[bottomLeft + 2] ?? 255) < 60, 'bottom-left pixel red')
  })
  test('a HEVC HEIC over the cap is re-encoded to fit', async () => {
    const prepared = await prepare(heicPhoto(), { maxImageBytes: 600 })
    assert.ok(prepared.bytes.length <= 600, `${prepared.bytes.length} bytes`)
    assert.equal(prepared.converted?.from, 'image/heic')
  })
  test('a corrupt HEVC HEIC fails with a reason, not a crash', async () => {
    await fails(prepare(heicHevc()), 'image_unreadable', /the HEIC\/HEIF image could not be decoded/)
    const truncated = Buffer.from(heicPhoto().subarray(0, 300))
    await fails(prepare(truncated), 'image_unreadable', /the HEIC\/HEIF image could not be decoded/)
  })
  test('orientation is applied: EXIF orientation 6 turns 40 × 20 into 20 × 40', async () => {
    const prepared = await prepare(await webpRotated())
    const meta = await sharp(prepared.bytes).metadata()
    assert.deepEqual([meta.width, meta.height], [20, 40])
    assert.ok(meta.orientation === undefined || meta.orientation === 1)
  })
  test('the colour profile is kept (Display P3 stays Display P3)', async () => {
    const bytes = await webpDisplayP3()
    const prepared = await prepare(bytes)
    const [source, output] = await Promise.all([sharp(bytes).metadata(), sharp(prepared.bytes).metadata()])
    assert.equal(output.hasProfile, true)
    assert.deepEqual(output.icc, source.icc)
  })
  test('with conversion off, the format is refused as before', () =>
    fails(
      webp().then((bytes) => prepare(bytes, { convertUnsupported: false })),
      'unsupported_format',
      /^WebP images are not accepted by Imgur's API$/,
    ))
  test('a corrupt WebP fails with a reason, not a crash', async () => {
    const bytes = (await webp(400, 200)).subarray(0, 200)
    await fails(prepare(Buffer.from(bytes)), 'image_unreadable', /the WebP image could not be decoded/)
  })
})

describe('decompression bombs', () => {
  test('a 30-byte WebP declaring 16383 × 16383 is refused before decoding', async () => {
    const before = process.memoryUsage().rss
    await fails(
      prepare(webpBomb()),
      'image_too_many_pixels',
      /16383 × 16383 pixels \(268\.4 megapixels\), over the 100-megapixel limit/,
    )
    assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024)
  })
  test('an oversized PNG declaring 50,000 × 50,000 is refused before decoding', () =>
    fails(
      prepare(pngBomb(5000), { maxImageBytes: 1000 }),
      'image_too_many_pixels',
      /50000 × 50000 pixels \(2500 megapixels\)/,
    ))
  test('a HEVC HEIC over the limit is refused before its pixels are decoded', () =>
    fails(
      prepare(heicPhoto(), { maxInputPixels: 3000 }),
      'image_too_many_pixels',
      /64 × 48 pixels \(0\.003 megapixels\), over the 0\.003-megapixel limit/,
    ))
  test('the limit is configurable', () =>
    fails(
      prepare(webpBomb(), { maxInputPixels: 1000 }),
      'image_too_many_pixels',
      /over the 0\.001-megapixel limit/,
    ))
})

describe('oversized images are re-encoded to fit, quality first, then size', () => {
  test('a smooth JPEG fits by lowering quality alone: same dimensions, still JPEG', async () => {
    const bytes = await gradient(800, 600).jpeg({ quality: 100 }).toBuffer()
    const prepared = await prepare(bytes, { maxImageBytes: Math.floor(bytes.length * 0.8) })
    assert.equal(prepared.mime, 'image/jpeg')
    assert.equal(prepared.converted, undefined)
    assert.deepEqual(prepared.reencoded, { fromBytes: bytes.length, toBytes: prepared.bytes.length })
    const meta = await sharp(prepared.bytes).metadata()
    assert.deepEqual([meta.width, meta.height], [800, 600])
  })
  test('a noisy JPEG at quality 100 needs smaller dimensions too; orientation is kept', async () => {
    const bytes = await noise(1200, 900).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer()
    const cap = 150_000
    const prepared = await prepare(bytes, { maxImageBytes: cap })
    assert.ok(prepared.bytes.length <= cap, `${prepared.bytes.length} bytes`)
    const meta = await sharp(prepared.bytes).metadata()
    assert.equal(meta.format, 'jpeg')
    assert.ok(meta.width < 900 && meta.height < 1200, `${meta.width} × ${meta.height}`)
    // Rotated: portrait, with the aspect ratio kept.
    assert.ok(Math.abs(meta.height / meta.width - 1200 / 900) < 0.02, `${meta.width} × ${meta.height}`)
  })
  test('a PNG with transparency stays a PNG with transparency', async () => {
    const bytes = await noise(300, 300).ensureAlpha(0.5).png({ compressionLevel: 0 }).toBuffer()
    const prepared = await prepare(bytes, { maxImageBytes: 100_000 })
    assert.equal(prepared.mime, 'image/png')
    assert.ok(prepared.bytes.length <= 100_000)
    assert.equal((await sharp(prepared.bytes).stats()).isOpaque, false)
  })
  test('an opaque uncompressed PNG stays a (lossless) PNG when that fits', async () => {
    const bytes = await gradient(300, 200).png({ compressionLevel: 0 }).toBuffer()
    const prepared = await prepare(bytes, { maxImageBytes: Math.floor(bytes.length / 2) })
    assert.equal(prepared.mime, 'image/png')
    assert.equal(prepared.converted, undefined)
    assert.equal(prepared.reencoded?.fromBytes, bytes.length)
    const [a, b] = await Promise.all([bytes, prepared.bytes].map((x) => sharp(x).raw().toBuffer()))
    assert.ok(a?.equals(b as Buffer), 'same pixels')
  })
  test('an opaque PNG photo that PNG cannot fit becomes a JPEG', async () => {
    const bytes = await noise(300, 300).png({ compressionLevel: 0 }).toBuffer()
    const prepared = await prepare(bytes, { maxImageBytes: 100_000 })
    assert.deepEqual(prepared.converted, { from: 'image/png', to: 'image/jpeg' })
    assert.ok(prepared.bytes.length <= 100_000)
  })
  test('with re-encoding off, an oversized image fails with image_too_large', () =>
    fails(
      prepare(png(0, { padTo: 5000 }), { maxImageBytes: 4000, reencodeOversized: false }),
      'image_too_large',
      /image is 4\.9 KiB, over Imgur's 3\.9 KiB limit \(re-encoding to fit is off\)/,
    ))
  test('an oversized APNG is refused rather than losing its animation', () =>
    fails(
      prepare(png(0, { animated: true, padTo: 5000 }), { maxImageBytes: 4000 }),
      'image_too_large',
      /animated PNG/,
    ))
  test('an image that cannot fit at any step fails with image_too_large', () =>
    fails(
      prepare(png(0, { padTo: 5000 }), { maxImageBytes: 10 }),
      'image_too_large',
      /could not be re-encoded under the 10 bytes limit/,
    ))
})
