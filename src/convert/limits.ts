/**
 * What one preparation may spend: pixels and time. Its deadline covers all of it (the wait for a
 * conversion slot, decoding, every quality and size attempt), and its signal reaches every stage:
 * libvips stops through sharp's own `timeout`, the HEIC decoder's worker is terminated. No sharp
 * here: the preparer loads this module before any image needs decoding.
 */
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

/** A deadline `timeoutMs` from now, combined with the caller's signal; `clear()` releases both. */
export function startDeadline(timeoutMs: number, reason: () => ServiceError, outer?: AbortSignal) {
  const controller = new AbortController()
  const abort = () => controller.abort(outer?.reason)
  if (outer?.aborted) abort()
  else outer?.addEventListener('abort', abort, { once: true })
  const timer = setTimeout(() => controller.abort(reason()), timeoutMs)
  timer.unref()
  return {
    signal: controller.signal,
    deadline: performance.now() + timeoutMs,
    clear() {
      clearTimeout(timer)
      outer?.removeEventListener('abort', abort)
    },
  }
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
