/**
 * Sends each complete job's `job.completed` message to its webhook URL: signed, retried on a
 * schedule, through connections guarded exactly as downloads are (same lookup, same address
 * rules). Delivery facts: /work/shared/notes/integrations.md, "Standard Webhooks".
 */
import type { Logger } from 'pino'
import { type Agent, request } from 'undici'
import { checkHost, checkUrl, isBlockedAddress, originOf } from '../download/address.ts'
import { type AddressPolicy, createAgent, osLookup, type Resolve } from '../download/connect.ts'
import { isServiceError } from '../errors.ts'
import type { JobStore, JobView } from '../jobs/contract.ts'
import { formatDuration } from '../units.ts'
import { completedMessage, messageId, signature, signingKey } from './message.ts'
import { describe, judge, nextDelay, type Outcome } from './outcome.ts'

export type WebhookOptions = {
  /** `whsec_<base64>`: the key of every signature. */
  secret: string
  /** Waits before each retry; once they are spent, the delivery has failed. */
  retryDelaysMs: readonly number[]
  /** Deadline of one attempt, from connecting to the end of the answer (the spec asks for 15–30 s). */
  timeoutMs?: number
  /** Attempts running at once; others wait their turn. */
  concurrency?: number
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

type Delivery = {
  readonly job: JobView
  readonly id: string
  /** Attempts made so far (a fleet's view of the job is a snapshot: the count is kept here). */
  attempts: number
  readonly body: string
  readonly log: Logger
  timer: NodeJS.Timeout | undefined
}

const DISCARD_LIMIT = 64 * 1024

function checkOptions(o: WebhookOptions): void {
  for (const [name, value] of [
    ['timeoutMs', o.timeoutMs],
    ['concurrency', o.concurrency],
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
  readonly #key: Buffer
  readonly #store: JobStore
  readonly #log: Logger
  readonly #policy: AddressPolicy
  readonly #agent: Agent
  readonly #ownOrigins: Set<string>
  readonly #timeoutMs: number
  readonly #concurrency: number
  readonly #now: () => number
  /** Deliveries neither delivered nor failed: waiting, queued or running. */
  readonly #pending = new Set<Delivery>()
  /** Due, waiting for a free slot. */
  readonly #ready: Delivery[] = []
  readonly #running = new Set<Promise<void>>()
  readonly #stop = new AbortController()
  #idle: Array<() => void> = []
  #closing: Promise<void> | undefined
  readonly #onComplete = (job: JobView) => this.#enqueue(job)

  constructor(options: WebhookOptions, { store, log }: { store: JobStore; log: Logger }) {
    checkOptions(options)
    this.#options = options
    this.#key = signingKey(options.secret)
    this.#store = store
    this.#log = log
    this.#timeoutMs = options.timeoutMs ?? 15_000
    this.#concurrency = options.concurrency ?? 16
    this.#now = options.now ?? Date.now
    this.#policy = {
      allowPrivate: options.allowPrivateNetworks,
      isBlocked: options.isBlocked ?? isBlockedAddress,
    }
    this.#agent = createAgent(options.lookup ?? osLookup, this.#policy, this.#timeoutMs)
    this.#ownOrigins = new Set(options.ownUrls?.map((own) => originOf(new URL(own))))
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
    this.#ready.length = 0
    this.#wake()
    await Promise.allSettled(this.#running)
    await this.#agent.destroy()
  }

  #enqueue(job: JobView): void {
    if (job.webhook?.state !== 'pending' || this.#stop.signal.aborted) return
    const id = messageId()
    const delivery: Delivery = {
      job,
      id,
      attempts: job.webhook.attempts,
      body: completedMessage(job),
      log: this.#log.child({ jobId: job.id, webhookId: id }),
      timer: undefined,
    }
    this.#pending.add(delivery)
    // Never inside the store's own call: the first attempt starts on a timer like the retries.
    this.#wait(delivery, 0)
  }

  #wait(delivery: Delivery, ms: number): void {
    delivery.timer = setTimeout(() => {
      delivery.timer = undefined
      if (this.#running.size < this.#concurrency) this.#run(delivery)
      else this.#ready.push(delivery)
    }, ms)
    delivery.timer.unref()
  }

  #run(delivery: Delivery): void {
    const running = this.#attempt(delivery)
      .then((outcome) => this.#record(delivery, outcome))
      .catch((error: unknown) => delivery.log.error({ err: error }, 'webhook delivery crashed'))
      .finally(() => {
        this.#running.delete(running)
        const next = this.#ready.shift()
        if (next) this.#run(next)
      })
    this.#running.add(running)
  }

  async #attempt({ job, id, body }: Delivery): Promise<Outcome> {
    const url = URL.parse(job.webhook?.url ?? '')
    if (url === null) return { ok: false, final: true, error: 'webhookUrl is not a valid URL' }
    try {
      checkUrl(url, 'download_bad_url')
      if (this.#ownOrigins.has(originOf(url))) {
        return { ok: false, final: true, error: 'blocked: the URL points at this service itself' }
      }
      checkHost(url, this.#policy.allowPrivate, this.#policy.isBlocked)
    } catch (error) {
      return { ok: false, final: true, error: describe(error, this.#timeoutMs) }
    }
    const timestamp = Math.floor(this.#now() / 1000)
    const deadline = new AbortController()
    const timer = setTimeout(() => deadline.abort(), this.#timeoutMs)
    timer.unref()
    try {
      const response = await request(url, {
        dispatcher: this.#agent,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': this.#options.userAgent,
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signature(this.#key, id, timestamp, body),
        },
        body,
        signal: AbortSignal.any([deadline.signal, this.#stop.signal]),
      })
      // Read (within the deadline) so the connection can be reused; what it says does not matter.
      await response.body.dump({ limit: DISCARD_LIMIT }).catch(() => {})
      return judge(response.statusCode, response.headers)
    } catch (error) {
      const timedOut = deadline.signal.aborted && !this.#stop.signal.aborted
      if (timedOut)
        return { ok: false, final: false, error: `no answer within ${formatDuration(this.#timeoutMs)}` }
      const blocked = isServiceError(error) && error.code === 'download_blocked'
      return { ok: false, final: blocked, error: describe(error, this.#timeoutMs) }
    } finally {
      clearTimeout(timer)
    }
  }

  async #record(delivery: Delivery, outcome: Outcome): Promise<void> {
    const { job, log } = delivery
    if (this.#stop.signal.aborted || job.webhook === undefined) return
    delivery.attempts += 1
    const { attempts } = delivery
    // What the status shows of the delivery; a store that cannot record it does not stop it.
    const changed = (update: Parameters<JobStore['webhookChanged']>[1]) =>
      this.#store
        .webhookChanged(job.id, update)
        .catch((error: unknown) => log.warn({ err: error }, 'webhook state could not be recorded'))
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
