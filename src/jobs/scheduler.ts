/**
 * The queue: decides which item runs next and how many at once. Jobs take turns (round-robin),
 * so a small job submitted behind a large one starts as soon as a worker frees up; a host never
 * has more than `perHostConcurrency` downloads at once; a credential whose Imgur budget is spent
 * gets no new item until its reset. Waiting items hold no worker and no bytes.
 */
import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import type { Reservation } from '../budgets.ts'
import { isServiceError, ServiceError } from '../errors.ts'
import { anySignal } from '../signals.ts'
import { admit } from './admission.ts'
import type { ItemView, JobQueue, JobStore, JobView, QueueEvents, Refusal, Work } from './contract.ts'
import type { JobOptions, Outcome, Reason } from './model.ts'
import { type RetryPolicy, retryDelay } from './retry.ts'
import type { MemoryJobStore } from './store.ts'
import { createTurn, exhausted, HostSlots, hostOf, pick, type Turn, takeRest } from './turns.ts'

export type SchedulerOptions = {
  concurrency: number
  perHostConcurrency: number
  maxPendingItems: number
  /** Bytes the pending items may retain in all (see `itemBytes`). */
  maxPendingBytes?: number
  maxRateLimitWaitMs: number
  retry: RetryPolicy
  now?: () => number
}

export type SchedulerDeps = {
  /** The memory store: its counters are read synchronously for admission. */
  store: JobStore & Pick<MemoryJobStore, 'pendingItems' | 'pendingBytes'>
  budgets: { reserve(key: string, now: number): Reservation }
  credentialKey: (clientId: string | undefined) => string
  work: Work
  log: Logger
}

/** The memory queue: one process runs every item, jobs taking turns. */
export class Scheduler extends EventEmitter<QueueEvents> implements JobQueue {
  readonly #options: SchedulerOptions
  readonly #deps: SchedulerDeps
  readonly #now: () => number
  readonly #turns: Turn[] = []
  readonly #turnOf = new Map<string, Turn>()
  readonly #hosts: HostSlots
  /** Items waiting for their retry, by the timer that will queue them again (the value is the job id). */
  readonly #waits = new Map<NodeJS.Timeout, string>()
  readonly #inFlight = new Set<Promise<void>>()
  /** Items failed outside any run (`#failRest`) whose `settled` is still to come: idle waits for them. */
  readonly #failing = new Set<Promise<void>>()
  /** Each item in flight has a controller of its own (key `jobId:index`), so cancelling a job aborts only its items. */
  readonly #running = new Map<string, AbortController>()
  readonly #shutdown = new AbortController()
  #cursor = 0
  #waking: NodeJS.Timeout | undefined
  #closed = false

  constructor(options: SchedulerOptions, deps: SchedulerDeps) {
    super()
    for (const key of ['concurrency', 'perHostConcurrency', 'maxPendingItems'] as const) {
      if (!Number.isInteger(options[key]) || options[key] < 1) {
        throw new TypeError(`Expected \`${key}\` to be an integer >= 1, got \`${options[key]}\``)
      }
    }
    this.#options = options
    this.#deps = deps
    this.#now = options.now ?? Date.now
    this.#hosts = new HostSlots(options.perHostConcurrency)
  }

  /** Items being worked on right now. */
  get active(): number {
    return this.#inFlight.size
  }

  get accepting(): boolean {
    return this.refusal === undefined
  }

  get refusal(): Refusal | undefined {
    const { store } = this.#deps
    const { maxPendingItems, maxPendingBytes = Number.POSITIVE_INFINITY } = this.#options
    if (this.#closed) return 'shutting_down'
    if (store.pendingItems >= maxPendingItems || store.pendingBytes >= maxPendingBytes) return 'queue_full'
    return undefined
  }

  /** Creates a job for the URLs and queues its items; nothing is downloaded before this resolves. */
  async submit(
    urls: readonly string[],
    targets: readonly string[],
    options: JobOptions = {},
  ): Promise<JobView> {
    const { store } = this.#deps
    const { job } = admit(urls, targets, options, {
      closed: this.#closed,
      waiting: store,
      limits: this.#options,
      now: this.#now(),
      where: 'the service',
    })
    await store.add(job)
    this.#enqueue(createTurn(job, this.#deps.credentialKey(options.clientId)))
    // Not a microtask: that would run before the submitter's `await` resumes, so the job it gets
    // would already have started.
    setImmediate(() => this.#pump())
    return job
  }

  /** Resolves when no item is pending or being worked on. */
  onIdle(): Promise<void> {
    if (this.#idle) return Promise.resolve()
    return new Promise((resolve) => this.once('idle', resolve))
  }

  /**
   * Cancels the job for its client: every item not finished (not started, waiting for a retry, or
   * in flight, whose work is aborted and its outcome ignored) fails with `cancelled` at once, through
   * the store; complete items stay. A job with nothing pending is left as it is. Returns the number
   * of items cancelled.
   */
  async cancel(jobId: string): Promise<number> {
    const turn = this.#turnOf.get(jobId)
    if (turn !== undefined) this.#drop(this.#turns.indexOf(turn))
    for (const [timer, waiting] of this.#waits) {
      if (waiting !== jobId) continue
      clearTimeout(timer)
      this.#waits.delete(timer)
    }
    const cancelled = await this.#deps.store.cancel(jobId, CANCELLED)
    for (const index of cancelled) {
      this.#running.get(`${jobId}:${index}`)?.abort(new ServiceError('cancelled', CANCELLED.message))
      this.emit('settled', { jobId, index, outcome: 'failed', code: CANCELLED.code })
    }
    if (cancelled.length > 0) this.#deps.log.info({ jobId, items: cancelled.length }, 'job cancelled')
    this.#pump()
    return cancelled.length
  }

  /**
   * Stops starting items and drops waits; lets in-flight items finish for up to `graceMs`, then
   * cancels what is left (the signal reaches every download and upload).
   */
  async close(graceMs: number): Promise<void> {
    this.#closed = true
    for (const timer of this.#waits.keys()) clearTimeout(timer)
    this.#waits.clear()
    clearTimeout(this.#waking)
    const all = Promise.allSettled([...this.#inFlight])
    const grace = new Promise((resolve) => setTimeout(resolve, graceMs).unref())
    await Promise.race([all, grace])
    this.#shutdown.abort(new ServiceError('cancelled', SHUT_DOWN.message))
    await all
  }

  get #idle(): boolean {
    return this.#inFlight.size === 0 && this.#failing.size === 0 && this.#deps.store.pendingItems === 0
  }

  #enqueue(turn: Turn): void {
    if (this.#turnOf.has(turn.job.id)) return
    this.#turnOf.set(turn.job.id, turn)
    this.#turns.push(turn)
  }

  #drop(index: number): void {
    const [turn] = this.#turns.splice(index, 1)
    if (turn !== undefined) this.#turnOf.delete(turn.job.id)
    if (index < this.#cursor) this.#cursor -= 1
  }

  #pump(): void {
    let wakeIn = Number.POSITIVE_INFINITY
    let skipped = 0
    while (!this.#closed && this.#inFlight.size < this.#options.concurrency && skipped < this.#turns.length) {
      if (this.#cursor >= this.#turns.length) this.#cursor = 0
      const position = this.#cursor
      const turn = this.#turns[position] as Turn
      const index = pick(turn, (host) => this.#hosts.free(host))
      if (index === undefined) {
        if (exhausted(turn)) this.#drop(position)
        else {
          this.#cursor += 1
          skipped += 1
        }
        continue
      }
      const budget = this.#deps.budgets.reserve(turn.key, this.#now())
      if (!budget.ok) {
        turn.ready.unshift(index)
        if (budget.waitMs > this.#options.maxRateLimitWaitMs) {
          this.#failRest(turn, {
            code: 'imgur_rate_limited',
            message: `Imgur's upload budget for this client id is spent until ${new Date(budget.resetAt).toISOString()}; submit again after then`,
          })
          this.#drop(position)
        } else {
          wakeIn = Math.min(wakeIn, budget.waitMs)
          this.#cursor += 1
          skipped += 1
        }
        continue
      }
      this.#cursor += 1
      skipped = 0
      this.#run(turn, index, budget.release)
    }
    if (this.#idle) this.emit('idle')
    if (wakeIn !== Number.POSITIVE_INFINITY && !this.#closed) {
      clearTimeout(this.#waking)
      this.#waking = setTimeout(() => this.#pump(), Math.max(wakeIn, 1))
      this.#waking.unref()
    }
  }

  #run(turn: Turn, index: number, release: () => void): void {
    const { job } = turn
    const { store, log } = this.#deps
    const item = job.items[index] as ItemView
    const freeHost = this.#hosts.take(hostOf(item.target))
    const own = new AbortController()
    const key = `${job.id}:${index}`
    this.#running.set(key, own)
    const running = (async () => {
      const attempt = await store.start(job.id, index)
      // Cancelled before it started: nothing to do.
      if (attempt === undefined) return
      this.emit('attempt', { jobId: job.id, index })
      let outcome: Outcome
      const either = anySignal([this.#shutdown.signal, own.signal])
      try {
        outcome = await this.#deps.work(
          { jobId: job.id, index, target: item.target, clientId: job.clientId },
          either.signal,
          freeHost,
        )
      } catch (error) {
        return this.#failed(turn, index, attempt, error)
      } finally {
        either.dispose()
      }
      if (await store.complete(job.id, index, outcome)) {
        log.info({ jobId: job.id, url: item.url, link: outcome.link, attempts: attempt }, 'item complete')
        this.emit('settled', { jobId: job.id, index, outcome: 'complete' })
      } else {
        // Cancelled while its upload was already made: the store has failed it; the link is not listed.
        log.info(
          { jobId: job.id, url: item.url, link: outcome.link },
          'item uploaded after its job was cancelled',
        )
      }
    })()
      .catch((error: unknown) => log.error({ err: error, jobId: job.id }, 'item could not be recorded'))
      .finally(() => {
        this.#running.delete(key)
        freeHost()
        release()
        this.#inFlight.delete(running)
        this.#pump()
      })
    this.#inFlight.add(running)
  }

  async #failed(turn: Turn, index: number, attempt: number, error: unknown): Promise<void> {
    const { job } = turn
    const item = job.items[index] as ItemView
    // Cancelled while it ran: the store has failed it already, and it is not tried again.
    if (item.state !== 'pending') return
    let reason = reasonOf(error)
    // The download or upload reports its own abort; say why it was aborted.
    if (reason.code === 'cancelled' && this.#shutdown.signal.aborted) reason = SHUT_DOWN
    if (reason.code === 'internal_error') this.#deps.log.error({ err: error, jobId: job.id }, 'worker error')
    const delayMs = this.#closed ? undefined : retryDelay(this.#options.retry, error, attempt)
    if (delayMs !== undefined && delayMs > this.#options.maxRateLimitWaitMs) {
      const resetAt = new Date(this.#now() + delayMs).toISOString()
      reason = {
        code: reason.code,
        message: `${reason.message}; Imgur's budget resets at ${resetAt}, later than this service waits`,
      }
    } else if (delayMs !== undefined) {
      this.#deps.log.info(
        { jobId: job.id, url: item.url, code: reason.code, attempt, delayMs },
        'item will be retried',
      )
      await this.#deps.store.retrying(job.id, index)
      this.emit('retry', { jobId: job.id, index, code: reason.code, delayMs })
      const timer = setTimeout(() => {
        this.#waits.delete(timer)
        turn.ready.push(index)
        this.#enqueue(turn)
        this.#pump()
      }, delayMs)
      timer.unref()
      this.#waits.set(timer, job.id)
      return
    }
    await this.#fail(job, index, reason)
    // A refused client id ends every job that uses it, and only those.
    if (isServiceError(error) && error.failsRest) {
      const affected = new Set([turn, ...this.#turns.filter(({ key }) => key === turn.key)])
      for (const other of affected) this.#failRest(other, reason)
    }
  }

  /** Fails every item of the turn not started yet, e.g. when Imgur refused the job's client id. */
  #failRest(turn: Turn, reason: Reason): void {
    const rest = takeRest(turn)
    if (rest.length === 0) return
    const failing = Promise.all(
      rest.map((index) =>
        this.#fail(turn.job, index, reason).catch((error: unknown) =>
          this.#deps.log.error({ err: error, jobId: turn.job.id }, 'item could not be recorded'),
        ),
      ),
    ).then(() => {
      this.#failing.delete(failing)
      this.#pump()
    })
    this.#failing.add(failing)
  }

  async #fail(job: JobView, index: number, reason: Reason): Promise<void> {
    if (!(await this.#deps.store.fail(job.id, index, reason))) return
    this.#deps.log.warn(
      {
        jobId: job.id,
        url: job.items[index]?.url,
        code: reason.code,
        reason: reason.message,
        attempt: job.items[index]?.attempts,
      },
      'item failed',
    )
    this.emit('settled', { jobId: job.id, index, outcome: 'failed', code: reason.code })
  }
}
/** The one code, two messages: whether the client asked for it or the service stopped. */
const CANCELLED: Reason = {
  code: 'cancelled',
  message: 'the client cancelled the job before this URL finished',
}
const SHUT_DOWN: Reason = {
  code: 'cancelled',
  message: 'the service shut down before this URL finished; submit it again',
}

function reasonOf(error: unknown): Reason {
  if (isServiceError(error)) return { code: error.code, message: error.message }
  return { code: 'internal_error', message: 'an unexpected error occurred while processing this URL' }
}
