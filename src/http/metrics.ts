/**
 * Prometheus metrics, one Registry per app so that tests can build many apps in one process.
 * Counters follow the scheduler's events; gauges are read from the store, queue and budgets at
 * scrape time. Label values come from closed sets only (outcomes, error codes, hashed budget keys,
 * API key names from the configuration or `anonymous`; never a key or an address).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { Budgets } from '../budgets.ts'
import type { Config } from '../config.ts'
import type { JobQueue, JobStore, QueueEvents } from '../jobs/contract.ts'
import type { Transfer } from '../jobs/worker.ts'
import { LruMap } from '../lru.ts'
import { keyLabel } from './access.ts'
import type { QuotaEvents, Quotas } from './quotas.ts'

export type MetricsDeps = {
  config: Config
  store: JobStore
  queue: JobQueue
  budgets: Pick<Budgets, 'snapshot'>
  /** None on a fleet's worker replica, which takes no submissions. */
  quotas?: Pick<Quotas, 'on' | 'off'>
}

/** Budget keys grow with the distinct client ids jobs bring: report at most this many. */
export const MAX_BUDGETS = 32
const PREFIX = 'imgur_upload_'
const CODE = /^[a-z][a-z0-9_]{0,63}$/

/** Error codes are a closed set today; anything else is folded so a label can never grow without bound. */
const codeLabel = (code: string | undefined) => (code !== undefined && CODE.test(code) ? code : 'other')

export function createMetrics({ config, store, queue, budgets, quotas }: MetricsDeps) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const registers = [registry]

  const items = new Counter({
    name: `${PREFIX}items_total`,
    help: 'Items settled, by outcome (complete, failed) and failure code',
    labelNames: ['outcome', 'code'],
    registers,
  })
  const attempts = new Counter({ name: `${PREFIX}attempts_total`, help: 'Item attempts started', registers })
  const retries = new Counter({
    name: `${PREFIX}retries_total`,
    help: 'Item attempts that failed and will be retried, by failure code',
    labelNames: ['code'],
    registers,
  })
  const duration = new Histogram({
    name: `${PREFIX}item_duration_seconds`,
    help: 'Time of one attempt (download, check and upload), by result (complete, failed, retry)',
    labelNames: ['result'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers,
  })

  const submissions = new Counter({
    name: `${PREFIX}submissions_total`,
    help: "Submissions accepted, by API key name ('anonymous' without API keys)",
    labelNames: ['key'],
    registers,
  })
  const submittedUrls = new Counter({
    name: `${PREFIX}submitted_urls_total`,
    help: 'URLs in accepted submissions (what DAILY_URL_QUOTA counts), by API key name',
    labelNames: ['key'],
    registers,
  })
  const refusals = new Counter({
    name: `${PREFIX}submissions_refused_total`,
    help: 'Submissions refused by a limit, by API key name and limit (submit_rate, daily_quota)',
    labelNames: ['key', 'limit'],
    registers,
  })
  // Every key name shows from the start, so a rate over a fresh counter is 0, not missing.
  const keys = config.apiKeys.size > 0 ? [...config.apiKeys.keys()] : [keyLabel(undefined)]
  for (const key of keys) {
    submissions.inc({ key }, 0)
    submittedUrls.inc({ key }, 0)
    for (const limit of ['submit_rate', 'daily_quota']) refusals.inc({ key, limit }, 0)
  }

  const transfers = {
    download: {
      seconds: new Histogram({
        name: `${PREFIX}download_duration_seconds`,
        help: 'Time to download one image that arrived whole',
        buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers,
      }),
      bytes: new Counter({
        name: `${PREFIX}downloaded_bytes_total`,
        help: 'Bytes of images downloaded',
        registers,
      }),
    },
    upload: {
      seconds: new Histogram({
        name: `${PREFIX}upload_duration_seconds`,
        help: 'Time of one upload to Imgur that succeeded',
        buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
        registers,
      }),
      bytes: new Counter({
        name: `${PREFIX}uploaded_bytes_total`,
        help: 'Bytes of images uploaded to Imgur',
        registers,
      }),
    },
  }

  new Gauge({
    name: `${PREFIX}jobs`,
    help: 'Jobs held by the store, by status (pending, in-progress, complete)',
    labelNames: ['status'],
    registers,
    async collect() {
      // A store that cannot answer (a fleet's Redis down) leaves the last figures: a scrape still answers.
      const counts = await store.counts().catch(() => undefined)
      for (const [status, count] of Object.entries(counts ?? {})) this.set({ status }, count)
    },
  })
  const gauge = (name: string, help: string, read: () => number | Promise<number | undefined>) =>
    new Gauge({
      name: `${PREFIX}${name}`,
      help,
      registers,
      async collect() {
        const value = await read()
        if (value !== undefined) this.set(value)
      },
    })
  gauge('queue_pending_items', 'Items not yet complete or failed (the queue depth)', async () =>
    store.stats().then(
      (stats) => stats.pendingItems,
      () => undefined,
    ),
  )
  gauge('items_in_flight', 'Items being downloaded or uploaded right now', () => queue.active)
  gauge('workers', 'Items worked on at most at once (UPLOAD_CONCURRENCY)', () => config.uploadConcurrency)
  gauge('accepting', '1 while the service accepts jobs, 0 when full or shutting down', () =>
    queue.accepting ? 1 : 0,
  )

  const budget = (
    name: string,
    help: string,
    pick: (b: { limit: number; remaining: number; resetAt: number }) => number,
  ) =>
    new Gauge({
      name: `${PREFIX}budget_${name}`,
      help: `${help}, by budget key ('ip', or client:/account: and a hash of the client id) and kind (post, client, user)`,
      labelNames: ['key', 'kind'],
      registers,
      collect() {
        this.reset()
        for (const entry of budgets.snapshot().slice(0, MAX_BUDGETS)) {
          for (const kind of ['post', 'client', 'user'] as const) {
            const known = entry[kind]
            if (known) this.set({ key: entry.key, kind }, pick(known))
          }
        }
      },
    })
  budget('remaining', 'Last known Imgur budget remaining', (b) => b.remaining)
  budget('limit', 'Last known Imgur budget size', (b) => b.limit)
  budget('reset_timestamp_seconds', 'When the Imgur budget refills (Unix time)', (b) => b.resetAt / 1000)

  // When each attempt in this process began, by `jobId:index`; bounded, since in a fleet another
  // replica may settle an item this one started.
  const started = new LruMap<string, number>(100_000)
  const elapsed = ({ jobId, index }: { jobId: string; index: number }) => {
    const key = `${jobId}:${index}`
    const since = started.get(key)
    started.delete(key)
    return since === undefined ? undefined : (performance.now() - since) / 1000
  }
  const listeners = {
    transfer: ({ phase, seconds, bytes }: Transfer) => {
      transfers[phase].seconds.observe(seconds)
      transfers[phase].bytes.inc(bytes)
    },
    attempt: ({ jobId, index }: QueueEvents['attempt'][0]) => {
      attempts.inc()
      started.set(`${jobId}:${index}`, performance.now())
    },
    settled: (event: QueueEvents['settled'][0]) => {
      const { outcome, code } = event
      items.inc(outcome === 'complete' ? { outcome } : { outcome, code: codeLabel(code) })
      const seconds = elapsed(event)
      if (seconds !== undefined) duration.observe({ result: outcome }, seconds)
    },
    retry: (event: QueueEvents['retry'][0]) => {
      retries.inc({ code: codeLabel(event.code) })
      const seconds = elapsed(event)
      if (seconds !== undefined) duration.observe({ result: 'retry' }, seconds)
    },
  }
  queue.on('transfer', listeners.transfer)
  queue.on('attempt', listeners.attempt)
  queue.on('settled', listeners.settled)
  queue.on('retry', listeners.retry)
  const onQuotas = {
    admitted: ({ key, urls }: QuotaEvents['admitted'][0]) => {
      submissions.inc({ key })
      submittedUrls.inc({ key }, urls)
    },
    refused: ({ key, limit }: QuotaEvents['refused'][0]) => refusals.inc({ key, limit }),
  }
  quotas?.on('admitted', onQuotas.admitted)
  quotas?.on('refused', onQuotas.refused)

  return {
    registry,
    /** Stops listening to the queue (which may outlive this app) and the quotas. */
    close() {
      queue.off('transfer', listeners.transfer)
      queue.off('attempt', listeners.attempt)
      queue.off('settled', listeners.settled)
      queue.off('retry', listeners.retry)
      quotas?.off('admitted', onQuotas.admitted)
      quotas?.off('refused', onQuotas.refused)
    },
  }
}
