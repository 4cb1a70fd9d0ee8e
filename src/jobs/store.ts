/**
 * The in-memory home of jobs and links. It is the only place that changes them (through the
 * model's transitions), so it can keep the counters, notify subscribers and own retention.
 */
import { EventEmitter } from 'node:events'
import {
  completeItem,
  failItem,
  type Item,
  itemBytes,
  JOB_OVERHEAD_BYTES,
  type Job,
  type JobStatus,
  jobStatus,
  type Outcome,
  type Reason,
  settleAlbum,
  startItem,
  type Webhook,
} from './model.ts'

export type StoreOptions = {
  /** Finished jobs kept at most; the oldest finished go first. */
  retentionCount: number
  /** Bytes finished jobs may retain in all (see `itemBytes`); the oldest finished go first. */
  retentionBytes?: number
  /** Finished jobs older than this are forgotten. */
  retentionMs: number
  now?: () => number
}

type Listener = (job: Job) => void

export type StoreEvents = {
  /** Every item of the job has settled and its album is still to be made. */
  itemsSettled: [Job]
  /** The job is complete (items settled, album made or failed): its webhook may go. */
  complete: [Job]
}

export class JobStore extends EventEmitter<StoreEvents> {
  readonly #jobs = new Map<string, Job>()
  /** Finished jobs in the order they finished, with the bytes each retains. */
  readonly #finished = new Map<string, number>()
  #finishedBytes = 0
  #pendingBytes = 0
  readonly #links: string[] = []
  readonly #linkSet = new Set<string>()
  /** With API keys on, each key's own links too (each once, in upload order). */
  readonly #ownLinks = new Map<string, { list: string[]; set: Set<string> }>()
  readonly #listeners = new Map<string, Set<Listener>>()
  readonly #options: StoreOptions
  readonly #now: () => number
  #pendingItems = 0
  #sweeper: NodeJS.Timeout | undefined

  constructor(options: StoreOptions) {
    super()
    for (const key of ['retentionCount', 'retentionMs'] as const) {
      if (!Number.isInteger(options[key]) || options[key] < 1) {
        throw new TypeError(`Expected \`${key}\` to be an integer >= 1, got \`${options[key]}\``)
      }
    }
    this.#options = options
    this.#now = options.now ?? Date.now
    this.#sweeper = setInterval(() => this.sweep(), Math.min(options.retentionMs, 60_000))
    this.#sweeper.unref()
  }

  /** Items not yet complete or failed, across every job. */
  get pendingItems(): number {
    return this.#pendingItems
  }

  /** Bytes the pending items retain, across every job. */
  get pendingBytes(): number {
    return this.#pendingBytes
  }

  /** Bytes the finished jobs still held retain. */
  get retainedBytes(): number {
    return this.#finishedBytes
  }

  get size(): number {
    return this.#jobs.size
  }

  add(job: Job): void {
    this.#jobs.set(job.id, job)
    this.#pendingItems += job.pending
    for (const item of job.items) if (item.state === 'pending') this.#pendingBytes += itemBytes(item)
    if (job.pending === 0) this.#completed(job)
  }

  /** Jobs held, by status (retention decides how many finished ones that is). */
  counts(): Record<JobStatus, number> {
    const counts = { pending: 0, 'in-progress': 0, complete: 0 }
    for (const job of this.#jobs.values()) counts[jobStatus(job)] += 1
    return counts
  }

  get(id: string): Job | undefined {
    return this.#jobs.get(id)
  }

  /**
   * Every link uploaded since start, each once, in upload order; with `owner`, only the links of
   * that owner's jobs. Retention never removes them.
   */
  links(owner?: string): readonly string[] {
    if (owner === undefined) return this.#links
    return this.#ownLinks.get(owner)?.list ?? []
  }

  start(job: Job, item: Item): void {
    const first = !job.started
    startItem(job, item)
    if (first) this.#notify(job)
  }

  /** An item that will be tried again: still pending, but its attempt count changed. */
  retrying(job: Job): void {
    job.version += 1
    this.#notify(job)
  }

  complete(job: Job, item: Item, outcome: Outcome): void {
    const { link } = outcome
    this.#pendingBytes -= itemBytes(item)
    completeItem(job, item, outcome, this.#now())
    if (!this.#linkSet.has(link)) {
      this.#linkSet.add(link)
      this.#links.push(link)
    }
    if (job.owner !== undefined) {
      let own = this.#ownLinks.get(job.owner)
      if (own === undefined) {
        own = { list: [], set: new Set() }
        this.#ownLinks.set(job.owner, own)
      }
      if (!own.set.has(link)) {
        own.set.add(link)
        own.list.push(link)
      }
    }
    this.#settled(job)
  }

  fail(job: Job, item: Item, reason: Reason): void {
    this.#pendingBytes -= itemBytes(item)
    failItem(job, item, reason, this.#now())
    this.#settled(job)
  }

  /**
   * Fails every pending item of the job with `reason` at once (its client cancelled it), whether
   * it was waiting, waiting for a retry or in flight; complete items stay. Returns the items failed.
   */
  cancel(job: Job, reason: Reason): Item[] {
    const cancelled = job.items.filter((item) => item.state === 'pending')
    if (cancelled.length === 0) return cancelled
    const now = this.#now()
    for (const item of cancelled) {
      this.#pendingBytes -= itemBytes(item)
      failItem(job, item, reason, now)
    }
    this.#settled(job, cancelled.length)
    return cancelled
  }

  /** Records the album the job asked for, made or failed: the job is then complete. */
  settleAlbum(job: Job, result: Parameters<typeof settleAlbum>[1]): void {
    settleAlbum(job, result, this.#now())
    this.#completed(job)
    this.#notify(job)
  }

  /** Records how the job's webhook delivery goes (the status shows it). */
  webhookChanged(job: Job, update: Partial<Omit<Webhook, 'url'>>): void {
    if (job.webhook === undefined) throw new Error('the job has no webhook')
    Object.assign(job.webhook, update)
    job.version += 1
    this.#notify(job)
  }

  /** Calls `listener` on every change of the job until the returned function is called. */
  subscribe(id: string, listener: Listener): () => void {
    let set = this.#listeners.get(id)
    if (set === undefined) {
      set = new Set()
      this.#listeners.set(id, set)
    }
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0) this.#listeners.delete(id)
    }
  }

  /** Forgets the oldest finished jobs while they are too many, too large in all, or too old. */
  sweep(now = this.#now()): void {
    const { retentionCount, retentionBytes = Number.POSITIVE_INFINITY, retentionMs } = this.#options
    for (const [id, bytes] of this.#finished) {
      const job = this.#jobs.get(id)
      const old = job === undefined || now - (job.finished ?? now) >= retentionMs
      if (!old && this.#finished.size <= retentionCount && this.#finishedBytes <= retentionBytes) break
      this.#finished.delete(id)
      this.#finishedBytes -= bytes
      this.#jobs.delete(id)
    }
  }

  close(): void {
    clearInterval(this.#sweeper)
    this.#listeners.clear()
  }

  #settled(job: Job, items = 1): void {
    this.#pendingItems -= items
    if (job.pending === 0) {
      if (job.album?.state === 'pending') this.emit('itemsSettled', job)
      else this.#completed(job)
    }
    this.#notify(job)
  }

  #completed(job: Job): void {
    this.#finish(job)
    this.emit('complete', job)
  }

  #finish(job: Job): void {
    let bytes = JOB_OVERHEAD_BYTES
    for (const item of job.items) bytes += itemBytes(item)
    this.#finished.set(job.id, bytes)
    this.#finishedBytes += bytes
    this.sweep()
  }

  #notify(job: Job): void {
    const set = this.#listeners.get(job.id)
    if (set === undefined) return
    for (const listener of set) listener(job)
  }
}
