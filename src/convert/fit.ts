/**
 * Encodes a decoded source into a format Imgur takes, under its byte cap when asked: quality
 * first, then dimensions. The format follows from what the source is: a lossy one (a photo)
 * becomes a JPEG, a lossless or transparent one a PNG. Trying both to keep the smaller would be
 * wasted work: for a photo the PNG is several times larger and several times slower to encode. Orientation is applied to the
 * pixels (the EXIF tag goes with the rest of the metadata, GPS included); the ICC profile is kept,
 * so colours do not shift.
 */
import type { Sharp } from 'sharp'
import { ServiceError } from '../errors.ts'
import { formatBytes } from '../units.ts'
import { encode, type Source, settleTransparency } from './decode.ts'

export type Encoded = { bytes: Buffer; mime: string; ext: string }
type Step = { mime: string; ext: string; apply: (image: Sharp) => Sharp }

export const asPng: Step = {
  mime: 'image/png',
  ext: 'png',
  apply: (image) => image.keepIccProfile().png({ compressionLevel: 9, adaptiveFiltering: true }),
}
/** Quantised to a palette (libimagequant): the lossy step that keeps transparency. */
const asPalette: Step = {
  mime: 'image/png',
  ext: 'png',
  apply: (image) => image.keepIccProfile().png({ compressionLevel: 9, palette: true, quality: 90 }),
}
export const asJpeg = (quality: number): Step => ({
  mime: 'image/jpeg',
  ext: 'jpg',
  apply: (image) => image.keepIccProfile().jpeg({ quality }),
})
/** GIF has no ICC profile: libvips converts the frames to sRGB instead. */
const asGif: Step = { mime: 'image/gif', ext: 'gif', apply: (image) => image.gif() }

/** Scale-downs tried after the quality steps; each aims at the cap from the last size. */
const SCALE_STEPS = 6

/** What is tried first, without losing more than the source already has. */
function firstStep(source: Source): Step {
  if (source.animated) return asGif
  if (source.transparency === 'some') return asPng
  return source.lossy ? asJpeg(90) : asPng
}

/** Lower quality, then the same encoding at smaller sizes. */
function fallbackSteps(source: Source): { quality: Step[]; scaled: Step } {
  if (source.animated) return { quality: [], scaled: asGif }
  if (source.transparency === 'some') return { quality: [asPalette], scaled: asPalette }
  return { quality: [asJpeg(80), asJpeg(70)], scaled: asJpeg(70) }
}

async function run(source: Source, step: Step, scale = 1): Promise<Encoded> {
  const width = Math.max(1, Math.round(source.width * scale))
  const bytes = await encode(source, (image) => step.apply(scale < 1 ? image.resize({ width }) : image))
  return { bytes, mime: step.mime, ext: step.ext }
}

export const imageTooLarge = (message: string) => new ServiceError('image_too_large', message)

/**
 * The first encoding when it fits `maxBytes`; otherwise, with `shrink`, the first step of the
 * quality-then-size ladder that fits. `shrunk` tells whether the ladder was needed. Every step
 * runs within the source's limits: past the deadline no further step starts.
 */
export async function encodeToFit(
  source: Source,
  maxBytes: number,
  shrink: boolean,
): Promise<Encoded & { shrunk: boolean }> {
  // A lossy source's format depends on its transparency, which a JPEG would lose.
  if (source.lossy && !source.animated) await settleTransparency(source)
  let first = await run(source, firstStep(source))
  if (first.bytes.length <= maxBytes) return { ...first, shrunk: false }
  // A lossless source stays lossless (PNG, as its author chose) while that fits; over the cap, an
  // opaque one may be a good JPEG, so its alpha channel is looked at only now.
  if (!source.animated && !source.lossy) {
    await settleTransparency(source)
    if (source.transparency === 'none') {
      const out = await run(source, asJpeg(90))
      if (out.bytes.length <= maxBytes) return { ...out, shrunk: false }
      if (out.bytes.length < first.bytes.length) first = out
    }
  }
  const limit = formatBytes(maxBytes)
  if (!shrink) {
    throw imageTooLarge(
      `converted to ${first.ext.toUpperCase()}, the ${source.name} image is ${formatBytes(first.bytes.length)}, over the ${limit} limit (re-encoding to fit is off)`,
    )
  }
  const { quality, scaled } = fallbackSteps(source)
  let size = first.bytes.length
  for (const step of quality) {
    const out = await run(source, step)
    if (out.bytes.length <= maxBytes) return { ...out, shrunk: true }
    size = out.bytes.length
  }
  let scale = 1
  for (let i = 0; i < SCALE_STEPS && source.width * scale > 1; i += 1) {
    // Encoded size goes roughly with the pixel count, so the side goes with its square root.
    scale *= Math.min(0.9, Math.sqrt(maxBytes / size) * 0.95)
    const out = await run(source, scaled, scale)
    if (out.bytes.length <= maxBytes) return { ...out, shrunk: true }
    size = out.bytes.length
  }
  throw imageTooLarge(`the ${source.name} image could not be re-encoded under the ${limit} limit`)
}
