/**
 * The two seams between the HTTP layer and the work, each with a memory implementation (the
 * default: one process) and a Redis one (a fleet of replicas, src/fleet/):
 * - the store, the only writer of jobs and items, asynchronous because one implementation is remote;
 * - the queue, which runs a job's items and answers what the process is doing.
 * Holders get read-only views and address items by job id and position, never by object.
 */
import type { EventEmitter } from 'node:events'
import type { Room } from './admission.ts'
import type { Album, Item, Job, JobOptions, JobStatus, Outcome, Reason, Webhook } from './model.ts'
import type { Transfer } from './worker.ts'

type DeepReadonly<T> = T extends (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T

/** What a store hands out: the job as it is now (memory: live; Redis: a snapshot). Never written by its holder. */
export type JobView = DeepReadonly<Job>
export type ItemView = DeepReadonly<Item>
export type AlbumResult = { link: string; id: string; deletehash?: string | undefined } | { reason: Reason }

export type StoreStats = {
  /** Items not yet complete or failed, across every job. */
  pendingItems: number
  /** Bytes the pending items retain (see `itemBytes`). */
  pendingBytes: number
  /** Jobs held (retention decides how many finished ones that is). */
  jobs: number
}

export type StoreEvents = {
  /** Every item of the job has settled and its album is still to be made. Emitted where that happened. */
  itemsSettled: [JobView]
  /** The job is complete (items settled, album made or failed): its webhook may go. Emitted where that happened. */
  complete: [JobView]
}

export interface JobStore extends Pick<EventEmitter<StoreEvents>, 'on' | 'off' | 'once'> {
  /** Names the list of links for cursors: a cursor of another epoch (another list) is refused. */
  readonly epoch: string
  /**
   * Holds a new job. `room`: limits checked atomically with the add (`queue_full` when the job
   * does not fit), for a store that several processes add to at once; a process's own store is
   * checked by its queue beforehand.
   */
  add(job: Job, room?: Room): Promise<void>
  get(id: string): Promise<JobView | undefined>
  /** Every link uploaded, each once, in upload order; with `owner`, that owner's jobs' only. */
  links(owner?: string): Promise<readonly string[]>
  counts(): Promise<Record<JobStatus, number>>
  stats(): Promise<StoreStats>
  /** An attempt at the item begins: its attempt number, or undefined if it is no longer pending. */
  start(jobId: string, index: number): Promise<number | undefined>
  /** The item will be tried again: still pending, its job's version moves (streams show the attempt). */
  retrying(jobId: string, index: number): Promise<void>
  /** False when the item was no longer pending (cancelled meanwhile): nothing changed. */
  complete(jobId: string, index: number, outcome: Outcome): Promise<boolean>
  /** False when the item was no longer pending: nothing changed. */
  fail(jobId: string, index: number, reason: Reason): Promise<boolean>
  /** Fails every pending item of the job with `reason`; the positions failed. */
  cancel(jobId: string, reason: Reason): Promise<number[]>
  settleAlbum(jobId: string, result: AlbumResult): Promise<void>
  webhookChanged(jobId: string, update: Partial<Omit<Webhook, 'url'>>): Promise<void>
  /** Calls `listener` with the job after each of its changes, wherever it happened, until the returned function is called. */
  subscribe(id: string, listener: (job: JobView) => void): () => void
  close(): Promise<void>
}

/** What a worker needs of an item, so that no queue reads the whole job to run one URL. */
export type WorkInput = { jobId: string; index: number; target: string; clientId: string | undefined }

/**
 * Runs `fn`, a wait of an item's attempt on something other than its transfer (in a fleet, Redis
 * answering a lookup in the de-duplication table), with the item's transfer slot lent to another
 * item meanwhile; settles once `fn` has and the slot is the item's again.
 */
export type Away = <T>(fn: () => Promise<T>) => Promise<T>

/**
 * One attempt at one item: download, prepare, upload (src/jobs/worker.ts). `downloaded`: told when
 * its download has ended; `away`: where its waits that are not transfers run (none: in its slot).
 */
export type Work = (
  input: WorkInput,
  signal: AbortSignal,
  downloaded: () => void,
  away?: Away,
) => Promise<Outcome>

/** Why a queue takes no job now: full, stopping, or (a fleet) its Redis unreachable. */
export type Refusal = 'queue_full' | 'shutting_down' | 'store_unavailable'

/** What a queue tells of the items this process works on (metrics listen); items by job id and position. */
export type QueueEvents = {
  attempt: [{ jobId: string; index: number }]
  settled: [{ jobId: string; index: number; outcome: 'complete' | 'failed'; code?: string }]
  retry: [{ jobId: string; index: number; code: string; delayMs: number }]
  transfer: [Transfer]
  idle: []
}

export interface JobQueue extends EventEmitter<QueueEvents> {
  /** False while the queue refuses new jobs; `refusal` then says why. */
  readonly accepting: boolean
  readonly refusal: Refusal | undefined
  /** Items this process works on right now. */
  readonly active: number
  /** Creates the job through the store and queues its items; nothing is downloaded before this resolves. */
  submit(urls: readonly string[], targets: readonly string[], options?: JobOptions): Promise<JobView>
  /** Fails the job's unfinished items with `cancelled` (in-flight ones are aborted); the number cancelled. */
  cancel(jobId: string): Promise<number>
  /** Resolves when this process has nothing pending or in flight. */
  onIdle(): Promise<void>
  /** Stops taking work; in-flight items get `graceMs` to finish. */
  close(graceMs: number): Promise<void>
}

export type { Album }
