/**
 * The in-memory home of jobs and links (the default: one process, no datastore). It is the only
 * place that changes them (through the model's transitions), so it can keep the counters, notify
 * subscribers and own retention. Its views are the live jobs, typed read-only; every change
 * happens at once, inside the call, though the contract makes the calls asynchronous.
 */
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { AlbumResult, JobStore, JobView, StoreEvents, StoreStats } from './contract.ts'
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

type Listener = (job: JobView) => void

export class MemoryJobStore extends EventEmitter<StoreEvents> implements JobStore {
  readonly epoch = randomBytes(4).toString('hex')
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

  async stats(): Promise<StoreStats> {
    return { pendingItems: this.#pendingItems, pendingBytes: this.#pendingBytes, jobs: this.#jobs.size }
  }

  async add(job: Job): Promise<void> {
    this.#jobs.set(job.id, job)
    this.#pendingItems += job.pending
    for (const item of job.items) if (item.state === 'pending') this.#pendingBytes += itemBytes(item)
    if (job.pending === 0) this.#completed(job)
  }

  /** Jobs held, by status (retention decides how many finished ones that is). */
  async counts(): Promise<Record<JobStatus, number>> {
    const counts = { pending: 0, 'in-progress': 0, complete: 0 }
    for (const job of this.#jobs.values()) counts[jobStatus(job)] += 1
    return counts
  }

  async get(id: string): Promise<JobView | undefined> {
    return this.#jobs.get(id)
  }

  /** The job at once (the memory store's own callers and tests; the contract's `get` is async). */
  peek(id: string): JobView | undefined {
    return this.#jobs.get(id)
  }

  /**
   * Every link uploaded since start, each once, in upload order; with `owner`, only the links of
   * that owner's jobs. Retention never removes them.
   */
  async links(owner?: string): Promise<readonly string[]> {
    if (owner === undefined) return this.#links
    return this.#ownLinks.get(owner)?.list ?? []
  }

  async start(jobId: string, index: number): Promise<number | undefined> {
    const found = this.#pending(jobId, index)
    if (found === undefined) return undefined
    const [job, item] = found
    const first = !job.started
    startItem(job, item)
    if (first) this.#notify(job)
    return item.attempts
  }

  /** An item that will be tried again: still pending, but its attempt count changed. */
  async retrying(jobId: string, index: number): Promise<void> {
    const found = this.#pending(jobId, index)
    if (found === undefined) return
    found[0].version += 1
    this.#notify(found[0])
  }

  async complete(jobId: string, index: number, outcome: Outcome): Promise<boolean> {
    const found = this.#pending(jobId, index)
    if (found === undefined) return false
    const [job, item] = found
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
    return true
  }

  async fail(jobId: string, index: number, reason: Reason): Promise<boolean> {
    const found = this.#pending(jobId, index)
    if (found === undefined) return false
    const [job, item] = found
    this.#pendingBytes -= itemBytes(item)
    failItem(job, item, reason, this.#now())
    this.#settled(job)
    return true
  }

  /**
   * Fails every pending item of the job with `reason` at once (its client cancelled it), whether
   * it was waiting, waiting for a retry or in flight; complete items stay. Returns their positions.
   */
  async cancel(jobId: string, reason: Reason): Promise<number[]> {
    const job = this.#jobs.get(jobId)
    const cancelled: number[] = []
    if (job === undefined) return cancelled
    const now = this.#now()
    for (const [index, item] of job.items.entries()) {
      if (item.state !== 'pending') continue
      this.#pendingBytes -= itemBytes(item)
      failItem(job, item, reason, now)
      cancelled.push(index)
    }
    if (cancelled.length > 0) this.#settled(job, cancelled.length)
    return cancelled
  }

  /** Records the album the job asked for, made or failed: the job is then complete. */
  async settleAlbum(jobId: string, result: AlbumResult): Promise<void> {
    const job = this.#jobs.get(jobId)
    if (job === undefined) throw new Error(`no job ${jobId}`)
    settleAlbum(job, result, this.#now())
    this.#completed(job)
    this.#notify(job)
  }

  /** Records how the job's webhook delivery goes (the status shows it). */
  async webhookChanged(jobId: string, update: Partial<Omit<Webhook, 'url'>>): Promise<void> {
    const job = this.#jobs.get(jobId)
    if (job?.webhook === undefined) throw new Error('the job has no webhook')
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

  async close(): Promise<void> {
    clearInterval(this.#sweeper)
    this.#listeners.clear()
  }

  /** The job and its item at `index`, while that item is pending. */
  #pending(jobId: string, index: number): [Job, Item] | undefined {
    const job = this.#jobs.get(jobId)
    const item = job?.items[index]
    if (job === undefined || item?.state !== 'pending') return undefined
    return [job, item]
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
