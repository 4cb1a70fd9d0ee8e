/**
 * The item pipeline: the downloader, the preparer, the Imgur client that uploads and the
 * de-duplication table, put together for worker.ts's `processItem` — the `Work` a queue runs.
 *
 * By default it runs in a worker thread of its own (pipeline-thread.ts; `ThreadPipeline` is the
 * main thread's side): hashing, sniffing, multipart framing, conversion glue and the garbage
 * they make stay off the event loop that answers HTTP, collected by a heap of their own. The
 * main thread keeps the store, the queue, the budgets (the thread reports every Imgur answer's
 * rate-limit headers, before the item's outcome) and, in a fleet, Redis (the thread asks through
 * the main thread for the fleet's de-duplication table).
 * `inlinePipeline` (pipeline-inline.ts) runs the same parts in the calling thread: the thread's
 * own, and for tests that inject a resolver or a downloader, which cannot cross into a thread.
 * This module stays light: the main thread never loads the downloader, file-type or sharp.
 */
import { Worker } from 'node:worker_threads'
import type { BudgetLedger, ParsedLimits } from '../budgets.ts'
import type { Config } from '../config.ts'
import type { Downloader, DownloadOptions } from '../download/download.ts'
import { type ErrorCode, isServiceError, ServiceError } from '../errors.ts'
import type { SharedUploads } from '../fleet/uploads.ts'
import type { ImgurClientOptions } from '../imgur/client.ts'
import type { Away, Work } from './contract.ts'
import type { Outcome } from './model.ts'
import type { Known } from './uploads.ts'
import type { Transfer, WorkItem } from './worker.ts'

export const USER_AGENT = 'imgur-upload-service/0.1 (+https://github.com/imgur-upload-service)'

/** What the pipeline reads of the configuration: all it needs, and no secret it does not. */
const SETTINGS = [
  'maxImageBytes',
  'maxDownloadBytes',
  'maxVideoBytes',
  'videoTimeoutMs',
  'convertUnsupported',
  'reencodeOversized',
  'maxInputPixels',
  'convertConcurrency',
  'convertTimeoutMs',
  'fetchTimeoutMs',
  'uploadTimeoutMs',
  'fetchAllowPrivateNetworks',
  'maxRedirects',
  'publicUrl',
  'imgurMode',
  'imgurApiUrl',
  'imgurClientId',
  'imgurClientSecret',
  'imgurRefreshToken',
  'sandboxPublicUrl',
  'dedupMaxEntries',
  'itemTimeoutMs',
] as const satisfies ReadonlyArray<keyof Config>
export type PipelineSettings = Pick<Config, (typeof SETTINGS)[number]>

export const pipelineSettings = (config: Config): PipelineSettings =>
  Object.fromEntries(SETTINGS.map((key) => [key, config[key]])) as PipelineSettings

/** The Imgur client's options but its ledger: the uploads' client and the album step's are alike. */
export function imgurOptions(settings: PipelineSettings): Omit<ImgurClientOptions<BudgetLedger>, 'budgets'> {
  return {
    apiUrl: settings.imgurApiUrl,
    clientId: settings.imgurClientId,
    clientSecret: settings.imgurClientSecret,
    refreshToken: settings.imgurRefreshToken,
    timeoutMs: settings.uploadTimeoutMs,
    videoTimeoutMs: settings.videoTimeoutMs,
    userAgent: USER_AGENT,
    // The built-in sandbox serves album pages where its links point, which may not be its own address.
    siteUrl: settings.imgurMode === 'sandbox' ? settings.sandboxPublicUrl : undefined,
  }
}

/** What the pipeline needs from where it runs. */
export type PipelineLinks = {
  /** Where every Imgur answer's budgets are recorded. */
  budgets: BudgetLedger
  /** The fleet's de-duplication table (absent in memory mode). */
  shared?: Pick<SharedUploads, 'get' | 'set'> | undefined
  /** Told of every finished download and upload (metrics). */
  observe(transfer: Transfer): void
  /** Test seams (inline only): a resolver for the downloads, or a downloader standing in for the network. */
  lookup?: DownloadOptions['lookup']
  downloader?: Downloader
  /** Told once, when the first image needing decoding loads sharp (libvips). */
  onLibvips?(): void
}

export type Pipeline = { work: Work; close(): Promise<void> }

/** An error as it crosses between threads: a ServiceError keeps everything the retry policy reads. */
export type WireError =
  | {
      service: true
      code: ErrorCode
      message: string
      retryable: boolean
      retryAfterMs: number | undefined
      details: Record<string, unknown> | undefined
    }
  | { service: false; name: string; message: string; stack: string | undefined }

export function toWire(error: unknown): WireError {
  if (isServiceError(error)) {
    const { code, message, retryable, retryAfterMs, details } = error
    return { service: true, code, message, retryable, retryAfterMs, details }
  }
  const { name, message, stack } = error instanceof Error ? error : new Error(String(error))
  return { service: false, name, message, stack }
}

export function fromWire(wire: WireError): Error {
  if (wire.service) {
    const { code, message, retryable, retryAfterMs, details } = wire
    return new ServiceError(code, message, { retryable, retryAfterMs, details })
  }
  const error = new Error(wire.message)
  error.name = wire.name
  if (wire.stack !== undefined) error.stack = wire.stack
  return error
}

/** From the main thread to the pipeline's. */
export type ToThread =
  | { type: 'start'; id: number; item: WorkItem }
  | { type: 'abort'; id: number; reason: WireError }
  | { type: 'shared'; call: number; known: Known | undefined; error?: WireError }
  | { type: 'close' }
/** From the pipeline's thread to the main thread; a thread's messages arrive in the order sent (see `outbox`). */
export type FromThread =
  | { type: 'downloaded'; id: number }
  | { type: 'settled'; id: number; outcome: Outcome }
  | { type: 'failed'; id: number; error: WireError }
  | { type: 'transfer'; transfer: Transfer }
  | { type: 'update'; key: string; parsed: ParsedLimits }
  | { type: 'on429'; key: string; retryAfterMs: number | undefined; now: number }
  /** `id`: the item asking, whose transfer slot is lent while Redis answers (see `Away`). */
  | { type: 'sharedGet'; call: number; hash: string; id: number | undefined }
  | { type: 'sharedSet'; hash: string; known: Known }
  | { type: 'libvips' }

export type ThreadOptions = {
  /** The thread ends after this long without an item, giving its memory back; the next item starts another. */
  idleMs?: number
  /** Told when the thread stops unexpectedly (the items it held are retried). */
  onCrash?(error: Error): void
  /** The thread's script: pipeline-thread.ts (tests wrap it to make a thread fail). */
  entry?: URL
  /**
   * The thread's old-generation limit in bytes (PIPELINE_MAX_HEAP_BYTES; V8 counts whole MiB); 0
   * or absent: V8's own. Under 2 GiB V8 also lets the heap grow less between collections (1.3–2
   * times instead of up to 4), so the garbage of the items' bytes is collected sooner. A thread
   * that reaches it is lost like any other.
   */
  maxHeapBytes?: number
}

/**
 * Messages to the other thread, sent together once per turn of the event loop: under load one
 * wake-up of the other thread carries many items' messages, in the order they were sent.
 */
export type Outbox<T> = { send(message: T): void; flush(): void }
export function outbox<T>(post: (batch: T[]) => void): Outbox<T> {
  let batch: T[] = []
  const flush = () => {
    if (batch.length === 0) return
    const sent = batch
    batch = []
    post(sent)
  }
  return {
    send(message) {
      if (batch.length === 0) setImmediate(flush)
      batch.push(message)
    },
    flush,
  }
}

/** A thread and what is sent to it. */
type Link = { thread: Worker; outbox: Outbox<ToThread> }

/** An item the thread holds: where it is answered, and told its download ended. */
type Held = {
  link: Link
  resolve(outcome: Outcome): void
  reject(error: Error): void
  downloaded(): void
  away: Away | undefined
}

const PIPELINE_IDLE_MS = 30_000

/**
 * The main thread's side of a pipeline running in a worker thread: started with the first item,
 * asked to end once idle for `idleMs` (never terminated: a libvips call must not be cut short).
 * A thread that stops while holding items (an uncaught error, out of memory) fails each with
 * `worker_lost`, retryable, and the next item starts a new thread.
 */
export class ThreadPipeline implements Pipeline {
  readonly #settings: PipelineSettings
  readonly #links: PipelineLinks
  #idleMs: number
  readonly #onCrash: (error: Error) => void
  readonly #entry: URL
  readonly #heapMb: number
  #link: Link | undefined
  /** Every thread not yet exited, the ones asked to end included. */
  readonly #exits = new Set<Promise<void>>()
  readonly #held = new Map<number, Held>()
  #ids = 0
  #idle: NodeJS.Timeout | undefined
  #closed = false

  constructor(settings: PipelineSettings, links: PipelineLinks, options: ThreadOptions = {}) {
    this.#settings = settings
    this.#links = links
    this.#idleMs = options.idleMs ?? PIPELINE_IDLE_MS
    this.#onCrash = options.onCrash ?? (() => {})
    this.#entry = options.entry ?? new URL('./pipeline-thread.ts', import.meta.url)
    this.#heapMb = Math.floor((options.maxHeapBytes ?? 0) / 2 ** 20)
  }

  /** Whether a thread runs now (it starts with the first item and ends when idle). */
  get running(): boolean {
    return this.#link !== undefined
  }

  readonly work: Work = (input, signal, downloaded, away) => {
    if (this.#closed) return Promise.reject(new ServiceError('cancelled', 'the pipeline is closed'))
    if (signal.aborted) return Promise.reject(signal.reason)
    clearTimeout(this.#idle)
    const link = this.#start()
    const id = ++this.#ids
    const abort = () => link.outbox.send({ type: 'abort', id, reason: toWire(signal.reason) })
    return new Promise<Outcome>((resolve, reject) => {
      this.#held.set(id, { link, resolve, reject, downloaded, away })
      signal.addEventListener('abort', abort, { once: true })
      const { target, clientId } = input
      link.outbox.send({ type: 'start', id, item: { target, clientId } })
    }).finally(() => {
      signal.removeEventListener('abort', abort)
      this.#held.delete(id)
      if (this.#held.size === 0 && !this.#closed) this.#idleSoon()
    })
  }

  /** Ends the thread once what it holds has settled (the queue has settled or aborted every item by now). */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#idle)
    this.#stop()
    await Promise.all(this.#exits)
  }

  #start(): Link {
    if (this.#link) return this.#link
    // V8's heap flags are the process's: --max-semi-space-size sizes the thread's young generation too.
    const thread = new Worker(this.#entry, {
      workerData: { ...this.#settings, fleet: this.#links.shared !== undefined },
      ...(this.#heapMb > 0 && { resourceLimits: { maxOldGenerationSizeMb: this.#heapMb } }),
    })
    const link: Link = { thread, outbox: outbox((batch) => thread.postMessage(batch)) }
    this.#link = link
    thread.on('message', (batch: FromThread[]) => {
      for (const message of batch) this.#receive(link, message)
    })
    let failure: Error | undefined
    thread.on('error', (error) => {
      failure = error
    })
    const exited = new Promise<void>((resolve) => {
      thread.once('exit', (code) => {
        this.#exits.delete(exited)
        if (this.#link === link) this.#link = undefined
        const lost = [...this.#held.values()].filter((held) => held.link === link)
        if (failure || code !== 0 || lost.length > 0) {
          const error = failure ?? new Error(`the pipeline's thread exited with code ${code}`)
          this.#onCrash(error)
          const reason = new ServiceError(
            'worker_lost',
            `the thread working on this URL stopped unexpectedly (${error.message}); it will be tried again`,
            { retryable: true, cause: error },
          )
          for (const held of lost) {
            held.downloaded()
            held.reject(reason)
          }
        }
        resolve()
      })
    })
    this.#exits.add(exited)
    return link
  }

  /** Asks the thread to end: it does once its items and any conversion still winding down have stopped. */
  #stop(): void {
    this.#link?.outbox.send({ type: 'close' })
    this.#link = undefined
  }

  #idleSoon(): void {
    clearTimeout(this.#idle)
    if (!Number.isFinite(this.#idleMs)) return
    this.#idle = setTimeout(() => this.#stop(), this.#idleMs)
    this.#idle.unref()
  }

  #receive(link: Link, message: FromThread): void {
    const { budgets, shared, observe } = this.#links
    switch (message.type) {
      case 'downloaded':
        this.#held.get(message.id)?.downloaded()
        return
      case 'settled':
        this.#held.get(message.id)?.resolve(message.outcome)
        return
      case 'failed':
        this.#held.get(message.id)?.reject(fromWire(message.error))
        return
      case 'transfer':
        observe(message.transfer)
        return
      case 'update':
        budgets.update(message.key, message.parsed)
        return
      case 'on429':
        budgets.on429(message.key, message.retryAfterMs, message.now)
        return
      case 'sharedGet': {
        const { call, hash, id } = message
        const reply = (answer: ToThread) => link.outbox.send(answer)
        const away: Away = (id !== undefined && this.#held.get(id)?.away) || ((fn) => fn())
        away(() => (shared ? shared.get(hash) : Promise.resolve(undefined))).then(
          (known) => reply({ type: 'shared', call, known }),
          (error: unknown) => reply({ type: 'shared', call, known: undefined, error: toWire(error) }),
        )
        return
      }
      case 'sharedSet':
        shared?.set(message.hash, message.known).catch(() => {})
        return
      case 'libvips':
        // glibc unloads a shared library when the last thread that loaded it ends, while libvips'
        // own threads still run: loaded here too, it stays for the process's life.
        // https://github.com/lovell/sharp/issues/2263
        // Should that fail, threads are kept instead of ended when idle.
        import('sharp').catch(() => {
          this.#idleMs = Number.POSITIVE_INFINITY
        })
        return
    }
  }
}
