/**
 * Wires the domain together from the configuration: downloader, Imgur client, store and queue.
 * server.ts and the tests share it, so what is tested is what runs.
 */
import type { Logger } from 'pino'
import { Budgets } from './budgets.ts'
import type { Config } from './config.ts'
import { createPreparer } from './convert/prepare.ts'
import { createDownloader, type Downloader, type DownloadOptions } from './download/download.ts'
import { createImgurClient } from './imgur/client.ts'
import { Albums } from './jobs/albums.ts'
import type { JobQueue, JobStore, Work } from './jobs/contract.ts'
import { Scheduler } from './jobs/scheduler.ts'
import { MemoryJobStore } from './jobs/store.ts'
import { Uploads } from './jobs/uploads.ts'
import { processItem, type WorkerDeps } from './jobs/worker.ts'
import { Webhooks } from './webhooks/delivery.ts'

export const USER_AGENT = 'imgur-upload-service/0.1 (+https://github.com/imgur-upload-service)'

export type ServiceOverrides = {
  /** The resolver downloads use (tests inject one to play DNS tricks). */
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
  const fleet =
    config.redisUrl === undefined
      ? undefined
      : await (await import('./fleet/fleet.ts')).joinFleet(config, log)
  const downloader =
    overrides.downloader ??
    createDownloader({
      // Past MAX_IMAGE_BYTES an image is only worth downloading when it may be converted or re-encoded.
      maxBytes:
        config.convertUnsupported || config.reencodeOversized
          ? config.maxDownloadBytes
          : config.maxImageBytes,
      maxVideoBytes: config.maxVideoBytes,
      videoTimeoutMs: config.videoTimeoutMs,
      timeoutMs: config.fetchTimeoutMs,
      maxRedirects: config.maxRedirects,
      allowPrivateNetworks: config.fetchAllowPrivateNetworks,
      userAgent: USER_AGENT,
      ownUrls: config.publicUrl === undefined ? [] : [config.publicUrl],
      ...(overrides.lookup && { lookup: overrides.lookup }),
    })
  // Imgur's budgets: recorded by the client from every answer, reserved by the queue and the album step.
  const memoryBudgets = fleet ? undefined : new Budgets({ maxEntries: config.budgetMaxEntries })
  const budgets = fleet?.budgets ?? (memoryBudgets as Budgets)
  const imgur = createImgurClient({
    apiUrl: config.imgurApiUrl,
    clientId: config.imgurClientId,
    clientSecret: config.imgurClientSecret,
    refreshToken: config.imgurRefreshToken,
    timeoutMs: config.uploadTimeoutMs,
    videoTimeoutMs: config.videoTimeoutMs,
    userAgent: USER_AGENT,
    budgets,
    // The built-in sandbox serves album pages where its links point, which may not be its own address.
    siteUrl: config.imgurMode === 'sandbox' ? config.sandboxPublicUrl : undefined,
  })
  const preparer = createPreparer({
    maxImageBytes: config.maxImageBytes,
    convertUnsupported: config.convertUnsupported,
    reencodeOversized: config.reencodeOversized,
    maxInputPixels: config.maxInputPixels,
    concurrency: config.convertConcurrency,
    timeoutMs: config.convertTimeoutMs,
  })
  const memory = fleet
    ? undefined
    : new MemoryJobStore({
        retentionCount: config.jobRetentionCount,
        retentionMs: config.jobRetentionMs,
        retentionBytes: config.jobRetentionBytes,
      })
  const store: JobStore = fleet?.store ?? (memory as MemoryJobStore)
  const deps: WorkerDeps = {
    downloader,
    imgur,
    preparer,
    uploads: new Uploads(config.dedupMaxEntries),
    ...(fleet && { shared: fleet.uploads }),
    itemTimeoutMs: config.itemTimeoutMs,
    observe: (transfer) => queue.emit('transfer', transfer),
  }
  const retry = {
    maxAttempts: config.retryMaxAttempts,
    baseDelayMs: config.retryBaseDelayMs,
    maxDelayMs: config.retryMaxDelayMs,
    ...(overrides.random && { random: overrides.random }),
  }
  const work: Work = (input, signal, downloaded) => processItem(deps, input, signal, downloaded)
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
    downloader,
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
      await Promise.allSettled([downloader.close(), imgur.close()])
    },
  }
}

export type Service = ReturnType<typeof createService>
