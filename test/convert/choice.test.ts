import assert from 'node:assert/strict'
import { availableParallelism } from 'node:os'
import { describe, test } from 'node:test'
import sharp from 'sharp'
import { webpCoding } from '../../src/convert/containers.ts'
import { decodeCount } from '../../src/convert/decode.ts'
import { threadsPerImage } from '../../src/convert/limits.ts'
import { createPreparer, type PrepareOptions } from '../../src/convert/prepare.ts'
import { classify } from '../../src/download/sniff.ts'
import {
  animatedWebp,
  avif,
  avifWithAlpha,
  gradient,
  heicPhoto,
  noise,
  PREPARE_OPTIONS,
  webp,
  webpDisplayP3,
  webpLossless,
  webpLossyWithAlpha,
  webpWithAlpha,
} from '../helpers/formats.ts'

/** The preparation's output, and how many times the source's pixels were decoded for it. */
async function prepare(bytes: Buffer, options: Partial<PrepareOptions> = {}) {
  const type = await classify(bytes)
  const before = decodeCount()
  const prepared = await createPreparer({ ...PREPARE_OPTIONS, ...options }).prepare(bytes, type)
  return { ...prepared, decodes: decodeCount() - before }
}

const transparent = async (bytes: Buffer) => !(await sharp(bytes).stats()).isOpaque

describe("a WebP's coding, read from its RIFF chunks", () => {
  test('VP8 is lossy, VP8L lossless, in simple and extended (VP8X) files alike', async () => {
    const cases: Array<[string, Buffer, string, string]> = [
      ['lossy', await webp(), 'VP8 ', 'lossy'],
      ['lossless', await webpLossless(), 'VP8L', 'lossless'],
      ['lossy with alpha (ALPH then VP8)', await webpLossyWithAlpha(), 'VP8X', 'lossy'],
      [
        'lossless with an ICC profile (ICCP then VP8L)',
        await webpDisplayP3().then(lossless),
        'VP8X',
        'lossless',
      ],
      ['animated (each frame in an ANMF)', await animatedWebp(2, 16), 'VP8X', 'lossy'],
    ]
    for (const [what, bytes, first, coding] of cases) {
      assert.equal(bytes.toString('latin1', 12, 16), first, `${what}: the file is laid out as expected`)
      assert.equal(webpCoding(bytes), coding, what)
    }
  })
  test('anything else, or a truncated file, says nothing (and never throws)', async () => {
    const bytes = await webp()
    assert.equal(webpCoding(await gradient(4, 4).png().toBuffer()), undefined)
    assert.equal(webpCoding(Buffer.from('RIFF')), undefined)
    assert.equal(webpCoding(bytes.subarray(0, 14)), undefined)
    // A chunk claiming more bytes than there are.
    const lying = Buffer.from(bytes.subarray(0, 20))
    lying.write('XXXX', 12, 'latin1')
    lying.writeUInt32LE(0xffffffff, 16)
    assert.equal(webpCoding(lying), undefined)
  })
})

/** The WebP without its ICCP chunk (withMetadata() attaches an sRGB profile along with the orientation). */
function withoutIcc(webp: Buffer): Buffer {
  const parts = [webp.subarray(0, 12)]
  for (let at = 12; at + 8 <= webp.length; ) {
    const size = webp.readUInt32LE(at + 4)
    const end = at + 8 + size + (size % 2)
    if (webp.toString('latin1', at, at + 4) !== 'ICCP') parts.push(webp.subarray(at, end))
    at = end
  }
  const out = Buffer.concat(parts)
  out.writeUInt32LE(out.length - 8, 4)
  // VP8X's flags: bit 5 announces an ICC profile.
  if (out.toString('latin1', 12, 16) === 'VP8X') out[20] = (out[20] ?? 0) & ~0x20
  return out
}

const lossless = (bytes: Buffer) => sharp(bytes).webp({ lossless: true }).keepIccProfile().toBuffer()

describe('the output follows from what the source is, decoded once', () => {
  test('a lossy WebP (a photo) becomes a JPEG, no PNG tried', async () => {
    const prepared = await prepare(await webp(400, 200))
    assert.deepEqual(prepared.converted, { from: 'image/webp', to: 'image/jpeg' })
    assert.equal((await sharp(prepared.bytes).metadata()).format, 'jpeg')
    assert.equal(prepared.decodes, 1)
  })
  test('a lossless WebP becomes a PNG with the very same pixels', async () => {
    const bytes = await webpLossless(300, 200)
    const prepared = await prepare(bytes)
    assert.deepEqual(prepared.converted, { from: 'image/webp', to: 'image/png' })
    const [a, b] = await Promise.all([bytes, prepared.bytes].map((x) => sharp(x).raw().toBuffer()))
    assert.ok(a?.equals(b as Buffer), 'same pixels')
    assert.equal(prepared.decodes, 1)
  })
  test('a transparent lossless WebP becomes a PNG that keeps it, without a separate look at its alpha', async () => {
    const prepared = await prepare(await webpWithAlpha())
    assert.equal(prepared.mime, 'image/png')
    assert.ok(await transparent(prepared.bytes))
    assert.equal(prepared.decodes, 1)
  })
  test('a transparent lossy WebP becomes a PNG that keeps it: its alpha looked at and encoded from one decode', async () => {
    const prepared = await prepare(await webpLossyWithAlpha(400, 200))
    assert.equal(prepared.mime, 'image/png')
    assert.ok(await transparent(prepared.bytes))
    const meta = await sharp(prepared.bytes).metadata()
    assert.deepEqual([meta.width, meta.height], [400, 200])
    assert.equal(prepared.decodes, 1)
  })
  test('the one decode of a transparent lossy WebP applies its orientation', async () => {
    const bytes = withoutIcc(
      await gradient(40, 20, 4, 0).webp({ quality: 90 }).withMetadata({ orientation: 6 }).toBuffer(),
    )
    const meta = await sharp(bytes).metadata()
    assert.deepEqual([meta.orientation, meta.hasProfile, meta.hasAlpha], [6, false, true])
    const prepared = await prepare(bytes)
    const out = await sharp(prepared.bytes).metadata()
    assert.deepEqual([out.format, out.width, out.height], ['png', 20, 40])
    assert.equal(prepared.decodes, 1)
  })
  test('with an ICC profile (which raw pixels cannot carry), the alpha is looked at in a decode of its own', async () => {
    const bytes = await gradient(40, 20, 4, 0).withIccProfile('p3').webp({ quality: 90 }).toBuffer()
    const prepared = await prepare(bytes)
    assert.equal(prepared.mime, 'image/png')
    assert.deepEqual((await sharp(prepared.bytes).metadata()).icc, (await sharp(bytes).metadata()).icc)
    assert.equal(prepared.decodes, 2)
  })
  test('an AVIF becomes a JPEG', async () => {
    const prepared = await prepare(await avif(400, 200))
    assert.deepEqual(prepared.converted, { from: 'image/avif', to: 'image/jpeg' })
    assert.equal(prepared.decodes, 1)
  })
  test('an AVIF whose alpha channel is all opaque becomes a JPEG; one with transparency, a PNG', async () => {
    const opaque = await avifWithAlpha(255)
    assert.equal((await sharp(opaque).metadata()).hasAlpha, true, 'the file has an alpha channel')
    const photo = await prepare(opaque)
    assert.equal(photo.mime, 'image/jpeg')
    assert.equal(photo.decodes, 1)
    const cutOut = await prepare(await avifWithAlpha(0))
    assert.equal(cutOut.mime, 'image/png')
    assert.ok(await transparent(cutOut.bytes))
    assert.equal(cutOut.decodes, 1)
  })
  test('a HEVC HEIC (a phone photo) becomes a JPEG, decoded once by its decoder thread', async () => {
    const prepared = await prepare(heicPhoto())
    assert.deepEqual(prepared.converted, { from: 'image/heic', to: 'image/jpeg' })
    assert.equal((await sharp(prepared.bytes).metadata()).hasAlpha, false)
    assert.equal(prepared.decodes, 1)
  })
})

describe('a size check only when it matters', () => {
  test('a lossless WebP whose PNG is over the cap becomes a JPEG', async () => {
    const bytes = await noise(300, 300).webp({ lossless: true }).toBuffer()
    const png = await prepare(bytes)
    assert.equal(png.mime, 'image/png')
    const prepared = await prepare(bytes, { maxImageBytes: Math.floor(png.bytes.length / 2) })
    assert.deepEqual(prepared.converted, { from: 'image/webp', to: 'image/jpeg' })
    assert.equal(prepared.decodes, 2, 'the PNG, then the JPEG')
  })
  test('a transparent PNG over the cap is looked at and quantised from the same decode', async () => {
    const bytes = await noise(300, 300).ensureAlpha(0.5).png({ compressionLevel: 0 }).toBuffer()
    const prepared = await prepare(bytes, { maxImageBytes: 100_000 })
    assert.equal(prepared.mime, 'image/png')
    assert.ok(prepared.bytes.length <= 100_000)
    assert.ok(await transparent(prepared.bytes))
    // The PNG tried first, then one decode to raw pixels: the alpha checked, the palette made from them.
    assert.equal(prepared.decodes, 2)
  })
})

describe("sharp's threads", () => {
  test('images at once × threads per image ≈ the cores, and never less than one thread', () => {
    assert.equal(threadsPerImage(2, 2), 1)
    assert.equal(threadsPerImage(1, 2), 2)
    assert.equal(threadsPerImage(2, 8), 4)
    assert.equal(threadsPerImage(3, 8), 2)
    assert.equal(threadsPerImage(4, 2), 1)
  })
  test('the preparer sets them from its concurrency', async () => {
    await prepare(await webp(), { concurrency: 1 })
    assert.equal(sharp.concurrency(), threadsPerImage(1, availableParallelism()))
  })
})
