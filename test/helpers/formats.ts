/**
 * Real files of the formats the service converts or re-encodes, made in the test with sharp, plus
 * hand-built headers where sharp cannot or must not make the file (a broken HEVC HEIC,
 * decompression bombs) and one fixture: a real HEVC HEIC (the prebuilt libvips has no HEVC encoder).
 */
import { readFileSync } from 'node:fs'
import sharp, { type Sharp } from 'sharp'
import type { PrepareOptions } from '../../src/convert/prepare.ts'

/** The service's defaults for the preparer, one slot at a time (tests override what they test). */
export const PREPARE_OPTIONS: PrepareOptions = {
  maxImageBytes: 10 * 1024 * 1024,
  convertUnsupported: true,
  reencodeOversized: true,
  maxInputPixels: 100_000_000,
  concurrency: 1,
  timeoutMs: 30_000,
}

const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff])
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff])
const box = (type: string, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts)
  return Buffer.concat([u32(body.length + 8), Buffer.from(type, 'latin1'), body])
}
const fullBox = (type: string, version: number, ...parts: Buffer[]) =>
  box(type, Buffer.from([version, 0, 0, 0]), ...parts)

/** A left-to-right gradient, red to blue: a smooth "photo" that compresses well. */
export function gradient(width: number, height: number, channels: 3 | 4 = 3, alpha = 255): Sharp {
  const pixels = Buffer.alloc(width * height * channels)
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const at = (y * width + x) * channels
      const t = Math.round((x / Math.max(width - 1, 1)) * 255)
      pixels[at] = 255 - t
      pixels[at + 1] = Math.round((y / Math.max(height - 1, 1)) * 255)
      pixels[at + 2] = t
      if (channels === 4) pixels[at + 3] = x < width / 2 ? alpha : 255
    }
  }
  return sharp(pixels, { raw: { width, height, channels } })
}

/** Gaussian noise: the worst case for every encoder (nothing to compress). */
export const noise = (width: number, height: number) =>
  sharp({
    create: {
      width,
      height,
      channels: 3,
      background: '#808080',
      noise: { type: 'gaussian', mean: 128, sigma: 40 },
    },
  })

export const webp = (width = 40, height = 20) => gradient(width, height).webp({ quality: 90 }).toBuffer()
/** Half of it see-through. */
export const webpWithAlpha = (width = 40, height = 20) =>
  gradient(width, height, 4, 0).webp({ lossless: true }).toBuffer()
/** Lossless (VP8L): what screenshots and illustrations are saved as. */
export const webpLossless = (width = 40, height = 20) =>
  gradient(width, height).webp({ lossless: true }).toBuffer()
/** Lossy colour (VP8) with an alpha channel (ALPH) in an extended file (VP8X): half of it see-through. */
export const webpLossyWithAlpha = (width = 40, height = 20) =>
  gradient(width, height, 4, 0).webp({ quality: 90 }).toBuffer()
/** Stored 40 × 20 with EXIF orientation 6: shown rotated 90° clockwise, so 20 × 40. */
export const webpRotated = () => gradient(40, 20).webp().withMetadata({ orientation: 6 }).toBuffer()
export const webpDisplayP3 = () => gradient(40, 20).withIccProfile('p3').webp().toBuffer()

/** `frames` frames of `size` × `size`, each a different colour (and noisy, when asked: big GIFs). */
export async function animatedWebp(frames = 3, size = 16, noisy = false): Promise<Buffer> {
  const raw = await Promise.all(
    Array.from({ length: frames }, (_, i) =>
      (noisy ? noise(size, size) : gradient(size, size))
        .modulate({ hue: i * 90 })
        .ensureAlpha()
        .raw()
        .toBuffer(),
    ),
  )
  return sharp(Buffer.concat(raw), {
    raw: { width: size, height: size * frames, channels: 4, pageHeight: size },
  })
    .webp({ loop: 0, delay: Array(frames).fill(100) })
    .toBuffer()
}

export const avif = (width = 40, height = 20) => gradient(width, height).avif().toBuffer()
/** An AVIF with an alpha channel whose left half has the given alpha (255: a channel that is all opaque). */
export const avifWithAlpha = (alpha: number) => gradient(40, 20, 4, alpha).avif().toBuffer()

/** An AV1-coded HEIF under the `heic` brand: decodable by libheif's AV1 decoder, sniffed as HEIC. */
export async function heifAv1(): Promise<Buffer> {
  const file = await gradient(40, 20).heif({ compression: 'av1' }).toBuffer()
  return Buffer.from(
    file.toString('latin1').replace('ftypavif', 'ftypheic').replace('mif1avif', 'mif1heic'),
    'latin1',
  )
}

/**
 * A real HEVC HEIC, 64 × 48: `gradient(64, 48)` as PNG, then `heif-enc -q 50` (libheif 1.15 with
 * x265, Debian bookworm's libheif-examples).
 */
export const heicPhoto = () => readFileSync(new URL('../fixtures/photo.heic', import.meta.url))
/**
 * The same photo with an `irot` box (90° anticlockwise) on its primary (grid) item, added by hand
 * (the box appended to `ipco`, associated as essential in `ipma`, box sizes and the tile's `iloc`
 * offset moved by 10 bytes): shown 48 × 64, blue on top. `heif-info` reads it as 48x64.
 */
export const heicPhotoRotated = () => readFileSync(new URL('../fixtures/photo-rotated.heic', import.meta.url))
/**
 * A real HEVC HEIC of 2000 × 1500 pixels in one flat colour (#3366cc): made like `heicPhoto()`, 2.3 KB
 * on disk yet 3 megapixels to decode (its decoder's WebAssembly memory peaks near 24 MiB).
 */
export const heicLarge = () => readFileSync(new URL('../fixtures/photo-3mp.heic', import.meta.url))

/**
 * A HEIC laid out as phones make it (one `hvc1` item with a valid `hvcC`), with a few bytes of
 * picture data that no decoder can make sense of: the container is read, decoding fails.
 */
export function heicHevc(width = 64, height = 32): Buffer {
  const hvcC = box(
    'hvcC',
    Buffer.from([
      1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5d, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0,
    ]),
  )
  const iprp = box(
    'iprp',
    box('ipco', hvcC, fullBox('ispe', 0, u32(width), u32(height))),
    fullBox('ipma', 0, u32(1), u16(1), Buffer.from([2, 0x81, 0x02])),
  )
  const data = Buffer.from([0, 0, 0, 4, 0x26, 0x01, 0xaf, 0x00])
  const meta = (offset: number) =>
    fullBox(
      'meta',
      0,
      fullBox('hdlr', 0, u32(0), Buffer.from('pict', 'latin1'), Buffer.alloc(13)),
      fullBox('pitm', 0, u16(1)),
      fullBox(
        'iloc',
        0,
        Buffer.from([0x44, 0x00]),
        u16(1),
        u16(1),
        u16(0),
        u16(1),
        u32(offset),
        u32(data.length),
      ),
      fullBox('iinf', 0, u16(1), fullBox('infe', 2, u16(1), u16(0), Buffer.from('hvc1\0', 'latin1'))),
      iprp,
    )
  const ftyp = box('ftyp', Buffer.from('heic', 'latin1'), u32(0), Buffer.from('mif1heic', 'latin1'))
  return Buffer.concat([ftyp, meta(ftyp.length + meta(0).length + 8), box('mdat', data)])
}

/** A lossless WebP header declaring 16383 × 16383 (268 megapixels, WebP's maximum) in 30 bytes. */
export function webpBomb(): Buffer {
  const file = Buffer.from('UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==', 'base64')
  // VP8L header after the 0x2f signature: 14 bits width-1, 14 bits height-1, alpha, version.
  const bits = 16382 | (16382 << 14) | (1 << 28)
  file.writeUInt32LE(bits >>> 0, 21)
  return file
}

/** A PNG declaring 50,000 × 50,000, padded to `total` bytes with a private chunk. */
export function pngBomb(total: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
    return Buffer.concat([u32(data.length), body, u32(crc32(body))])
  }
  const ihdr = Buffer.concat([u32(50_000), u32(50_000), Buffer.from([8, 2, 0, 0, 0])])
  const head = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr)])
  const end = Buffer.concat([
    chunk('IDAT', Buffer.from('789c030000000001', 'hex')),
    chunk('IEND', Buffer.alloc(0)),
  ])
  const padding = Math.max(total - head.length - end.length - 12, 0)
  return Buffer.concat([head, chunk('paDd', Buffer.alloc(padding)), end])
}

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff
  for (const byte of bytes) {
    crc ^= byte
    for (let k = 0; k < 8; k += 1) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1
  }
  return (crc ^ 0xffffffff) >>> 0
}

/**
 * An MP4 of exactly `total` bytes: an `ftyp` box, then one `mdat` box of zeros. Enough for magic
 * bytes (ours and the sandbox's); yielded lazily, so a 160 MiB one costs no memory.
 */
export function* mp4(total: number): Generator<Buffer> {
  const ftyp = box('ftyp', Buffer.from('isom', 'latin1'), u32(0x200), Buffer.from('isomiso2mp41', 'latin1'))
  const mdatSize = Math.max(total - ftyp.length, 8)
  const first = Buffer.concat([ftyp, u32(mdatSize), Buffer.from('mdat', 'latin1')]).subarray(0, total)
  yield first
  const block = Buffer.alloc(64 * 1024)
  for (let left = total - first.length; left > 0; left -= block.length)
    yield block.subarray(0, Math.min(left, block.length))
}

export const mov = () =>
  Buffer.concat([
    box('ftyp', Buffer.from('qt  ', 'latin1'), u32(0x200), Buffer.from('qt  ', 'latin1')),
    box('mdat', Buffer.alloc(64)),
  ])
export const webm = () =>
  Buffer.concat([
    Buffer.from('1a45dfa3a34286810142f7810142f2810442f381084282847765626d42878104428581021853806701', 'hex'),
    Buffer.alloc(64),
  ])
