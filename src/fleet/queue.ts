/**
 * The fleet's queue: every URL is one BullMQ job in Redis, run by the workers of every replica.
 * Its priority is its position in its job, so jobs interleave (a one-URL job submitted behind a
 * 1,000-URL one starts on the next free worker). BullMQ holds only ids and the URL: the job and
 * its items live in the store, which stays their only writer. Retries keep the memory queue's
 * policy: the item is moved back to BullMQ's delayed set for the wait the policy gives. A replica
 * takes twice as many items as it transfers at once, so their Redis round trips overlap the
 * transfers of others; an item waiting for Redis in the middle of its transfer (its lookup in the
 * fleet's de-duplication table) lends its slot meanwhile.
 * Facts and pitfalls: /work/shared/notes/scale-out.md
 */
import { EventEmitter } from 'node:events'
import { type Job as BullJob, DelayedError, Queue, WaitingError, Worker } from 'bullmq'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { Reservation } from '../budgets.ts'
import { isServiceError, ServiceError } from '../errors.ts'
import { admit } from '../jobs/admission.ts'
import type { Away, JobQueue, JobStore, JobView, QueueEvents, Refusal, Work } from '../jobs/contract.ts'
import type { JobOptions, Outcome, Reason } from '../jobs/model.ts'
import { type RetryPolicy, retryDelay } from '../jobs/retry.ts'
import { HostSlots, hostOf } from '../jobs/turns.ts'
import { createLimit } from '../limit.ts'
import { LruMap } from '../lru.ts'
import { anySignal } from '../signals.ts'

/**
 * What BullMQ holds of an item: where it is, and what its worker needs without reading the job;
 * `url`, for the log, only when the URL as submitted is not its target.
 */
export type ItemData = {
  jobId: string
  index: number
  target: string
  url?: string
  clientId?: string | undefined
}

export type FleetQueueOptions = {
  prefix: string
  /** Items this replica works on at once (UPLOAD_CONCURRENCY); 0 takes no work (ROLE=api). */
  concurrency: number
  /** Per replica: each replica keeps its own count of downloads per host. */
  perHostConcurrency: number
  maxPendingItems: number
  maxPendingBytes: number
  maxRateLimitWaitMs: number
  retry: RetryPolicy
  /** A replica's lock on an item; one silent this long has its items taken up by the others. */
  lockMs: number
  now?: () => number
}

export type FleetQueueDeps = {
  store: JobStore
  /** Commands that must fail fast when Redis is gone (submissions, cancels). */
  redis: Redis
  /** The workers' connection (BullMQ needs `maxRetriesPerRequest: null` on it); none with no workers. */
  workerRedis: Redis | undefined
  budgets: { reserve(key: string, now: number): Reservation | Promise<Reservation> }
  credentialKey: (clientId: string | undefined) => string
  work: Work
  log: Logger
}

const QUEUE = 'items'
/** BullMQ's lowest priority; positions past it share it (and then run in submission order). */
const MAX_PRIORITY = 2_097_152
/** How long a credential Imgur refused stays refused for every replica (its items fail at once). */
const REFUSED_MS = 60_000
/**
 * How long a replica trusts its last look at a credential's refusal (one Redis read per item
 * otherwise): another replica's refusal reaches it within this; its own, at once.
 */
const REFUSED_CHECK_MS = 1_000
/** Credentials whose last look a replica remembers. */
const REFUSED_CHECKS = 1_000
/** Stall recoveries are counted as attempts; BullMQ itself never fails a stalled item. */
const MAX_STALLS = 1_000
/** How long an item whose store call failed waits before it runs again (Redis reconnects within 2 s). */
const HAND_BACK_MS = 1_000
/**
 * A submission records its job as unqueued until BullMQ holds every item: one still recorded after
 * UNQUEUED_MS (a submission takes seconds at most: each command times out after 5 s) lost its
 * replica, or Redis, between the store and the queue. Every replica looks every SWEEP_MS.
 */
const UNQUEUED_MS = 30_000
const SWEEP_MS = 10_000
/** Unqueued jobs one sweep settles at most; the rest wait for the next. */
const SWEEP_BATCH = 100

const CANCELLED: Reason = {
  code: 'cancelled',
  message: 'the client cancelled the job before this URL finished',
}

export class FleetQueue extends EventEmitter<QueueEvents> implements JobQueue {
  readonly #options: FleetQueueOptions
  readonly #deps: FleetQueueDeps
  readonly #now: () => number
  readonly #queue: Queue<ItemData>
  readonly #worker: Worker<ItemData> | undefined
  readonly #hosts: HostSlots
  readonly #hostWaiters: Array<() => void> = []
  /** UPLOAD_CONCURRENCY transfers (download, conversion, upload) at once; see the worker's concurrency. */
  readonly #transfers: ReturnType<typeof createLimit>
  readonly #cancels: Redis
  /** This replica's last look at credentials' refusals, by credential key (see REFUSED_CHECK_MS). */
  readonly #refusals = new LruMap<string, { reason: Reason | undefined; at: number }>(REFUSED_CHECKS)
  /** This replica's items in flight, by BullMQ id, with what aborts each. */
  readonly #running = new Map<string, { jobId: string; controller: AbortController }>()
  /**
   * Items BullMQ handed this replica and it is not done with: also those failed before their
   * attempt (a refused credential, a spent budget), settled in Redis before their events are told.
   */
  #processing = 0
  readonly #shutdown = new AbortController()
  #closed = false
  #full = false
  /** Bumped when a submission sets `#full`: a refresh read before then would undo it. */
  #fullSet = 0
  #refresh: NodeJS.Timeout | undefined
  #sweeping: NodeJS.Timeout | undefined

  constructor(options: FleetQueueOptions, deps: FleetQueueDeps) {
    super()
    for (const key of ['concurrency', 'perHostConcurrency', 'maxPendingItems', 'lockMs'] as const) {
      const min = key === 'concurrency' ? 0 : 1
      if (!Number.isInteger(options[key]) || options[key] < min) {
        throw new TypeError(`Expected \`${key}\` to be an integer >= ${min}, got \`${options[key]}\``)
      }
    }
    this.#options = options
    this.#deps = deps
    this.#now = options.now ?? Date.now
    this.#hosts = new HostSlots(options.perHostConcurrency)
    this.#transfers = createLimit(options.concurrency)
    this.#queue = new Queue<ItemData>(QUEUE, { connection: deps.redis, prefix: options.prefix })
    this.#queue.on('error', (error) => deps.log.warn({ err: error }, 'queue connection error'))
    if (options.concurrency > 0 && deps.workerRedis !== undefined) {
      this.#worker = new Worker<ItemData>(QUEUE, (job, token) => this.#process(job, token), {
        connection: deps.workerRedis,
        prefix: options.prefix,
        // Twice the transfers: an item's Redis round trips before its transfer (reservation,
        // start) and after it (settlement, BullMQ's completion and next fetch) run while other
        // items hold the transfer slots, instead of leaving a slot idle for each round trip.
        concurrency: options.concurrency * 2,
        lockDuration: options.lockMs,
        stalledInterval: options.lockMs,
        maxStalledCount: MAX_STALLS,
        removeOnComplete: { count: 0 },
        removeOnFail: { count: 0 },
      })
      this.#worker.on('error', (error) => deps.log.warn({ err: error }, 'worker connection error'))
      this.#worker.on('stalled', (id) =>
        deps.log.warn({ item: id }, 'item taken up again: its replica stopped'),
      )
    }
    // A cancel made at any replica aborts this replica's transfers of that job.
    this.#cancels = deps.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null })
    this.#cancels.on('error', () => {})
    this.#cancels.subscribe(this.#channel).catch(() => {})
    this.#cancels.on('message', (_channel: string, jobId: string) => this.#abortJob(jobId))
    this.#refresh = setInterval(() => this.#checkFull(), 1_000)
    this.#refresh.unref()
    this.#sweeping = setInterval(() => {
      this.sweep().catch((error: unknown) => deps.log.warn({ err: error }, 'sweep of unqueued jobs failed'))
    }, SWEEP_MS)
    this.#sweeping.unref()
  }

  get #channel(): string {
    return `${this.#options.prefix}:cancel`
  }

  /** Jobs stored whose items BullMQ may not hold yet, by the time their submission began. */
  get #unqueued(): string {
    return `${this.#options.prefix}:unqueued`
  }

  /** Items transferring right now (those started and waiting for a transfer slot are not counted). */
  get active(): number {
    return this.#transfers.active
  }

  get accepting(): boolean {
    return this.refusal === undefined
  }

  get refusal(): Refusal | undefined {
    if (this.#closed) return 'shutting_down'
    if (this.#deps.redis.status !== 'ready') return 'store_unavailable'
    return this.#full ? 'queue_full' : undefined
  }

  async submit(
    urls: readonly string[],
    targets: readonly string[],
    options: JobOptions = {},
  ): Promise<JobView> {
    const { store, log } = this.#deps
    const { maxPendingItems, maxPendingBytes } = this.#options
    const stats = this.#closed ? { pendingItems: 0, pendingBytes: 0 } : await store.stats()
    const { job, bytes } = admit(urls, targets, options, {
      closed: this.#closed,
      waiting: stats,
      limits: this.#options,
      now: this.#now(),
      where: 'the fleet',
    })
    // Recorded first: whatever stops this submission halfway, a sweep finds the job (see sweep()).
    await this.#deps.redis.zadd(this.#unqueued, this.#now(), job.id).catch((error: unknown) => {
      throw unavailable(error)
    })
    // Checked again with the add, atomically: submissions at other replicas may have filled the
    // fleet since `stats` was read.
    await store.add(job, { limits: this.#options, where: 'the fleet' }).catch(async (error: unknown) => {
      await this.#deps.redis.zrem(this.#unqueued, job.id).catch(() => {})
      throw error
    })
    // Known at once here, so /ready and `accepting` need not wait for the next refresh.
    this.#full =
      stats.pendingItems + urls.length >= maxPendingItems || stats.pendingBytes + bytes >= maxPendingBytes
    this.#fullSet += 1
    try {
      await this.#queue.addBulk(
        job.items.map((item, index) => ({
          name: 'item',
          data: {
            jobId: job.id,
            index,
            target: item.target,
            ...(item.url !== item.target && { url: item.url }),
            ...(job.clientId && { clientId: job.clientId }),
          },
          opts: {
            jobId: `${job.id}.${index}`,
            priority: Math.min(index + 1, MAX_PRIORITY),
            removeOnComplete: true,
            removeOnFail: true,
          },
        })),
      )
    } catch (error) {
      // Never a job with nothing queued for it: its items fail (the client gets the 503, not its
      // id). Should Redis fail this too, the sweep does it later.
      log.error({ err: error, jobId: job.id }, 'job could not be queued')
      await this.#failUnqueued(job.id).catch(() => {})
      throw unavailable(error)
    }
    // Queued: its record goes. Should Redis fail this, the sweep finds BullMQ holding every item
    // still pending and leaves the job alone.
    await this.#deps.redis.zrem(this.#unqueued, job.id).catch(() => {})
    return job
  }

  /**
   * Settles the jobs whose submission stopped between the store and the queue (a replica that
   * died, or Redis failing it halfway; run every SWEEP_MS): a job whose pending items BullMQ all
   * holds was queued and is left alone; any other has its pending items failed with
   * `store_unavailable`, as the submission that answered 503 would have. Resolves with the jobs it
   * failed.
   */
  async sweep(): Promise<string[]> {
    if (this.#closed) return []
    const { redis, store } = this.#deps
    const stale = await redis.zrangebyscore(
      this.#unqueued,
      '-inf',
      this.#now() - UNQUEUED_MS,
      'LIMIT',
      0,
      SWEEP_BATCH,
    )
    const pendingOf = async (jobId: string) =>
      (await store.get(jobId))?.items.flatMap((item, index) => (item.state === 'pending' ? [index] : [])) ??
      []
    const failed: string[] = []
    for (const jobId of stale) {
      const pending = await pendingOf(jobId)
      const held = await Promise.all(
        pending.map((index) => redis.exists(this.#queue.toKey(`${jobId}.${index}`))),
      )
      const missing = pending.filter((_, at) => held[at] === 0)
      // An item's settlement is written before BullMQ lets it go: one BullMQ does not hold that is
      // still pending after that look was never queued (the others had just finished).
      const still = missing.length === 0 ? new Set<number>() : new Set(await pendingOf(jobId))
      if (missing.some((index) => still.has(index))) {
        await this.#failUnqueued(jobId)
        failed.push(jobId)
      } else {
        await redis.zrem(this.#unqueued, jobId)
      }
    }
    return failed
  }

  /** Fails what is left of a job the queue does not hold (in full), then forgets its record. */
  async #failUnqueued(jobId: string): Promise<void> {
    // Items BullMQ holds after all (a submission cut off halfway) leave it, and stop where they run.
    const failed = await this.#failRest(jobId, UNQUEUED)
    await this.#deps.redis.zrem(this.#unqueued, jobId)
    if (failed > 0)
      this.#deps.log.warn({ jobId, items: failed }, 'job never queued in full: its items failed')
  }

  async cancel(jobId: string): Promise<number> {
    const cancelled = await this.#failRest(jobId, CANCELLED)
    if (cancelled > 0) this.#deps.log.info({ jobId, items: cancelled }, 'job cancelled')
    return cancelled
  }

  /**
   * Fails every item of the job still pending with `reason`: those waiting leave BullMQ, those
   * running anywhere are aborted by their replica. Resolves with how many it failed.
   */
  async #failRest(jobId: string, reason: Reason): Promise<number> {
    const failed = await this.#deps.store.cancel(jobId, reason)
    if (failed.length === 0) return 0
    await Promise.allSettled(failed.map((index) => this.#queue.remove(`${jobId}.${index}`)))
    await this.#deps.redis.publish(this.#channel, jobId).catch(() => {})
    this.#abortJob(jobId)
    for (const index of failed) this.emit('settled', { jobId, index, outcome: 'failed', code: reason.code })
    return failed.length
  }

  /** Resolves once the fleet has nothing pending and this replica nothing in flight. */
  async onIdle(): Promise<void> {
    for (;;) {
      const stats = await this.#deps.store.stats().catch(() => undefined)
      if (stats?.pendingItems === 0 && this.#processing === 0) return
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /**
   * Stops taking items; lets those in flight finish for up to `graceMs`; then aborts the rest and
   * hands them back to the queue, where another replica (or this one, restarted) takes them up.
   */
  async close(graceMs: number): Promise<void> {
    this.#closed = true
    clearInterval(this.#refresh)
    clearInterval(this.#sweeping)
    const worker = this.#worker
    if (worker !== undefined) {
      await worker.pause(true).catch(() => {})
      const deadline = Date.now() + graceMs
      while (this.#running.size > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      this.#shutdown.abort(new ServiceError('cancelled', 'the replica is stopping'))
      // Without Redis, BullMQ's close would wait for its fetch loop and QUIT, queued until Redis
      // returns: the replica would overrun SHUTDOWN_TIMEOUT_MS and exit 1. Forced, it disconnects.
      await worker.close(this.#deps.redis.status !== 'ready')
    }
    await this.#queue.close()
    this.#cancels.disconnect()
  }

  async #checkFull(): Promise<void> {
    const set = this.#fullSet
    const stats = await this.#deps.store.stats().catch(() => undefined)
    if (stats === undefined || set !== this.#fullSet) return
    this.#full =
      stats.pendingItems >= this.#options.maxPendingItems ||
      stats.pendingBytes >= this.#options.maxPendingBytes
  }

  #abortJob(jobId: string): void {
    for (const running of this.#running.values()) {
      if (running.jobId === jobId) running.controller.abort(new ServiceError('cancelled', CANCELLED.message))
    }
  }

  async #process(bull: BullJob<ItemData>, token: string | undefined): Promise<void> {
    this.#processing += 1
    try {
      await this.#attempt(bull, token)
    } catch (error) {
      if (error instanceof DelayedError || error instanceof WaitingError) throw error
      // Thrown to BullMQ, the item would be failed and removed while the store still holds it
      // pending, for good: a Redis blip (a reservation, start or settlement not answered) would
      // strand it. It goes back to the queue instead, and runs again (its attempts are counted).
      const { jobId, index } = bull.data
      this.#deps.log.warn({ err: error, jobId, index }, 'item handed back to the queue: Redis failed it')
      await bull.moveToDelayed(this.#now() + HAND_BACK_MS, token)
      throw new DelayedError()
    } finally {
      this.#processing -= 1
    }
  }

  /** One attempt at one item, run by BullMQ on this replica. */
  async #attempt(bull: BullJob<ItemData>, token: string | undefined): Promise<void> {
    const { jobId, index, target, clientId } = bull.data
    const { store, log } = this.#deps
    const key = this.#deps.credentialKey(clientId)
    const looked = performance.now()
    const refused = await this.#refusal(key)
    if (refused !== undefined) {
      await this.#fail(bull.data, refused)
      return
    }
    // The host's slot first, as the memory queue does: an item waiting for its host must not hold
    // a reservation, which would show every replica less budget than there is (and could outlive
    // its lease).
    const freeHost = await this.#hostSlot(hostOf(target))
    let budget: Reservation
    try {
      budget = await this.#deps.budgets.reserve(key, this.#now())
    } catch (error) {
      freeHost()
      throw error
    }
    if (!budget.ok) {
      freeHost()
      if (budget.waitMs > this.#options.maxRateLimitWaitMs) {
        await this.#fail(bull.data, {
          code: 'imgur_rate_limited',
          message: `Imgur's upload budget for this client id is spent until ${new Date(budget.resetAt).toISOString()}; submit again after then`,
        })
        return
      }
      // Back to the queue until the budget's reset: no attempt is spent, and no worker waits.
      await bull.moveToDelayed(this.#now() + Math.max(budget.waitMs, 1), token)
      throw new DelayedError()
    }
    // Known before the attempt begins, so a cancel arriving while the store starts it aborts it.
    const controller = new AbortController()
    this.#running.set(bull.id as string, { jobId, controller })
    let freeTransfer = () => {}
    try {
      if (this.#shutdown.signal.aborted) {
        // Stopping while it waited for its host or its budget: back to the queue as it is, no
        // attempt counted (a rolling restart must not push items towards worker_lost).
        await bull.moveToWait(token)
        throw new WaitingError()
      }
      const attempt = await store.start(jobId, index)
      // Cancelled, or its job expired: nothing to do.
      if (attempt === undefined) return
      // A replica that stops mid-item leaves it to stall recovery, which runs it again: counted here.
      if (attempt > this.#options.retry.maxAttempts) {
        await this.#fail(
          bull.data,
          {
            code: 'worker_lost',
            message: `this URL was taken up again ${attempt - 1} times (its replica stopped, or lost Redis, before finishing it); submit it again`,
          },
          attempt,
        )
        return
      }
      // Started and reserved, it may wait for a transfer slot: at most as long as the items that
      // began before it take, in turn (those lending their slot come back ahead of it; the budgets'
      // lease allows for that wait), keeping its host's slot.
      freeTransfer = await this.#transfers.take()
      // This replica saw Imgur refuse the credential while the item waited: no request of it.
      const refusedSince = this.#refusedAfter(key, looked)
      if (refusedSince !== undefined) {
        await this.#fail(bull.data, refusedSince, attempt)
        return
      }
      let outcome: Outcome
      let ended = false
      const either = anySignal([this.#shutdown.signal, controller.signal])
      // While Redis answers the item's lookup in the fleet's de-duplication table, its slot serves
      // another item; it then takes it again ahead of the items not begun, which hold no bytes.
      const away: Away = async (fn) => {
        freeTransfer()
        const answer = (async () => fn())()
        // Its answer, or its failure, is the item's once the item holds its slot again.
        await answer.catch(() => {})
        const back = await this.#transfers.take(either.signal, { ahead: true })
        // The attempt ended meanwhile (its deadline, in the pipeline's thread): nothing keeps the slot.
        if (ended) back()
        else freeTransfer = back
        // Imgur refused the credential meanwhile: the item stops before its upload, failing as the
        // refused items did (the one code that fails the rest, src/errors.ts).
        const refusedMeanwhile = ended ? undefined : this.#refusedAfter(key, looked)
        if (refusedMeanwhile !== undefined) {
          throw new ServiceError('imgur_client_id_refused', refusedMeanwhile.message)
        }
        return answer
      }
      try {
        // Stopped or cancelled while it waited: no transfer begins.
        either.signal.throwIfAborted()
        this.emit('attempt', { jobId, index })
        outcome = await this.#deps.work({ jobId, index, target, clientId }, either.signal, freeHost, away)
      } catch (error) {
        // Its slot is held until the failure is recorded: a refusal reaches the next item first.
        return await this.#failed(bull, token, attempt, error)
      } finally {
        ended = true
        either.dispose()
        // Given back before the settlement's round trip (and BullMQ's), for the next item.
        freeTransfer()
      }
      if (await store.complete(jobId, index, outcome)) {
        log.info(
          { jobId, index, url: urlOf(bull.data), link: outcome.link, attempts: attempt },
          'item complete',
        )
        this.emit('settled', { jobId, index, outcome: 'complete' })
      } else {
        log.info(
          { jobId, index, url: urlOf(bull.data), link: outcome.link },
          'item uploaded after its job was cancelled',
        )
      }
    } finally {
      this.#running.delete(bull.id as string)
      freeTransfer()
      freeHost()
      budget.release()
    }
  }

  async #failed(
    bull: BullJob<ItemData>,
    token: string | undefined,
    attempt: number,
    error: unknown,
  ): Promise<void> {
    const { store, log } = this.#deps
    const { jobId, index, clientId } = bull.data
    if (this.#shutdown.signal.aborted) {
      // Stopping: the item goes back to the queue as it is, for another replica.
      await bull.moveToWait(token)
      throw new WaitingError()
    }
    let reason: Reason = isServiceError(error)
      ? { code: error.code, message: error.message }
      : { code: 'internal_error', message: 'an unexpected error occurred while processing this URL' }
    // Cancelled while it ran: the store has failed it already.
    if (reason.code === 'cancelled') return
    if (reason.code === 'internal_error') log.error({ err: error, jobId }, 'worker error')
    const delayMs = retryDelay(this.#options.retry, error, attempt)
    if (delayMs !== undefined && delayMs > this.#options.maxRateLimitWaitMs) {
      const resetAt = new Date(this.#now() + delayMs).toISOString()
      reason = {
        code: reason.code,
        message: `${reason.message}; Imgur's budget resets at ${resetAt}, later than this service waits`,
      }
    } else if (delayMs !== undefined) {
      log.info(
        { jobId, index, url: urlOf(bull.data), code: reason.code, attempt, delayMs },
        'item will be retried',
      )
      await store.retrying(jobId, index)
      this.emit('retry', { jobId, index, code: reason.code, delayMs })
      await bull.moveToDelayed(this.#now() + Math.max(delayMs, 1), token)
      throw new DelayedError()
    }
    if (isServiceError(error) && error.failsRest) {
      // Every replica fails this credential's items at once for a while (they cannot succeed).
      const key = this.#deps.credentialKey(clientId)
      this.#refusals.set(key, { reason, at: performance.now() })
      await this.#deps.redis
        .set(`${this.#options.prefix}:refused:${key}`, JSON.stringify(reason), 'PX', REFUSED_MS)
        .catch(() => {})
    }
    await this.#fail(bull.data, reason, attempt)
  }

  /** `attempt`: undefined when the item failed before an attempt began (its credential or budget). */
  async #fail(data: ItemData, reason: Reason, attempt?: number): Promise<void> {
    const { jobId, index } = data
    if (!(await this.#deps.store.fail(jobId, index, reason))) return
    this.#deps.log.warn(
      { jobId, index, url: urlOf(data), code: reason.code, reason: reason.message, attempt },
      'item failed',
    )
    this.emit('settled', { jobId, index, outcome: 'failed', code: reason.code })
  }

  /** Why Imgur refused the credential, if it did within REFUSED_MS, as this replica last looked. */
  async #refusal(key: string): Promise<Reason | undefined> {
    const known = this.#refusals.get(key)
    if (known !== undefined && performance.now() - known.at < REFUSED_CHECK_MS) return known.reason
    const at = performance.now()
    let raw: string | null
    try {
      raw = await this.#deps.redis.get(`${this.#options.prefix}:refused:${key}`)
    } catch {
      return undefined // unknown, not remembered: Redis is asked again next time
    }
    const reason = raw === null ? undefined : (JSON.parse(raw) as Reason)
    // A refusal this replica saw while the read was on its way is newer than the read.
    if ((this.#refusals.get(key)?.at ?? -1) < at) this.#refusals.set(key, { reason, at })
    return reason
  }

  /** Why Imgur refused the credential, if this replica saw it after `since` (performance.now()). */
  #refusedAfter(key: string, since: number): Reason | undefined {
    const seen = this.#refusals.get(key)
    return seen !== undefined && seen.at > since ? seen.reason : undefined
  }

  /** A download slot of `host` on this replica, waited for while the host is busy. */
  async #hostSlot(host: string): Promise<() => void> {
    while (!this.#hosts.free(host)) await new Promise<void>((resolve) => this.#hostWaiters.push(resolve))
    const release = this.#hosts.take(host)
    let held = true
    return () => {
      if (!held) return
      held = false
      release()
      // Every waiter looks again; those whose host is still busy wait anew.
      for (const wake of this.#hostWaiters.splice(0)) wake()
    }
  }
}

/** The URL as submitted, as the memory queue logs it. */
function urlOf(data: ItemData): string {
  return data.url ?? data.target
}

const UNQUEUED: Reason = {
  code: 'store_unavailable',
  message: 'the job could not be queued: Redis could not be reached',
}

function unavailable(cause: unknown): ServiceError {
  return new ServiceError('store_unavailable', 'Redis cannot be reached; try again shortly', {
    retryAfterMs: 5_000,
    cause,
  })
}
