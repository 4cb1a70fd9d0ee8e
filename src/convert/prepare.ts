/**
 * Turns a downloaded image into what is uploaded: as is when Imgur takes it (no decoding at
 * all), converted when Imgur refuses its format (WebP, AVIF, HEIC/HEIF), re-encoded when it is
 * over Imgur's byte cap. Decoding is the costly part (CPU, and up to ~4 bytes a pixel), so only
 * `concurrency` images are decoded at once, whatever the worker pool's size.
 */
import { formatBytes } from '../download/body.ts'
import { refusedImage, type Sniffed } from '../download/sniff.ts'
import { ServiceError } from '../errors.ts'

export type PrepareOptions = {
  /** The largest image ever sent to Imgur. */
  maxImageBytes: number
  convertUnsupported: boolean
  reencodeOversized: boolean
  maxInputPixels: number
  concurrency: number
}

/** What will be uploaded, and what was done to get it (absent when nothing was). */
export type Prepared = {
  bytes: Buffer
  mime: string
  ext: string
  converted?: { from: string; to: string }
  reencoded?: { fromBytes: number; toBytes: number }
}

export type Preparer = { prepare(bytes: Buffer, type: Sniffed, signal?: AbortSignal): Promise<Prepared> }

export function createPreparer(options: PrepareOptions): Preparer {
  for (const key of ['maxImageBytes', 'maxInputPixels', 'concurrency'] as const) {
    if (!Number.isSafeInteger(options[key]) || options[key] < 1) {
      throw new TypeError(`Expected \`${key}\` to be an integer >= 1, got \`${options[key]}\``)
    }
  }
  const { maxImageBytes } = options
  const limit = createLimit(options.concurrency)

  async function transform(bytes: Buffer, type: Sniffed, signal?: AbortSignal): Promise<Prepared> {
    signal?.throwIfAborted()
    // sharp (libvips, ~10 MB resident) is loaded the first time an image needs decoding, not before.
    const [{ inspect }, { encodeToFit }] = await Promise.all([import('./decode.ts'), import('./fit.ts')])
    const source = await inspect(bytes, type, options.maxInputPixels)
    const oversized = bytes.length > maxImageBytes
    const out = await encodeToFit(source, type.mime, maxImageBytes, options.reencodeOversized, signal)
    const prepared: Prepared = { bytes: out.bytes, mime: out.mime, ext: out.ext }
    if (out.mime !== type.mime) prepared.converted = { from: type.mime, to: out.mime }
    if (oversized || out.shrunk) prepared.reencoded = { fromBytes: bytes.length, toBytes: out.bytes.length }
    return prepared
  }

  return {
    async prepare(bytes, type, signal) {
      if (type.kind === 'convertible' && !options.convertUnsupported) throw refusedImage(type.name)
      if (type.kind === 'image' && bytes.length <= maxImageBytes) {
        return { bytes, mime: type.mime, ext: type.ext }
      }
      if (type.kind === 'image') {
        const over = `image is ${formatBytes(bytes.length)}, over Imgur's ${formatBytes(maxImageBytes)} limit`
        if (!options.reencodeOversized)
          throw new ServiceError('image_too_large', `${over} (re-encoding to fit is off)`)
        // libvips reads an APNG's default frame only: re-encoding would silently drop the animation.
        if (type.name === 'APNG')
          throw new ServiceError(
            'image_too_large',
            `animated PNG ${over}; it cannot be re-encoded and stay animated`,
          )
      }
      return limit(() => transform(bytes, type, signal))
    },
  }
}

/** At most `size` calls of `fn` run at once; the others wait their turn, first come first served. */
export function createLimit(size: number) {
  let active = 0
  const waiting: Array<() => void> = []
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= size) await new Promise<void>((resolve) => waiting.push(resolve))
    else active += 1
    try {
      return await fn()
    } finally {
      const next = waiting.shift()
      if (next) next()
      else active -= 1
    }
  }
}
