/**
 * Wires the domain together from the configuration: the item pipeline (its own thread), the Imgur
 * client of the album step, budgets, store and queue. server.ts and the tests share it, so what
 * is tested is what runs.
 */
import type { Logger } from 'pino'
import { Budgets } from './budgets.ts'
import type { Config } from './config.ts'
import type { Downloader, DownloadOptions } from './download/download.ts'
import { createImgurClient } from './imgur/client.ts'
import { Albums } from './jobs/albums.ts'
import type { JobQueue, JobStore } from './jobs/contract.ts'
import {
  imgurOptions,
  type Pipeline,
  type PipelineLinks,
  pipelineSettings,
  ThreadPipeline,
  USER_AGENT,
} from './jobs/pipeline.ts'
import { Scheduler } from './jobs/scheduler.ts'
import { MemoryJobStore } from './jobs/store.ts'
import { Webhooks } from './webhooks/delivery.ts'

export type ServiceOverrides = {
  /** The resolver downloads use (tests inject one to play DNS tricks). With either seam the pipeline runs inline. */
  lookup?: DownloadOptions['lookup']
  /** A downloader standing in for the network (tests that must not dial anything). */
  downloader?: Downloader
  random?: () => number
  /** One webhook attempt's deadline (15 s by default; tests shrink it). */
  webhookTimeoutMs?: number
  /** The clock of `webhook-timestamp`. */
  webhookNow?: () => number
}

/**
 * The memory mode by default; with REDIS_URL a replica of a fleet (src/fleet/), whose store,
 * budgets, de-duplication and queue are shared through Redis. Everything else is the same.
 */
export async function createService(config: Config, log: Logger, overrides: ServiceOverrides = {}) {
  const settings = pipelineSettings(config)
  const fleet =
    config.redisUrl === undefined
      ? undefined
      : await (await import('./fleet/fleet.ts')).joinFleet(config, log)
  // Imgur's budgets: recorded from every answer, reserved by the queue and the album step.
  const memoryBudgets = fleet ? undefined : new Budgets({ maxEntries: config.budgetMaxEntries })
  const budgets = fleet?.budgets ?? (memoryBudgets as Budgets)
  // The album step's client; uploads have the pipeline's own.
  const imgur = createImgurClient({ ...imgurOptions(settings), budgets })
  const links: PipelineLinks = {
    budgets,
    shared: fleet?.uploads,
    observe: (transfer) => queue.emit('transfer', transfer),
  }
  // A resolver or downloader injected by a test cannot cross into a thread: it runs inline then.
  const pipeline: Pipeline =
    overrides.lookup || overrides.downloader
      ? (await import('./jobs/pipeline-inline.ts')).inlinePipeline(settings, {
          ...links,
          lookup: overrides.lookup,
          downloader: overrides.downloader,
        })
      : new ThreadPipeline(settings, links, {
          maxHeapBytes: config.pipelineMaxHeapBytes,
          onCrash: (error) =>
            log.error({ err: error }, 'the item pipeline thread stopped; its items are retried'),
        })
  const memory = fleet
    ? undefined
    : new MemoryJobStore({
        retentionCount: config.jobRetentionCount,
        retentionMs: config.jobRetentionMs,
        retentionBytes: config.jobRetentionBytes,
      })
  const store: JobStore = fleet?.store ?? (memory as MemoryJobStore)
  const retry = {
    maxAttempts: config.retryMaxAttempts,
    baseDelayMs: config.retryBaseDelayMs,
    maxDelayMs: config.retryMaxDelayMs,
    ...(overrides.random && { random: overrides.random }),
  }
  const { work } = pipeline
  const credentialKey = (clientId: string | undefined) => imgur.credentialKey(clientId)
  const queue: JobQueue = fleet
    ? fleet.queue(work, credentialKey, retry)
    : new Scheduler(
        {
          concurrency: config.uploadConcurrency,
          perHostConcurrency: config.perHostConcurrency,
          maxPendingItems: config.maxPendingItems,
          maxPendingBytes: config.maxPendingBytes,
          maxRateLimitWaitMs: config.maxRateLimitWaitMs,
          retry,
        },
        {
          store: memory as MemoryJobStore,
          budgets: memoryBudgets as Budgets,
          credentialKey,
          work,
          log,
        },
      )
  // Off without a secret: the routes then refuse every webhookUrl.
  const webhooks =
    config.webhookSecret === undefined
      ? undefined
      : new Webhooks(
          {
            secret: config.webhookSecret,
            retryDelaysMs: config.webhookRetryDelaysMs,
            allowPrivateNetworks: config.fetchAllowPrivateNetworks,
            userAgent: USER_AGENT,
            ownUrls: config.publicUrl === undefined ? [] : [config.publicUrl],
            ...(overrides.webhookTimeoutMs !== undefined && { timeoutMs: overrides.webhookTimeoutMs }),
            ...(overrides.webhookNow && { now: overrides.webhookNow }),
            ...(overrides.lookup && { lookup: overrides.lookup }),
          },
          { store, log },
        )

  const albums = new Albums(
    { retry, maxRateLimitWaitMs: config.maxRateLimitWaitMs },
    { store, imgur, budgets, log },
  )

  return {
    store,
    queue,
    /** Idempotency-Keys: a fleet's are shared in Redis; undefined, the app keeps its own. */
    idempotency: fleet?.idempotency,
    budgets,
    albums,
    imgur,
    webhooks,
    /**
     * Stops taking work, lets in-flight items and albums finish for up to `graceMs`, then cancels
     * the rest and releases everything; webhooks still to be delivered are dropped.
     */
    async close(graceMs: number): Promise<void> {
      await Promise.all([queue.close(graceMs), albums.close(graceMs)])
      await webhooks?.close()
      await store.close()
      await fleet?.close()
      await Promise.allSettled([pipeline.close(), imgur.close()])
    },
  }
}

export type Service = ReturnType<typeof createService>
