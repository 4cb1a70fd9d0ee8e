/**
 * Encodes a decoded source into a format Imgur takes, under its byte cap when asked: quality
 * first, then dimensions. Orientation is applied to the pixels (the EXIF tag goes with the rest of
 * the metadata, GPS included); the ICC profile is kept, so colours do not shift.
 */
import type { Sharp } from 'sharp'
import { ServiceError } from '../errors.ts'
import { formatBytes } from '../units.ts'
import { encode, type Source } from './decode.ts'

export type Encoded = { bytes: Buffer; mime: string; ext: string }
type Step = { mime: string; ext: string; apply: (image: Sharp) => Sharp }

const asPng: Step = {
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
const asJpeg = (quality: number): Step => ({
  mime: 'image/jpeg',
  ext: 'jpg',
  apply: (image) => image.keepIccProfile().jpeg({ quality }),
})
/** GIF has no ICC profile: libvips converts the frames to sRGB instead. */
const asGif: Step = { mime: 'image/gif', ext: 'gif', apply: (image) => image.gif() }

/** Scale-downs tried after the quality steps; each aims at the cap from the last size. */
const SCALE_STEPS = 6

/**
 * What is tried first, without losing quality. A conversion takes the smaller of PNG and a good
 * JPEG; an oversized PNG, TIFF or BMP stays lossless when PNG fits, as its author chose.
 */
function firstSteps(source: Source, mime: string): { steps: Step[]; smallest: boolean } {
  if (source.animated) return { steps: [asGif], smallest: false }
  if (source.alpha) return { steps: [asPng], smallest: false }
  if (mime === 'image/jpeg') return { steps: [asJpeg(90)], smallest: false }
  return { steps: [asPng, asJpeg(90)], smallest: source.kind === 'convertible' }
}

/** Lower quality, then the same encoding at smaller sizes. */
function fallbackSteps(source: Source): { quality: Step[]; scaled: Step } {
  if (source.animated) return { quality: [], scaled: asGif }
  if (source.alpha) return { quality: [asPalette], scaled: asPalette }
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
  mime: string,
  maxBytes: number,
  shrink: boolean,
): Promise<Encoded & { shrunk: boolean }> {
  const { steps, smallest } = firstSteps(source, mime)
  let best: Encoded | undefined
  for (const step of steps) {
    const out = await run(source, step)
    if (best === undefined || out.bytes.length < best.bytes.length) best = out
    if (!smallest && out.bytes.length <= maxBytes) break
  }
  const first = best as Encoded
  if (first.bytes.length <= maxBytes) return { ...first, shrunk: false }
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
