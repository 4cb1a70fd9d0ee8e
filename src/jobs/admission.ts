/**
 * Admission, the same for every queue: a job is refused whole (503 `queue_full`) when its URLs
 * would take the waiting ones past `MAX_PENDING_ITEMS` or their retained bytes past
 * `MAX_PENDING_BYTES`, and nobody is admitted while the queue is stopping.
 */
import { ServiceError } from '../errors.ts'
import { createJob, itemBytes, type Job, type JobOptions } from './model.ts'

export type Waiting = { pendingItems: number; pendingBytes: number }
export type Limits = { maxPendingItems: number; maxPendingBytes?: number | undefined }

/** The job for the URLs and the bytes it adds, or the error that refuses it. */
export function admit(
  urls: readonly string[],
  targets: readonly string[],
  options: JobOptions,
  {
    closed,
    waiting,
    limits,
    now,
    where,
  }: { closed: boolean; waiting: Waiting; limits: Limits; now: number; where: string },
): { job: Job; bytes: number } {
  if (closed) {
    throw new ServiceError('shutting_down', 'the service is shutting down; submit again shortly', {
      retryAfterMs: 10_000,
    })
  }
  const { maxPendingItems, maxPendingBytes = Number.POSITIVE_INFINITY } = limits
  if (waiting.pendingItems + urls.length > maxPendingItems) {
    throw new ServiceError(
      'queue_full',
      `${where} has ${waiting.pendingItems} URLs waiting (limit ${maxPendingItems}); submit again later`,
      { retryAfterMs: 30_000 },
    )
  }
  const job = createJob(urls, targets, options, now)
  let bytes = 0
  for (const item of job.items) bytes += itemBytes(item)
  if (waiting.pendingBytes + bytes > maxPendingBytes) {
    throw new ServiceError(
      'queue_full',
      `the URLs waiting would take more memory than ${where} allows (${maxPendingBytes} bytes); submit again later`,
      { retryAfterMs: 30_000 },
    )
  }
  return { job, bytes }
}
