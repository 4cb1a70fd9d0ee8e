/**
 * The album step: once every item of a job that asked for an album has settled, makes an Imgur
 * album of its uploaded images in submission order, with the credential, retry policy and
 * rate-limit budgets its uploads used, and records the outcome through the store. Every album it
 * is told of gets settled — made, failed, or cancelled by shutdown — so no job waits forever.
 */
import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { Reservation } from '../budgets.ts'
import { isServiceError, ServiceError } from '../errors.ts'
import type { CreatedAlbum, ImgurClient } from '../imgur/client.ts'
import type { JobStore, JobView } from './contract.ts'
import type { Reason } from './model.ts'
import { type RetryPolicy, retryDelay } from './retry.ts'

export type AlbumOptions = {
  retry: RetryPolicy
  /** A budget reset or a retry wait longer than this fails the album instead of waiting. */
  maxRateLimitWaitMs: number
  now?: () => number
}

export type AlbumDeps = {
  store: JobStore
  imgur: Pick<ImgurClient, 'createAlbum' | 'usesAccount' | 'credentialKey'>
  /** Imgur's budgets (a fleet's reservations are made in Redis, hence maybe a promise). */
  budgets: { reserve(key: string, now: number): Reservation | Promise<Reservation> }
  log: Logger
}

export type AlbumEvents = {
  attempt: [{ job: JobView; attempt: number }]
  retry: [{ job: JobView; attempt: number; code: string; delayMs: number }]
  settled: [{ job: JobView; outcome: 'complete' | 'failed'; code?: string }]
  idle: []
}

type Result = CreatedAlbum | { reason: Reason }

const CANCELLED: Reason = { code: 'cancelled', message: 'the service shut down before the album was made' }
const EMPTY: Reason = {
  code: 'album_empty',
  message: 'no URL of the job was uploaded, so there was no image to make an album of',
}
const INTERNAL: Reason = {
  code: 'internal_error',
  message: 'an unexpected error occurred while making the album',
}

export class Albums extends EventEmitter<AlbumEvents> {
  readonly #options: AlbumOptions
  readonly #deps: AlbumDeps
  readonly #now: () => number
  readonly #running = new Set<Promise<void>>()
  readonly #shutdown = new AbortController()

  constructor(options: AlbumOptions, deps: AlbumDeps) {
    super()
    if (!Number.isSafeInteger(options.maxRateLimitWaitMs) || options.maxRateLimitWaitMs < 0) {
      throw new TypeError(
        `Expected \`maxRateLimitWaitMs\` to be an integer >= 0, got \`${options.maxRateLimitWaitMs}\``,
      )
    }
    this.#options = options
    this.#deps = deps
    this.#now = options.now ?? Date.now
    deps.store.on('itemsSettled', (job) => this.#start(job))
  }

  /** Albums being made (or waiting for a retry or a budget) right now. */
  get active(): number {
    return this.#running.size
  }

  /** Resolves when no album is being made. */
  onIdle(): Promise<void> {
    if (this.#running.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.once('idle', resolve))
  }

  /**
   * Lets albums being made finish for up to `graceMs`, then cancels the rest (each settles failed,
   * `cancelled`); a job whose items settle after that gets its album cancelled at once.
   */
  async close(graceMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise((resolve) => {
      timer = setTimeout(resolve, graceMs)
    })
    await Promise.race([this.onIdle(), grace])
    clearTimeout(timer)
    this.#shutdown.abort(new ServiceError('cancelled', CANCELLED.message))
    await this.onIdle()
  }

  #start(job: JobView): void {
    const running = (
      this.#shutdown.signal.aborted ? this.#settle(job, { reason: CANCELLED }) : this.#make(job)
    )
      .catch(async (error: unknown) => {
        this.#deps.log.error({ err: error, jobId: job.id }, 'album error')
        await this.#settle(job, { reason: INTERNAL })
      })
      .finally(() => {
        this.#running.delete(running)
        if (this.#running.size === 0) this.emit('idle')
      })
    this.#running.add(running)
  }

  async #make(job: JobView): Promise<void> {
    const { imgur } = this.#deps
    const signal = this.#shutdown.signal
    const account = imgur.usesAccount(job.clientId)
    const members = membersOf(job, account)
    if (members.length === 0) return this.#settle(job, { reason: EMPTY })
    const key = imgur.credentialKey(job.clientId)
    const input = {
      title: job.album?.title,
      description: job.album?.description,
      ...(account ? { ids: members } : { deletehashes: members }),
      clientId: job.clientId,
      signal,
    }
    for (let attempt = 1; ; attempt += 1) {
      let delayMs: number
      let code: string
      try {
        const release = await this.#reserve(key, signal)
        this.emit('attempt', { job, attempt })
        try {
          return this.#settle(job, await imgur.createAlbum(input))
        } finally {
          release()
        }
      } catch (error) {
        if (signal.aborted) return this.#settle(job, { reason: CANCELLED })
        if (!isServiceError(error)) throw error
        const reason = { code: error.code, message: error.message }
        const delay = retryDelay(this.#options.retry, error, attempt)
        if (delay === undefined) return this.#settle(job, { reason })
        if (delay > this.#options.maxRateLimitWaitMs) {
          const resetAt = new Date(this.#now() + delay).toISOString()
          const message = `${reason.message}; Imgur's budget resets at ${resetAt}, later than this service waits`
          return this.#settle(job, { reason: { code: reason.code, message } })
        }
        delayMs = delay
        code = reason.code
      }
      this.#deps.log.info({ jobId: job.id, code, attempt, delayMs }, 'album will be retried')
      this.emit('retry', { job, attempt, code, delayMs })
      try {
        await sleep(delayMs, undefined, { signal, ref: false })
      } catch {
        return this.#settle(job, { reason: CANCELLED })
      }
    }
  }

  /** Takes a place in the credential's budget, waiting for its reset when that is soon enough. */
  async #reserve(key: string, signal: AbortSignal): Promise<() => void> {
    for (;;) {
      const budget = await this.#deps.budgets.reserve(key, this.#now())
      if (budget.ok) return budget.release
      if (budget.waitMs > this.#options.maxRateLimitWaitMs) {
        throw new ServiceError(
          'imgur_rate_limited',
          `Imgur's budget for this client id is spent until ${new Date(budget.resetAt).toISOString()}; the album was not made`,
        )
      }
      await sleep(Math.max(budget.waitMs, 1), undefined, { signal, ref: false })
    }
  }

  async #settle(job: JobView, result: Result): Promise<void> {
    if (job.album?.state !== 'pending') return
    const log = this.#deps.log.child({ jobId: job.id })
    try {
      await this.#deps.store.settleAlbum(job.id, result)
    } catch (error) {
      log.error({ err: error }, 'album could not be recorded')
    }
    if ('reason' in result) {
      log.warn({ code: result.reason.code, reason: result.reason.message }, 'album failed')
      this.emit('settled', { job, outcome: 'failed', code: result.reason.code })
    } else {
      log.info({ link: result.link }, 'album complete')
      this.emit('settled', { job, outcome: 'complete' })
    }
  }
}

/**
 * What names each uploaded image in the album, in submission order: its image id in account mode,
 * else its deletehash. A link reused by several items is one image, listed once where it first
 * appears.
 */
function membersOf(job: JobView, account: boolean): string[] {
  const members = new Set<string>()
  for (const item of job.items) {
    if (item.state !== 'complete') continue
    const member = account ? item.imageId : item.deletehash
    if (member !== undefined) members.add(member)
  }
  return [...members]
}
