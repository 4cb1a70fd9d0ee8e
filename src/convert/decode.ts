/**
 * Reading images with sharp (libvips) safely: the header is judged before any pixel is decoded,
 * and every pipeline carries the pixel limit too, so a decompression bomb (a few bytes declaring
 * 50,000 × 50,000 pixels) is refused instead of exhausting memory. Every pipeline carries the
 * preparation's deadline as well (sharp's `timeout`), so libvips stops working when it passes.
 * Decoding is the costly part: each encoding attempt (usually the only one) decodes the file, except
 * when its alpha channel had to be looked at: then it was decoded once, to raw pixels every attempt reads.
 */

import { setImmediate } from 'node:timers/promises'
import sharp, { type Sharp } from 'sharp'
import type { FileKind, Sniffed } from '../media.ts'
import { codedWithHevc, webpCoding } from './containers.ts'
import { decodeError, tooManyPixels } from './failures.ts'
import { decodeHevc, HEVC_HEAP_MB, hevcMemoryBytes } from './hevc.ts'
import { convertTimeout, type Limits, secondsLeft } from './limits.ts'

/** Decoded pixels, 8 bits a sample, oriented as shown; with 2 or 4 channels the last is alpha. */
export type RawPixels = { data: Buffer; width: number; height: number; channels: 1 | 2 | 3 | 4 }

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
  /**
   * Coded with loss (JPEG, lossy WebP, AVIF, HEIF): a JPEG keeps what such a source still has. A
   * lossless source (PNG, GIF, TIFF, BMP, lossless WebP) becomes a PNG while that fits.
   */
  lossy: boolean
  /**
   * `none`: no alpha channel, or one found fully opaque; `some`: real transparency; `unknown`: an
   * alpha channel not looked at yet (`settleTransparency` does, when the choice depends on it).
   */
  transparency: 'none' | 'some' | 'unknown'
  /** Raw pixels carry all of it: 8-bit sRGB or grey, one frame, no ICC profile (which raw input cannot take back). */
  rawable: boolean
  limits: Limits
  /** Decoded pixels (a HEVC HEIC, or a source whose alpha was looked at): every pipeline reads these, not `bytes`. */
  raw?: RawPixels
}

// Decoded images are not kept between calls: memory goes back as soon as an item is done.
sharp.cache(false)

/**
 * libvips threads for each image (sharp's `concurrency`, process-wide); see `threadsPerImage`.
 * https://sharp.pixelplumbing.com/api-utility#concurrency
 */
export const setThreads = (threads: number) => sharp.concurrency(threads)

let decodes = 0
/** How many times source pixels have been decoded in this process (libvips or the HEVC decoder): for tests. */
export const decodeCount = () => decodes

/** Only these loaders have frames that are an animation; other multi-image files are read as their first image. */
const ANIMATED_FORMATS = new Set(['webp', 'gif'])
/** Formats that are lossy whatever the file; a WebP says in its chunks. AVIF and HEIF can be lossless, but photos never are. */
const LOSSY_TYPES = new Set(['image/jpeg', 'image/avif', 'image/heic'])

/** Reads the header (no pixels, except a HEVC HEIC's, which only the decoder thread can read). */
export async function inspect(bytes: Buffer, type: Sniffed, limits: Limits): Promise<Source> {
  const { name, kind } = type
  const { maxInputPixels, signal } = limits
  const meta = await sharp(bytes, { limitInputPixels: false })
    .metadata()
    .catch((error) => {
      if (codedWithHevc(bytes)) return undefined
      throw decodeError(error, name)
    })
  signal.throwIfAborted()
  const lossy = LOSSY_TYPES.has(type.mime) || (type.mime === 'image/webp' && webpCoding(bytes) === 'lossy')
  // sharp's prebuilt libvips carries libheif with AV1 (AVIF) only, HEVC being patent-encumbered:
  // its header is read, its pixels are decoded by libheif compiled to WebAssembly instead.
  if (meta === undefined || (meta.format === 'heif' && codedWithHevc(bytes))) {
    // The header read by libvips sizes the decoder's memory; without one, the pixel limit does.
    const pixels = Math.min(meta ? meta.width * meta.height : maxInputPixels, maxInputPixels)
    const memoryBytes = hevcMemoryBytes(bytes.length, pixels)
    decodes += 1
    const raw = await decodeHevc(bytes, name, { maxInputPixels, memoryBytes, heapMb: HEVC_HEAP_MB, signal })
    const { width, height } = raw
    // The decoder always gives RGBA; only a header announcing alpha makes its values worth reading.
    const transparency = meta?.hasAlpha === false || (await opaque(raw)) ? 'none' : 'some'
    return {
      bytes,
      name,
      kind,
      width,
      height,
      animated: false,
      lossy,
      transparency,
      rawable: true,
      limits,
      raw,
    }
  }
  const pages = meta.pages ?? 1
  const animated = pages > 1 && ANIMATED_FORMATS.has(meta.format)
  const { width, height } = meta.autoOrient
  const pixels = width * height * (animated ? pages : 1)
  if (pixels > maxInputPixels) {
    throw tooManyPixels(meta.width, meta.height, pixels, maxInputPixels, animated ? pages : 1)
  }
  // Many opaque images carry an alpha channel: only real transparency needs PNG (or GIF).
  const transparency = meta.hasAlpha ? 'unknown' : 'none'
  const rawable =
    !animated && meta.depth === 'uchar' && !meta.hasProfile && (meta.space === 'srgb' || meta.space === 'b-w')
  return { bytes, name, kind, width, height, animated, lossy, transparency, rawable, limits }
}

/**
 * Decides whether a source with an alpha channel is really transparent, decoding it once. When raw
 * pixels carry all of it they are kept, and the encodings read them instead of decoding again: 4
 * bytes a pixel (64 MiB at 4096 × 4096) held for this preparation only, and at most
 * `CONVERT_CONCURRENCY` preparations at once. Otherwise sharp's `stats()` decodes without keeping
 * anything; sharp's timeout does not reach it, but the preparer answers at the deadline anyway.
 */
export async function settleTransparency(source: Source): Promise<void> {
  if (source.transparency !== 'unknown') return
  await run(source, async () => {
    decodes += 1
    if (!source.rawable) {
      const stats = await pipeline(source).stats()
      source.transparency = stats.isOpaque ? 'none' : 'some'
      return
    }
    const { data, info } = await pipeline(source).raw().toBuffer({ resolveWithObject: true })
    source.raw = { data, width: info.width, height: info.height, channels: info.channels }
    source.transparency = (await opaque(source.raw)) ? 'none' : 'some'
  })
}

/**
 * Whether every pixel's alpha is at its maximum (true without an alpha channel). Read a megapixel
 * at a time (a few ms each), yielding in between, so the event loop is never held for long.
 */
async function opaque({ data, channels }: RawPixels): Promise<boolean> {
  if (channels !== 2 && channels !== 4) return true
  const slice = channels * 2 ** 20
  for (let start = 0; start < data.length; start += slice) {
    if (start > 0) await setImmediate()
    const end = Math.min(start + slice, data.length)
    for (let at = start + channels - 1; at < end; at += channels) if (data[at] !== 255) return false
  }
  return true
}

/** A fresh pipeline over the source: oriented, limited, all frames when animated. */
export function pipeline(source: Source): Sharp {
  const timeout = { seconds: secondsLeft(source.limits) }
  if (source.raw) {
    const { data, ...raw } = source.raw
    const image = sharp(data, { raw, limitInputPixels: source.limits.maxInputPixels }).timeout(timeout)
    // An alpha channel found opaque says nothing: without it a PNG is smaller, a JPEG the same.
    const alpha = raw.channels === 2 || raw.channels === 4
    return alpha && source.transparency === 'none' ? image.removeAlpha() : image
  }
  return sharp(source.bytes, {
    autoOrient: true,
    limitInputPixels: source.limits.maxInputPixels,
    // Lenient enough for the small flaws real photos carry, strict on broken data.
    failOn: 'error',
    animated: source.animated,
  }).timeout(timeout)
}

/** Runs an encode within the source's limits and turns libvips' failures into reasons a user can act on. */
export async function encode(source: Source, build: (image: Sharp) => Sharp): Promise<Buffer> {
  return run(source, () => {
    if (!source.raw) decodes += 1
    return build(pipeline(source)).toBuffer()
  })
}

async function run<T>(source: Source, work: () => Promise<T>): Promise<T> {
  const { signal, timeoutMs } = source.limits
  signal.throwIfAborted()
  try {
    return await work()
  } catch (error) {
    if (signal.aborted) throw signal.reason
    // libvips stopped by sharp's timeout: "timeout: 42% complete".
    if (error instanceof Error && /^timeout: /.test(error.message)) throw convertTimeout(timeoutMs, error)
    throw decodeError(error, source.name)
  }
}
