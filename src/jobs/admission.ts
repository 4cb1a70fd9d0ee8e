/**
 * Admission, the same for every queue: a job is refused whole (503 `queue_full`) when its URLs
 * would take the waiting ones past `MAX_PENDING_ITEMS` or their retained bytes past
 * `MAX_PENDING_BYTES`, and nobody is admitted while the queue is stopping.
 */
import { ServiceError } from '../errors.ts'
import { createJob, itemBytes, type Job, type JobOptions } from './model.ts'

export type Waiting = { pendingItems: number; pendingBytes: number }
export type Limits = { maxPendingItems: number; maxPendingBytes?: number | undefined }
/** The limits a job must fit in, and what the refusal calls the place that is full. */
export type Room = { limits: Limits; where: string }

/**
 * Throws `queue_full` when `items` more URLs, retaining `bytes` (unchecked when undefined), do not
 * fit beside those `waiting`. Also what a fleet's store answers when its atomic check refuses.
 */
export function checkRoom(waiting: Waiting, items: number, bytes: number | undefined, room: Room): void {
  const { maxPendingItems, maxPendingBytes = Number.POSITIVE_INFINITY } = room.limits
  if (waiting.pendingItems + items > maxPendingItems) {
    throw new ServiceError(
      'queue_full',
      `${room.where} has ${waiting.pendingItems} URLs waiting (limit ${maxPendingItems}); submit again later`,
      { retryAfterMs: 30_000 },
    )
  }
  if (bytes !== undefined && waiting.pendingBytes + bytes > maxPendingBytes) {
    throw new ServiceError(
      'queue_full',
      `the URLs waiting would take more memory than ${room.where} allows (${maxPendingBytes} bytes); submit again later`,
      { retryAfterMs: 30_000 },
    )
  }
}

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
  // The count first: a job too large is refused before it is built.
  checkRoom(waiting, urls.length, undefined, { limits, where })
  const job = createJob(urls, targets, options, now)
  let bytes = 0
  for (const item of job.items) bytes += itemBytes(item)
  checkRoom(waiting, urls.length, bytes, { limits, where })
  return { job, bytes }
}
