/**
 * The job store of a fleet: jobs live in Redis, so every replica reads and changes the same
 * ones. Each transition is one Lua script (scripts.ts), atomic across replicas; the script says
 * whether this call settled the job, so exactly one replica emits each event.
 *
 * Layout in keys.ts. A complete job's keys expire after `retentionMs` and the oldest finished go
 * past `retentionCount`; pending jobs never expire. `JOB_RETENTION_BYTES` bounds a process's
 * memory and does not apply here: Redis's share is bounded by the count and the age.
 */
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Redis } from 'ioredis'
import { checkRoom, type Room } from '../jobs/admission.ts'
import type { AlbumResult, JobStore, JobView, StoreEvents, StoreStats } from '../jobs/contract.ts'
import {
  itemBytes,
  type Job,
  type JobStatus,
  type Outcome,
  type Reason,
  type Webhook,
} from '../jobs/model.ts'
import { Changes } from './changes.ts'
import {
  albumFields,
  decodeJob,
  encodeItem,
  encodeMeta,
  outcomeFields,
  pairs,
  reasonFields,
  storedPending,
  withUndefined,
} from './codec.ts'
import { keys } from './keys.ts'
import { unavailable, whenReady } from './redis.ts'
import { defineScripts, type RunScript, type ScriptName } from './scripts.ts'

export type RedisStoreOptions = {
  /** Every key starts with `${prefix}:`, so fleets (or tests) can share one Redis. */
  prefix: string
  /** Finished jobs kept at most; the oldest finished go first. */
  retentionCount: number
  /** Finished jobs older than this are forgotten (their keys expire). */
  retentionMs: number
  /**
   * How long an album may take to be made before another replica takes it up (its replica may
   * have stopped): longer than the longest album, budget waits included (ALBUM_LEASE_MS).
   */
  albumLeaseMs?: number
  now?: () => number
}

/** A job's album owed for longer than this is made again by a replica that finds it (see reclaim). */
const ALBUM_LEASE_MS = 30 * 60_000
/** How often each replica looks for albums owed too long; and how many it takes at a time. */
const RECLAIM_EVERY_MS = 60_000
const RECLAIM_BATCH = 10

/** What a transition script answers: what to emit (1 nothing, 2 itemsSettled, 3 complete) and the job then. */
type Snapshot = [string[], string[]]
type Settled = [number, Snapshot?]

export class RedisJobStore extends EventEmitter<StoreEvents> implements JobStore {
  readonly #redis: Redis
  readonly #subscriber: Redis
  readonly #options: RedisStoreOptions
  readonly #keys: ReturnType<typeof keys>
  readonly #now: () => number
  readonly #run: RunScript
  readonly #changes = new Changes(
    (id) => this.get(id),
    (watching) => this.#listen(watching),
  )
  readonly #reconnected = () => void this.#claimEpoch().catch(() => {})
  #epoch = ''
  #reclaiming: NodeJS.Timeout | undefined

  private constructor(redis: Redis, subscriber: Redis, options: RedisStoreOptions) {
    super()
    this.#redis = redis
    this.#subscriber = subscriber
    this.#options = options
    this.#keys = keys(options.prefix)
    this.#now = options.now ?? Date.now
    this.#run = defineScripts(redis)
  }

  /** Opens the store on `redis` (not taken over: `close` leaves it open) and a subscriber of its own. */
  static async open(redis: Redis, options: RedisStoreOptions): Promise<RedisJobStore> {
    for (const key of ['retentionCount', 'retentionMs'] as const) {
      if (!Number.isInteger(options[key]) || options[key] < 1) {
        throw new TypeError(`Expected \`${key}\` to be an integer >= 1, got \`${options[key]}\``)
      }
    }
    if (!/^[\w.:-]{1,64}$/.test(options.prefix)) {
      throw new TypeError(
        `Expected \`prefix\` to be 1 to 64 letters, digits or \`_.:-\`, got \`${options.prefix}\``,
      )
    }
    await whenReady(redis)
    const subscriber = redis.duplicate({ lazyConnect: true })
    // Its connection errors go where the caller's go (emitting 'error' to no listener would throw).
    subscriber.on('error', (error: Error) => {
      if (redis.listenerCount('error') > 0) redis.emit('error', error)
    })
    const store = new RedisJobStore(redis, subscriber, options)
    try {
      await subscriber.connect()
      await store.#claimEpoch()
    } catch (error) {
      subscriber.disconnect()
      throw unavailable(error)
    }
    subscriber.on('message', (_channel: string, message: string) => store.#changes.heard(message))
    // After a reconnection (or a subscription that failed while Redis was away): subscribed
    // again, then what changed meanwhile is read.
    subscriber.on('ready', () => {
      if (store.#changes.watching) store.#listen(true)
    })
    redis.on('ready', store.#reconnected)
    store.#reclaiming = setInterval(() => void store.reclaim().catch(() => {}), RECLAIM_EVERY_MS)
    store.#reclaiming.unref()
    return store
  }

  /**
   * Emits `itemsSettled` again for the jobs whose album has been owed for longer than the lease:
   * the replica that settled their last item stopped (or lost the script's answer) before making
   * it. Only where something makes albums (a listener of `itemsSettled`). Resolves with those jobs.
   */
  async reclaim(): Promise<JobView[]> {
    if (this.listenerCount('itemsSettled') === 0) return []
    const due = (await this.#script('reclaim', '', [
      this.#options.albumLeaseMs ?? ALBUM_LEASE_MS,
      RECLAIM_BATCH,
    ])) as string[]
    const taken: JobView[] = []
    for (const id of due) {
      const job = await this.get(id)
      if (job?.album?.state !== 'pending' || job.items.some((item) => item.state === 'pending')) {
        // Settled meanwhile, or gone: nothing is owed.
        await this.#call(() => this.#redis.zrem(this.#keys.owed, id))
        continue
      }
      taken.push(job)
      this.emit('itemsSettled', job)
    }
    return taken
  }

  /** Names the list of links; shared by every replica, new when Redis lost the list (a restart without persistence). */
  get epoch(): string {
    return this.#epoch
  }

  async add(job: Job, room?: Room): Promise<void> {
    let pendingBytes = 0
    for (const item of job.items) if (item.state === 'pending') pendingBytes += itemBytes(item)
    const meta = encodeMeta(job)
    const limit = (value: number | undefined) => (value === undefined || !Number.isFinite(value) ? '' : value)
    const settled = (await this.#script('add', job.id, [
      pendingBytes,
      job.pending,
      limit(room?.limits.maxPendingItems),
      limit(room?.limits.maxPendingBytes),
      meta.length,
      ...meta,
      ...job.items.map(encodeItem),
    ])) as Settled | [-4, number, number]
    if (settled[0] === -4 && room !== undefined) {
      const [, pendingItems, pendingBytesWaiting] = settled as [-4, number, number]
      checkRoom({ pendingItems, pendingBytes: pendingBytesWaiting }, job.pending, pendingBytes, room)
    }
    this.#announce(job.id, settled as Settled, { [-4]: `job ${job.id} does not fit in the room given` })
  }

  async get(id: string): Promise<JobView | undefined> {
    const [meta, items] = (await this.#script('read', id, [])) as [string[], string[]]
    if (meta.length === 0) return undefined
    return decodeJob(id, pairs(meta), items)
  }

  async links(owner?: string): Promise<readonly string[]> {
    return this.#call(() => this.#redis.lrange(this.#keys.links(owner), 0, -1))
  }

  async counts(): Promise<Record<JobStatus, number>> {
    const { pending, inProgress, complete } = await this.#tally()
    return { pending, 'in-progress': inProgress, complete }
  }

  async stats(): Promise<StoreStats> {
    const { pending, inProgress, complete, pendingItems, pendingBytes } = await this.#tally()
    return { pendingItems, pendingBytes, jobs: pending + inProgress + complete }
  }

  async start(jobId: string, index: number): Promise<number | undefined> {
    const attempt = await this.#script('start', jobId, [index])
    return typeof attempt === 'number' ? attempt : undefined
  }

  async retrying(jobId: string, _index: number): Promise<void> {
    await this.#script('retrying', jobId, [])
  }

  async complete(jobId: string, index: number, outcome: Outcome): Promise<boolean> {
    return this.#settle(jobId, index, 'c', JSON.stringify(outcomeFields(outcome)))
  }

  async fail(jobId: string, index: number, reason: Reason): Promise<boolean> {
    return this.#settle(jobId, index, 'f', JSON.stringify({ r: reasonFields(reason) }))
  }

  async cancel(jobId: string, reason: Reason): Promise<number[]> {
    const settled = (await this.#script('cancel', jobId, [JSON.stringify(reasonFields(reason))])) as Settled
    this.#announce(jobId, settled)
    return settled[1] === undefined ? [] : storedPending(settled[1][1])
  }

  async settleAlbum(jobId: string, result: AlbumResult): Promise<void> {
    const settled = (await this.#script('settleAlbum', jobId, [albumFields(result)])) as Settled
    this.#announce(jobId, settled, {
      [-1]: 'no album is pending',
      [-2]: 'the album waits for every item to settle',
    })
  }

  async webhookChanged(jobId: string, update: Partial<Omit<Webhook, 'url'>>): Promise<void> {
    const changed = (await this.#script('webhookChanged', jobId, [withUndefined(update)])) as Settled
    this.#announce(jobId, changed, { [-1]: 'the job has no webhook' })
  }

  subscribe(id: string, listener: (job: JobView) => void): () => void {
    return this.#changes.subscribe(id, listener)
  }

  async close(): Promise<void> {
    clearInterval(this.#reclaiming)
    this.#changes.clear()
    this.#redis.off('ready', this.#reconnected)
    await this.#subscriber.quit().catch(() => this.#subscriber.disconnect())
  }

  /**
   * Listens to the changes channel while some job is watched (see changes.ts). Once the
   * subscription holds, the watched jobs are read: a change published before it was missed.
   */
  #listen(watching: boolean): void {
    const channel = this.#keys.changed
    if (!watching) {
      this.#subscriber.unsubscribe(channel).catch(() => {})
      return
    }
    this.#subscriber.subscribe(channel).then(
      () => this.#changes.missed(),
      () => {},
    )
  }

  async #settle(jobId: string, index: number, state: 'c' | 'f', fields: string): Promise<boolean> {
    const settled = (await this.#script('settle', jobId, [index, state, fields])) as Settled
    this.#announce(jobId, settled)
    return settled[0] > 0
  }

  /** Emits what the script said this call achieved; refusals throw the model's errors. */
  #announce(id: string, [code, snapshot]: Settled, refusals: Record<number, string> = {}): void {
    if (code < 0) throw new Error(code === -3 ? `job ${id} is not held` : refusals[code])
    if (snapshot === undefined) return
    const job = decodeJob(id, pairs(snapshot[0]), snapshot[1])
    if (code === 2) this.emit('itemsSettled', job)
    if (code === 3) this.emit('complete', job)
  }

  async #tally() {
    const [counters, complete] = (await this.#script('tally', '', [])) as [(string | null)[], number]
    const [pending, inProgress, pendingItems, pendingBytes] = counters.map(Number)
    return {
      pending: pending ?? 0,
      inProgress: inProgress ?? 0,
      complete: Number(complete),
      pendingItems: pendingItems ?? 0,
      pendingBytes: pendingBytes ?? 0,
    }
  }

  /** Set once per prefix (SET NX): every replica shares it, so a cursor made at one works at another. */
  async #claimEpoch(): Promise<void> {
    const proposed = randomUUID()
    const held = await this.#redis.set(this.#keys.epoch, proposed, 'NX', 'GET')
    this.#epoch = held ?? proposed
  }

  #script(name: ScriptName, jobId: string, args: readonly (string | number)[]): Promise<unknown> {
    const { prefix, retentionCount, retentionMs } = this.#options
    return this.#call(() =>
      this.#run(name, [prefix, jobId, this.#now(), retentionCount, retentionMs, ...args]),
    )
  }

  async #call<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work()
    } catch (error) {
      throw unavailable(error)
    }
  }
}
