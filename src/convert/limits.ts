/**
 * What one preparation may spend: pixels, time and threads. Its deadline covers all of it (the wait for a
 * conversion slot, decoding, every quality and size attempt), and its signal reaches every stage:
 * libvips stops through sharp's own `timeout`, the HEIC decoder's worker is terminated. No sharp
 * here: the preparer loads this module before any image needs decoding.
 */
import { availableParallelism } from 'node:os'
import { ServiceError } from '../errors.ts'
import { formatDuration } from '../units.ts'

export type Limits = {
  maxInputPixels: number
  /** Aborted at the deadline (reason `convert_timeout` or `convert_busy`) or with the caller's reason. */
  signal: AbortSignal
  /** When the preparation must be over, on the `performance.now()` clock. */
  deadline: number
  timeoutMs: number
}

/**
 * The whole seconds left for sharp's `timeout` (1 to 3600; 0 would mean none). libvips counts from
 * when it starts the pipeline, so it stops at the deadline or up to a second after it, never before.
 * https://sharp.pixelplumbing.com/api-output#timeout
 */
export function secondsLeft(limits: Limits): number {
  return Math.min(3600, Math.max(1, Math.ceil((limits.deadline - performance.now()) / 1000)))
}

export const convertTimeout = (timeoutMs: number, cause?: unknown) =>
  new ServiceError(
    'convert_timeout',
    `converting or re-encoding the image took longer than the ${formatDuration(timeoutMs)} deadline`,
    { cause },
  )

/** The deadline passed before a slot was free: the image was never looked at, so it is worth another try. */
export const convertBusy = (timeoutMs: number, concurrency: number) =>
  new ServiceError(
    'convert_busy',
    `no conversion slot became free within the ${formatDuration(timeoutMs)} deadline (${concurrency} images are converted at once)`,
    { retryable: true },
  )

/**
 * libvips threads for each image, so that all the images converted at once use the cores and no
 * more: `concurrency` images × this many threads ≈ the cores. More would only add context switches
 * and per-thread buffers (and, with glibc's allocator, memory arenas: why sharp's own default there
 * is 1); fewer would leave cores idle whenever fewer images than slots are converting. Decoders with
 * threads of their own (libaom for AVIF) come on top. sharp runs each image on one of libuv's
 * threads (UV_THREADPOOL_SIZE, 4 by default), which `dns.lookup` shares: with CONVERT_CONCURRENCY
 * at 4 or more, conversions can hold them all and downloads wait for their DNS answers.
 * https://sharp.pixelplumbing.com/performance
 */
export function threadsPerImage(concurrency: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / concurrency))
}
