/**
 * Sends each complete job's `job.completed` message to its webhook URL (each attempt: attempt.ts),
 * retried on a schedule. What waits for a retry is the message, never the job, and at most
 * `maxWaiting` of them. Delivery facts: /work/shared/notes/integrations.md, "Standard Webhooks".
 */
import type { Logger } from 'pino'
import type { Agent } from 'undici'
import { isBlockedAddress, originOf } from '../download/address.ts'
import { osLookup, type Resolve } from '../download/connect.ts'
import type { JobStore, JobView } from '../jobs/contract.ts'
import { attempt, type Message, type Sender } from './attempt.ts'
import { completedMessage, messageId, signingKey } from './message.ts'
import { nextDelay, type Outcome } from './outcome.ts'

export type WebhookOptions = {
  /** `whsec_<base64>`: the key of every signature. */
  secret: string
  /** Waits before each retry; once they are spent, the delivery has failed. */
  retryDelaysMs: readonly number[]
  /** Deadline of one attempt, from connecting to the end of the answer (the spec asks for 15–30 s). */
  timeoutMs?: number
  /** Attempts running at once; others wait their turn. */
  concurrency?: number
  /** Deliveries waiting (for a free slot or a retry) at most; past it the oldest is given up. */
  maxWaiting?: number
  allowPrivateNetworks: boolean
  userAgent: string
  /** The service's own URLs (PUBLIC_URL): never called back. */
  ownUrls?: readonly string[]
  /** Resolver the connections use (tests inject one); defaults to the OS resolver. */
  lookup?: Resolve
  isBlocked?: (address: string) => boolean
  /** The clock of `webhook-timestamp` (tests move it). */
  now?: () => number
}

type WebhookUpdate = Parameters<JobStore['webhookChanged']>[1]

/**
 * What a delivery keeps between attempts: its message, built once, and its job's id; never the
 * job, which the store forgets on its own schedule (retention) while retries may wait for hours.
 */
type Delivery = Message & {
  readonly jobId: string
  /** Attempts made so far (a fleet's view of the job is a snapshot: the count is kept here). */
  attempts: number
  /** True from its scheduling until its attempt starts: waiting for its time, then for a slot. */
  waiting: boolean
  timer: NodeJS.Timeout | undefined
}

/**
 * Deliveries waiting at most, by default: as many as the finished jobs the store keeps by default
 * (JOB_RETENTION_COUNT); past that, a message mostly names a job the store has already forgotten.
 * Measured on Node 24, a waiting delivery holds about 1 kB, 3 kB with a 2,048-character URL: at
 * most about 30 MB in all, whatever the size of the jobs.
 */
export const MAX_WAITING = 10_000

function checkOptions(o: WebhookOptions): void {
  for (const [name, value] of [
    ['timeoutMs', o.timeoutMs],
    ['concurrency', o.concurrency],
    ['maxWaiting', o.maxWaiting],
  ] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
      throw new TypeError(`Expected \`${name}\` to be an integer >= 1, got \`${value}\``)
    }
  }
  if (!o.retryDelaysMs.every((ms) => Number.isSafeInteger(ms) && ms >= 0)) {
    throw new TypeError(`Expected \`retryDelaysMs\` to hold integers >= 0, got \`${o.retryDelaysMs}\``)
  }
  if (typeof o.userAgent !== 'string' || !/^[\x20-\x7e]*\S[\x20-\x7e]*$/.test(o.userAgent)) {
    throw new TypeError(
      `Expected \`userAgent\` to be a non-empty printable ASCII string, got \`${o.userAgent}\``,
    )
  }
}

export class Webhooks {
  readonly #options: WebhookOptions
  readonly #store: JobStore
  readonly #log: Logger
  readonly #sender: Sender
  readonly #concurrency: number
  readonly #maxWaiting: number
  /** Deliveries neither delivered nor failed (waiting or running), oldest first. */
  readonly #pending = new Set<Delivery>()
  /** Due, waiting for a free slot, in the order they fell due. */
  readonly #ready = new Set<Delivery>()
  /** Deliveries whose `waiting` is true: at most `#maxWaiting`. */
  #waiting = 0
  readonly #running = new Set<Promise<void>>()
  readonly #stop = new AbortController()
  #idle: Array<() => void> = []
  #closing: Promise<void> | undefined
  #agent: Promise<Agent> | undefined
  readonly #onComplete = (job: JobView) => this.#enqueue(job)

  constructor(options: WebhookOptions, { store, log }: { store: JobStore; log: Logger }) {
    checkOptions(options)
    this.#options = options
    this.#store = store
    this.#log = log
    this.#concurrency = options.concurrency ?? 16
    this.#maxWaiting = options.maxWaiting ?? MAX_WAITING
    const timeoutMs = options.timeoutMs ?? 15_000
    const policy = {
      allowPrivate: options.allowPrivateNetworks,
      isBlocked: options.isBlocked ?? isBlockedAddress,
    }
    this.#sender = {
      agent: () =>
        (this.#agent ??= import('../download/agent.ts').then(({ createAgent }) =>
          createAgent(options.lookup ?? osLookup, policy, timeoutMs),
        )),
      policy,
      ownOrigins: new Set(options.ownUrls?.map((own) => originOf(new URL(own)))),
      key: signingKey(options.secret),
      userAgent: options.userAgent,
      timeoutMs,
      now: options.now ?? Date.now,
      stop: this.#stop.signal,
    }
    store.on('complete', this.#onComplete)
  }

  /** Deliveries neither delivered nor failed yet. */
  get pending(): number {
    return this.#pending.size
  }

  /** Resolves once every delivery has been delivered or has failed (or the service closed). */
  onIdle(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  /** Drops every delivery still to go: timers cleared, attempts in flight aborted. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown(): Promise<void> {
    this.#store.off('complete', this.#onComplete)
    this.#stop.abort()
    if (this.#pending.size > 0) {
      this.#log.info({ dropped: this.#pending.size }, 'webhook deliveries dropped at shutdown')
    }
    for (const delivery of this.#pending) clearTimeout(delivery.timer)
    this.#pending.clear()
    this.#ready.clear()
    this.#waiting = 0
    this.#wake()
    await Promise.allSettled(this.#running)
    await (await this.#agent)?.destroy()
  }

  /** Takes from the job what every attempt needs, and nothing else: the job itself is not kept. */
  #enqueue(job: JobView): void {
    if (job.webhook?.state !== 'pending' || this.#stop.signal.aborted) return
    const delivery: Delivery = {
      jobId: job.id,
      id: messageId(),
      url: job.webhook.url,
      body: completedMessage(job),
      attempts: job.webhook.attempts,
      waiting: false,
      timer: undefined,
    }
    this.#pending.add(delivery)
    // Never inside the store's own call: the first attempt starts on a timer like the retries.
    this.#wait(delivery, 0)
  }

  #wait(delivery: Delivery, ms: number): void {
    // Closed while its attempt was being recorded: nothing waits any more.
    if (this.#stop.signal.aborted) return
    if (this.#waiting >= this.#maxWaiting) this.#giveUpOldest()
    delivery.waiting = true
    this.#waiting += 1
    delivery.timer = setTimeout(() => {
      delivery.timer = undefined
      if (this.#running.size < this.#concurrency) this.#run(delivery)
      else this.#ready.add(delivery)
    }, ms)
    delivery.timer.unref()
  }

  /**
   * Gives up the delivery waiting longest since its job completed (the running ones, at most
   * `concurrency`, are skipped): its webhook ends `failed` with the reason, never left pending.
   */
  #giveUpOldest(): void {
    for (const delivery of this.#pending) {
      if (!delivery.waiting) continue
      clearTimeout(delivery.timer)
      this.#ready.delete(delivery)
      this.#pending.delete(delivery)
      this.#waiting -= 1
      const { attempts } = delivery
      const log = this.#logOf(delivery)
      const lastError = `given up after ${attempts} attempt${attempts === 1 ? '' : 's'}: more than ${this.#maxWaiting} webhook deliveries were waiting`
      log.warn({ attempts, maxWaiting: this.#maxWaiting }, 'webhook given up: too many deliveries waiting')
      void this.#changed(delivery, log, { state: 'failed', attempts, lastError })
      return
    }
  }

  #run(delivery: Delivery): void {
    delivery.waiting = false
    this.#waiting -= 1
    const running = attempt(this.#sender, delivery)
      .then((outcome) => this.#record(delivery, outcome))
      .catch((error: unknown) => this.#logOf(delivery).error({ err: error }, 'webhook delivery crashed'))
      .finally(() => {
        this.#running.delete(running)
        const [next] = this.#ready
        if (next) {
          this.#ready.delete(next)
          this.#run(next)
        }
      })
    this.#running.add(running)
  }

  /** Made when there is something to say, so that a waiting delivery holds no logger. */
  #logOf({ jobId, id }: Delivery): Logger {
    return this.#log.child({ jobId, webhookId: id })
  }

  async #record(delivery: Delivery, outcome: Outcome): Promise<void> {
    if (this.#stop.signal.aborted) return
    const log = this.#logOf(delivery)
    delivery.attempts += 1
    const { attempts } = delivery
    const changed = (update: WebhookUpdate) => this.#changed(delivery, log, update)
    if (outcome.ok) {
      await changed({ state: 'delivered', attempts, lastError: undefined })
      log.info({ attempts, status: outcome.status }, 'webhook delivered')
      this.#settle(delivery)
      return
    }
    const { error } = outcome
    const delay = outcome.final
      ? undefined
      : nextDelay(this.#options.retryDelaysMs, attempts, outcome.retryAfterMs)
    if (delay === undefined) {
      await changed({ state: 'failed', attempts, lastError: error })
      log.warn({ attempts, error }, 'webhook failed')
      this.#settle(delivery)
      return
    }
    await changed({ attempts, lastError: error })
    log.info({ attempts, error, retryInMs: delay }, 'webhook attempt failed; will retry')
    this.#wait(delivery, delay)
  }

  /**
   * What the status shows of the delivery; a store that cannot record it (one that has forgotten
   * the job, or a fleet's Redis out of reach) does not stop it.
   */
  #changed(delivery: Delivery, log: Logger, update: WebhookUpdate): Promise<void> {
    return this.#store
      .webhookChanged(delivery.jobId, update)
      .catch((error: unknown) => log.warn({ err: error }, 'webhook state could not be recorded'))
  }

  #settle(delivery: Delivery): void {
    this.#pending.delete(delivery)
    if (this.#pending.size === 0) this.#wake()
  }

  #wake(): void {
    const idle = this.#idle
    this.#idle = []
    for (const resolve of idle) resolve()
  }
}
