/**
 * Reading images with sharp (libvips) safely: the header is judged before any pixel is decoded,
 * and every pipeline carries the pixel limit too, so a decompression bomb (a few bytes declaring
 * 50,000 × 50,000 pixels) is refused instead of exhausting memory. Every pipeline carries the
 * preparation's deadline as well (sharp's `timeout`), so libvips stops working when it passes.
 */

import { Worker } from 'node:worker_threads'
import sharp, { type Sharp } from 'sharp'
import { ServiceError } from '../errors.ts'
import type { FileKind, Sniffed } from '../media.ts'
import { formatBytes } from '../units.ts'
import type { HevcReply, HevcRequest } from './heic-worker.ts'
import { convertTimeout, type Limits, secondsLeft } from './limits.ts'

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
  limits: Limits
  /** Pixels decoded outside libvips (HEVC HEIC), as RGBA: the pipeline reads these, not `bytes`. */
  raw?: { data: Buffer; width: number; height: number; channels: 4 }
}

// Decoded images are not kept between calls: memory goes back as soon as an item is done.
sharp.cache(false)

/** Only these loaders have frames that are an animation; other multi-image files are read as their first image. */
const ANIMATED_FORMATS = new Set(['webp', 'gif'])

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
  // sharp's prebuilt libvips carries libheif with AV1 (AVIF) only, HEVC being patent-encumbered:
  // its header is read, its pixels are decoded by libheif compiled to WebAssembly instead.
  if (meta === undefined || (meta.format === 'heif' && codedWithHevc(bytes))) {
    // The header read by libvips sizes the decoder's memory; without one, the pixel limit does.
    const pixels = Math.min(meta ? meta.width * meta.height : maxInputPixels, maxInputPixels)
    const memoryBytes = hevcMemoryBytes(bytes.length, pixels)
    const raw = await decodeHevc(bytes, name, { maxInputPixels, memoryBytes, heapMb: HEVC_HEAP_MB, signal })
    const { width, height } = raw
    let alpha = false
    for (let at = 3; at < raw.data.length && !alpha; at += 4) alpha = raw.data[at] !== 255
    return { bytes, name, kind, width, height, animated: false, alpha, limits, raw }
  }
  const pages = meta.pages ?? 1
  const animated = pages > 1 && ANIMATED_FORMATS.has(meta.format)
  const { width, height } = meta.autoOrient
  const pixels = width * height * (animated ? pages : 1)
  if (pixels > maxInputPixels) {
    throw tooManyPixels(meta.width, meta.height, pixels, maxInputPixels, animated ? pages : 1)
  }
  const source: Source = { bytes, name, kind, width, height, animated, alpha: meta.hasAlpha, limits }
  // Many opaque images carry an alpha channel; only real transparency needs PNG (or GIF). sharp's
  // timeout does not reach stats(): one decoding pass, answered at the deadline by the preparer.
  if (source.alpha && !animated) {
    const stats = await pipeline(source)
      .stats()
      .catch((error) => {
        throw decodeError(error, name)
      })
    source.alpha = !stats.isOpaque
  }
  return source
}

/**
 * The decoder's WebAssembly memory: the 16 MiB it starts with, the file copied in, and the pixels
 * (about 10 bytes a pixel measured at the peak for 3 and 12 MP photos; 16 leaves headroom).
 */
export const hevcMemoryBytes = (fileBytes: number, pixels: number) =>
  32 * 2 ** 20 + 2 * fileBytes + 16 * pixels

/** V8's heap in the decoder thread: libheif's JavaScript glue needs ~16 MB; pixels never go there. */
const HEVC_HEAP_MB = 64

export type HevcLimits = {
  maxInputPixels: number
  /** Cap on the WebAssembly memory, where libheif keeps the file and the pixels. */
  memoryBytes: number
  /** Cap on V8's heap in the thread (its `resourceLimits`). */
  heapMb: number
  signal: AbortSignal
}
export type HevcDecoded = { data: Buffer; width: number; height: number; channels: 4 }

/**
 * Decodes a HEVC-coded HEIC with libheif (and libde265) built to WebAssembly, in a worker thread
 * of its own (see heic-worker.ts): loaded only when such a photo arrives, never blocking the
 * event loop, its memory given back when the thread ends. The thread is terminated when `signal`
 * aborts (deadline or caller), and bounded in memory: V8's heap by `resourceLimits`, the
 * WebAssembly heap (where the pixels are) by `memoryBytes`. libheif-js writes diagnostics with
 * console.log; they stay in the thread instead of mixing with the service's log lines.
 */
export async function decodeHevc(bytes: Buffer, name: string, limits: HevcLimits): Promise<HevcDecoded> {
  const { maxInputPixels, memoryBytes, heapMb, signal } = limits
  signal.throwIfAborted()
  const request: HevcRequest = { bytes, maxInputPixels, memoryBytes }
  const worker = new Worker(new URL('./heic-worker.ts', import.meta.url), {
    workerData: request,
    stdout: true,
    stderr: true,
    // Node's default young generation alone would be 192 MB; short-lived objects here are small.
    resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: 16 },
  })
  worker.stdout.resume()
  worker.stderr.resume()
  let abort = () => {}
  const reply = await new Promise<HevcReply>((resolve, reject) => {
    abort = () => reject(signal.reason)
    if (signal.aborted) return abort()
    signal.addEventListener('abort', abort, { once: true })
    worker.once('message', resolve)
    worker.once('error', (error) => reject(workerError(error, name, heapMb)))
    worker.once('exit', () => reject(decodeError(new Error('the decoder stopped without an answer'), name)))
  }).finally(() => {
    signal.removeEventListener('abort', abort)
    return worker.terminate()
  })
  if (!reply.ok) {
    const { width, height } = reply
    if (reply.reason === 'too-many-pixels') throw tooManyPixels(width, height, width * height, maxInputPixels)
    if (reply.reason === 'out-of-memory') throw outOfMemory(name, `${formatBytes(memoryBytes)} budget`)
    throw decodeError(new Error('no image in the file'), name)
  }
  const { width, height } = reply
  const data = Buffer.from(reply.data.buffer, reply.data.byteOffset, reply.data.byteLength)
  return { data, width, height, channels: 4 }
}

const outOfMemory = (name: string, budget: string, cause?: unknown) =>
  new ServiceError(
    'convert_out_of_memory',
    `decoding the ${name} image needed more memory than its ${budget}`,
    {
      cause,
    },
  )

function workerError(error: Error & { code?: string }, name: string, heapMb: number) {
  // The thread reached its V8 heap limit and was stopped by Node: the process is unharmed.
  if (error.code === 'ERR_WORKER_OUT_OF_MEMORY')
    return outOfMemory(name, `${heapMb} MB JavaScript heap`, error)
  return decodeError(error, name)
}

/** A fresh pipeline over the source: oriented, limited, all frames when animated. */
export function pipeline(source: Source): Sharp {
  if (source.raw) {
    const { data, ...raw } = source.raw
    return sharp(data, { raw, limitInputPixels: source.limits.maxInputPixels }).timeout({
      seconds: secondsLeft(source.limits),
    })
  }
  return sharp(source.bytes, {
    autoOrient: true,
    limitInputPixels: source.limits.maxInputPixels,
    // Lenient enough for the small flaws real photos carry, strict on broken data.
    failOn: 'error',
    animated: source.animated,
  }).timeout({ seconds: secondsLeft(source.limits) })
}

/** Runs an encode within the source's limits and turns libvips' failures into reasons a user can act on. */
export async function encode(source: Source, build: (image: Sharp) => Sharp): Promise<Buffer> {
  const { signal, timeoutMs } = source.limits
  signal.throwIfAborted()
  try {
    return await build(pipeline(source)).toBuffer()
  } catch (error) {
    if (signal.aborted) throw signal.reason
    // libvips stopped by sharp's timeout: "timeout: 42% complete".
    if (error instanceof Error && /^timeout: /.test(error.message)) throw convertTimeout(timeoutMs, error)
    throw decodeError(error, source.name)
  }
}

function tooManyPixels(width: number, height: number, pixels: number, limit: number, frames = 1) {
  const inFrames = frames > 1 ? ` in ${frames} frames` : ''
  return new ServiceError(
    'image_too_many_pixels',
    `image is ${width} × ${height} pixels${inFrames} (${megapixels(pixels)} megapixels), over the ${megapixels(limit)}-megapixel limit`,
  )
}

const megapixels = (pixels: number) => Number((pixels / 1e6).toFixed(pixels < 1e5 ? 3 : 1))

/**
 * Whether a HEIF holds HEVC-coded images (`hvc1` items, ISO/IEC 23008-12), read from the `iinf`
 * box. The brand is no guide: libvips reports `heic` files as HEVC whatever their items are coded with.
 */
function codedWithHevc(bytes: Buffer): boolean {
  const meta = child(bytes, 0, bytes.length, 'meta')
  const iinf = meta && child(bytes, meta.start + 4, meta.end, 'iinf')
  if (iinf === undefined) return false
  // A full box: version and flags, then the entry count (16 bits in version 0, else 32).
  let at = iinf.start + 4 + (bytes[iinf.start] === 0 ? 2 : 4)
  for (let infe = child(bytes, at, iinf.end, 'infe'); infe; infe = child(bytes, at, iinf.end, 'infe')) {
    // Versions 2 and 3: item ID (16 or 32 bits), protection index (16 bits), then the item type.
    const version = bytes[infe.start] ?? 0
    const type = infe.start + 4 + (version === 2 ? 2 : 4) + 2
    if (version >= 2 && type + 4 <= infe.end && bytes.toString('latin1', type, type + 4) === 'hvc1')
      return true
    at = infe.end
  }
  return false
}

/** The first box of `type` in [from, to): where its content starts and where it ends. */
function child(
  bytes: Buffer,
  from: number,
  to: number,
  type: string,
): { start: number; end: number } | undefined {
  for (let at = from; at + 8 <= to; ) {
    let size = bytes.readUInt32BE(at)
    let header = 8
    if (size === 1 && at + 16 <= to) {
      size = Number(bytes.readBigUInt64BE(at + 8))
      header = 16
    } else if (size === 0) size = to - at
    if (size < header) return undefined
    const end = Math.min(at + size, to)
    if (bytes.toString('latin1', at + 4, at + 8) === type) return { start: at + header, end }
    at = end
  }
  return undefined
}

function decodeError(error: unknown, name: string): ServiceError {
  const said = error instanceof Error ? error.message : String(error)
  if (/exceeds pixel limit/i.test(said)) {
    return new ServiceError('image_too_many_pixels', 'image has more pixels than the limit', { cause: error })
  }
  // HEVC is decoded apart; other codecs HEIF may carry (JPEG 2000, VVC, ...) are not built in.
  if (/not been built in|decoder plugin/i.test(said)) {
    return new ServiceError(
      'unsupported_format',
      `${name} image is coded in a way this service cannot decode (and Imgur's API refuses); convert it to JPEG before uploading`,
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
