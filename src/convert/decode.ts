/**
 * Reading images with sharp (libvips) safely: the header is judged before any pixel is decoded,
 * and every pipeline carries the pixel limit too, so a decompression bomb (a few bytes declaring
 * 50,000 × 50,000 pixels) is refused instead of exhausting memory.
 */
import sharp, { type Sharp } from 'sharp'
import type { FileKind, Sniffed } from '../download/sniff.ts'
import { ServiceError } from '../errors.ts'

export type Source = {
  bytes: Buffer
  /** Display name of the format, for messages ("WebP"). */
  name: string
  /** `convertible` when Imgur refuses the format, `image` when it is only too large. */
  kind: FileKind
  /** Width and height after EXIF orientation is applied: what the output will have. */
  width: number
  height: number
  /** More than one frame (WebP or GIF animation): kept as an animation. */
  animated: boolean
  /** Has an alpha channel that is not fully opaque. */
  alpha: boolean
  maxInputPixels: number
}

// Decoded images are not kept between calls: memory goes back as soon as an item is done.
sharp.cache(false)

/** Only these loaders have frames that are an animation; other multi-image files are read as their first image. */
const ANIMATED_FORMATS = new Set(['webp', 'gif'])

export async function inspect(bytes: Buffer, type: Sniffed, maxInputPixels: number): Promise<Source> {
  const { name, kind } = type
  const meta = await sharp(bytes, { limitInputPixels: false })
    .metadata()
    .catch((error) => {
      throw decodeError(error, name, bytes)
    })
  const pages = meta.pages ?? 1
  const animated = pages > 1 && ANIMATED_FORMATS.has(meta.format)
  const { width, height } = meta.autoOrient
  const pixels = width * height * (animated ? pages : 1)
  if (pixels > maxInputPixels) {
    const frames = animated ? ` in ${pages} frames` : ''
    throw new ServiceError(
      'image_too_many_pixels',
      `image is ${meta.width} × ${meta.height} pixels${frames} (${megapixels(pixels)} megapixels), over the ${megapixels(maxInputPixels)}-megapixel limit`,
    )
  }
  const source: Source = { bytes, name, kind, width, height, animated, alpha: meta.hasAlpha, maxInputPixels }
  // Many opaque images carry an alpha channel; only real transparency needs PNG (or GIF).
  if (source.alpha && !animated) {
    const stats = await pipeline(source)
      .stats()
      .catch((error) => {
        throw decodeError(error, name, bytes)
      })
    source.alpha = !stats.isOpaque
  }
  return source
}

/** A fresh pipeline over the source: oriented, limited, all frames when animated. */
export function pipeline(source: Source): Sharp {
  return sharp(source.bytes, {
    autoOrient: true,
    limitInputPixels: source.maxInputPixels,
    // Lenient enough for the small flaws real photos carry, strict on broken data.
    failOn: 'error',
    animated: source.animated,
  })
}

/** Runs an encode and turns libvips' failures into reasons a user can act on. */
export async function encode(source: Source, build: (image: Sharp) => Sharp): Promise<Buffer> {
  try {
    return await build(pipeline(source)).toBuffer()
  } catch (error) {
    throw decodeError(error, source.name, source.bytes)
  }
}

const megapixels = (pixels: number) => Number((pixels / 1e6).toFixed(pixels < 1e5 ? 3 : 1))

/** HEIF brands whose images are coded with HEVC (ISO/IEC 23008-12), read from the `ftyp` box. */
const HEVC_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'hevm', 'hevs'])

function codedWithHevc(bytes: Buffer | undefined): boolean {
  if (bytes === undefined || bytes.toString('latin1', 4, 8) !== 'ftyp') return false
  // The major brand at 8, then (after a 4-byte minor version) the compatible brands to the box's end.
  const end = Math.min(bytes.readUInt32BE(0), bytes.length)
  const brands = [8, ...Array.from({ length: Math.max(0, (end - 16) >> 2) }, (_, i) => 16 + 4 * i)]
  return brands.some((at) => HEVC_BRANDS.has(bytes.toString('latin1', at, at + 4)))
}

function decodeError(error: unknown, name: string, bytes?: Buffer): ServiceError {
  const said = error instanceof Error ? error.message : String(error)
  if (/exceeds pixel limit/i.test(said)) {
    return new ServiceError('image_too_many_pixels', 'image has more pixels than the limit', { cause: error })
  }
  // sharp's prebuilt libvips carries libheif with AV1 (AVIF) only: HEVC is patent-encumbered.
  if (codedWithHevc(bytes) || /not been built in|decoder plugin/i.test(said)) {
    return new ServiceError(
      'unsupported_format',
      `${name} image is coded with HEVC, which this service cannot decode (and Imgur's API refuses); convert it to JPEG before uploading`,
      { cause: error },
    )
  }
  return new ServiceError(
    'image_unreadable',
    `the ${name} image could not be decoded (corrupt or truncated)`,
    {
      cause: error,
    },
  )
}
