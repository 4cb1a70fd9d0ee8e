/**
 * HEVC-coded HEIC (what phones make): sharp's prebuilt libvips carries libheif with AV1 (AVIF)
 * only, HEVC being patent-encumbered, so these pixels are decoded by libheif compiled to
 * WebAssembly, in a worker thread (heic-worker.ts).
 */
import { Worker } from 'node:worker_threads'
import { ServiceError } from '../errors.ts'
import { formatBytes } from '../units.ts'
import { decodeError, tooManyPixels } from './failures.ts'
import type { HevcReply, HevcRequest } from './heic-worker.ts'

/**
 * The decoder's WebAssembly memory: the 16 MiB it starts with, the file copied in, and the pixels
 * (about 10 bytes a pixel measured at the peak for 3 and 12 MP photos; 16 leaves headroom).
 */
export const hevcMemoryBytes = (fileBytes: number, pixels: number) =>
  32 * 2 ** 20 + 2 * fileBytes + 16 * pixels

/** V8's heap in the decoder thread: libheif's JavaScript glue needs ~16 MB; pixels never go there. */
export const HEVC_HEAP_MB = 64

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
