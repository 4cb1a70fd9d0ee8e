/**
 * Turns a downloaded image into what is uploaded: as is when Imgur takes it (no decoding at
 * all), converted when Imgur refuses its format (WebP, AVIF, HEIC/HEIF), re-encoded when it is
 * over Imgur's byte cap. Decoding is the costly part (CPU, and up to ~4 bytes a pixel), so only
 * `concurrency` images are decoded at once, whatever the worker pool's size, and each preparation
 * has a deadline (`timeoutMs`) that covers its wait for a slot too.
 */

import { ServiceError } from '../errors.ts'
import { createLimit } from '../limit.ts'
import { refusedImage, type Sniffed } from '../media.ts'
import { raceSignal, startDeadline } from '../signals.ts'
import { formatBytes } from '../units.ts'
import { convertBusy, convertTimeout, type Limits, threadsPerImage } from './limits.ts'

export type PrepareOptions = {
  /** The largest image ever sent to Imgur. */
  maxImageBytes: number
  convertUnsupported: boolean
  reencodeOversized: boolean
  maxInputPixels: number
  concurrency: number
  /** Deadline of one preparation: waiting for a slot, decoding and every encoding attempt. */
  timeoutMs: number
  /** Told once, when the first image needing decoding loads sharp (libvips). */
  onLibvips?: () => void
}

/** What will be uploaded, and what was done to get it (absent when nothing was). */
export type Prepared = {
  bytes: Buffer
  mime: string
  ext: string
  converted?: { from: string; to: string }
  reencoded?: { fromBytes: number; toBytes: number }
}

export type Preparer = {
  prepare(bytes: Buffer, type: Sniffed, signal?: AbortSignal): Promise<Prepared>
  /** Preparations holding a slot, and waiting for one. */
  readonly active: number
  readonly waiting: number
  /** Settles once no preparation runs or waits (one past its deadline may run on until libvips stops). */
  onIdle(): Promise<void>
}

export function createPreparer(options: PrepareOptions): Preparer {
  for (const key of ['maxImageBytes', 'maxInputPixels', 'concurrency', 'timeoutMs'] as const) {
    if (!Number.isSafeInteger(options[key]) || options[key] < 1) {
      throw new TypeError(`Expected \`${key}\` to be an integer >= 1, got \`${options[key]}\``)
    }
  }
  const { maxImageBytes, timeoutMs } = options
  const limit = createLimit(options.concurrency)
  const threads = threadsPerImage(options.concurrency)
  let loaded = false

  async function transform(bytes: Buffer, type: Sniffed, limits: Limits): Promise<Prepared> {
    limits.signal.throwIfAborted()
    // sharp (libvips, ~10 MB resident) is loaded the first time an image needs decoding, not before.
    const [{ inspect, setThreads }, { encodeToFit }] = await Promise.all([
      import('./decode.ts'),
      import('./fit.ts'),
    ])
    if (!loaded) {
      loaded = true
      options.onLibvips?.()
    }
    setThreads(threads)
    const source = await inspect(bytes, type, limits)
    const oversized = bytes.length > maxImageBytes
    const out = await encodeToFit(source, maxImageBytes, options.reencodeOversized)
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
      let started = false
      const timeout = () =>
        started ? convertTimeout(timeoutMs) : convertBusy(timeoutMs, options.concurrency)
      const { signal: bounded, clear } = startDeadline(timeoutMs, signal, timeout)
      const deadline = performance.now() + timeoutMs
      const limits: Limits = { maxInputPixels: options.maxInputPixels, signal: bounded, deadline, timeoutMs }
      const work = limit.run(() => {
        started = true
        return transform(bytes, type, limits)
      }, bounded)
      // The caller is answered at the deadline even while a libvips call winds down (sharp's timeout
      // counts whole seconds); the work keeps its slot until it has really stopped, and its late
      // failure, awaited by nobody, must not go unhandled.
      work.catch(() => {})
      try {
        return await raceSignal(work, bounded)
      } finally {
        clear()
      }
    },
    get active() {
      return limit.active
    },
    get waiting() {
      return limit.waiting
    },
    onIdle: () => limit.onIdle(),
  }
}
