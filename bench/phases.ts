/**
 * What is measured, phase by phase. Every phase gets fresh image seeds (nothing is cached or
 * de-duplicated anywhere) and frees the sandbox's stored uploads when it is done.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { type Api, createApi } from './api.ts'
import type { Params } from './args.ts'
import {
  cpuMs,
  describeParts,
  describeThreads,
  type Fakes,
  type RssParts,
  readRssParts,
  type ServiceProcess,
  type ThreadCpu,
  threadCpuMs,
  threadCpuPerItem,
} from './processes.ts'
import { forkRawPipeline, type RawPipeline } from './raw.ts'
import { startReference } from './reference.ts'
import { type Figures, median, type Percentiles, percentiles } from './report.ts'

export type Context = {
  params: Params
  fakes: Fakes
  service: ServiceProcess
  api: Api
  raw: RawPipeline
  log: (message: string) => void
}

export type Round = {
  rawMs: number
  serviceMs: number
  peakRss: number
  /** What the round's peak RSS was made of (read at, or within a MiB of, the peak). */
  peakParts: RssParts
  cpuMsPerItem: { raw: number; fakesDuringRaw: number; service: number; fakesDuringService: number }
  /** The service's CPU per item by thread (the rest of its threads spend next to nothing). */
  serviceThreadsMsPerItem: ThreadCpu
}

let nextSeed = 1
function seeds(count: number): number {
  const first = nextSeed
  nextSeed += count
  return first
}

const imageUrl = (fakes: Fakes, seed: number) => `${fakes.origin}/img/${seed}.png`

/**
 * Submits `count` fresh images in jobs of the job size, all at once; resolves when every job is
 * complete. Any failed item makes the figure meaningless, so it fails the benchmark.
 */
async function serviceRun({ params, fakes, api }: Context, count: number) {
  const first = seeds(count)
  const jobs: string[][] = []
  for (let i = 0; i < count; i += params.jobSize) {
    const size = Math.min(params.jobSize, count - i)
    jobs.push(Array.from({ length: size }, (_, k) => imageUrl(fakes, first + i + k)))
  }
  const started = Date.now()
  const ids = (await Promise.all(jobs.map((job) => api.submit(job)))).map((s) => s.jobId)
  const done = await api.waitJobs(ids, 250)
  await fakes.reset()
  if (done.failed > 0)
    throw new Error(`${done.failed} items failed in the service (${done.reasons.join(', ')})`)
  return { ms: done.finished - started, finished: done.finished, jobIds: ids }
}

async function rawRun({ params, fakes, raw }: Context, count: number): Promise<number> {
  const ms = await raw.run(seeds(count), count, params.concurrency)
  await fakes.reset()
  return ms
}

export type Peak = { rss: number; parts: RssParts }

/**
 * Samples VmRSS every 50 ms until the returned function is called; it returns the peak and what
 * it was made of, read from smaps whenever the peak grows by a MiB or more (a read costs ~2 ms).
 */
export function sampleRss(service: ServiceProcess): () => Peak {
  let peak: Peak = { rss: 0, parts: { files: 0, v8Pages: 0, malloc: 0, other: 0 } }
  const take = () => {
    const { rss } = service.memory()
    if (rss < peak.rss + 2 ** 20) {
      if (rss > peak.rss) peak = { ...peak, rss }
      return
    }
    peak = { rss, parts: readRssParts(service.pid) }
  }
  take()
  const timer = setInterval(take, 50)
  return () => {
    clearInterval(timer)
    take()
    return peak
  }
}

export async function steadyRss(service: ServiceProcess): Promise<number> {
  const samples: number[] = []
  for (let i = 0; i < 10; i += 1) {
    samples.push(service.memory().rss)
    await sleep(50)
  }
  return median(samples)
}

/** One job through both pipelines (JIT, connections); the job stays as the status-read target. */
export async function warmUp(ctx: Context): Promise<string> {
  await rawRun(ctx, ctx.params.jobSize)
  const run = await serviceRun(ctx, ctx.params.jobSize)
  return run.jobIds[0] as string
}

export async function statusIdle({ api, params }: Context, jobId: string): Promise<number[]> {
  for (let i = 0; i < 50; i += 1) await api.timedStatus(jobId)
  const samples: number[] = []
  for (let i = 0; i < params.statusReads; i += 1) samples.push(await api.timedStatus(jobId))
  return samples
}

export async function throughput(ctx: Context): Promise<{ figures: Figures['throughput']; rounds: Round[] }> {
  const { params, fakes, service, log } = ctx
  const rounds: Round[] = []
  const perItem = (ms: number) => ms / params.items
  for (let round = 0; round < params.rounds; round += 1) {
    let fakesCpu = cpuMs(fakes.pid)
    const benchCpu = process.cpuUsage()
    const rawMs = await rawRun(ctx, params.items)
    const rawCpu = process.cpuUsage(benchCpu)
    const rawFakesCpu = cpuMs(fakes.pid) - fakesCpu
    const stop = sampleRss(service)
    const serviceCpu = cpuMs(service.pid)
    const threadsBefore = threadCpuMs(service.pid)
    fakesCpu = cpuMs(fakes.pid)
    const run = await serviceRun(ctx, params.items)
    const peak = stop()
    const threads = threadCpuPerItem(threadsBefore, threadCpuMs(service.pid), params.items)
    const cpu = {
      raw: perItem((rawCpu.user + rawCpu.system) / 1000),
      fakesDuringRaw: perItem(rawFakesCpu),
      service: perItem(cpuMs(service.pid) - serviceCpu),
      fakesDuringService: perItem(cpuMs(fakes.pid) - fakesCpu),
    }
    rounds.push({
      rawMs,
      serviceMs: run.ms,
      peakRss: peak.rss,
      peakParts: peak.parts,
      cpuMsPerItem: cpu,
      serviceThreadsMsPerItem: threads,
    })
    log(
      `  round ${round + 1}: raw ${rawMs.toFixed(0)} ms, service ${run.ms} ms, peak RSS ${(peak.rss / 2 ** 20).toFixed(1)} MB ` +
        `(${describeParts(peak.parts)}); ` +
        `CPU ms/item raw ${cpu.raw.toFixed(2)} (fakes ${cpu.fakesDuringRaw.toFixed(2)}), service ${cpu.service.toFixed(2)} (${describeThreads(threads)}; fakes ${cpu.fakesDuringService.toFixed(2)})`,
    )
  }
  const rawMs = Math.min(...rounds.map((r) => r.rawMs))
  const serviceMs = Math.min(...rounds.map((r) => r.serviceMs))
  const cpu = (key: keyof Round['cpuMsPerItem']) => median(rounds.map((r) => r.cpuMsPerItem[key]))
  const highest = rounds.reduce((a, b) => (b.peakRss > a.peakRss ? b : a))
  return {
    rounds,
    figures: {
      items: params.items,
      serviceItemsPerSec: params.items / (serviceMs / 1000),
      rawItemsPerSec: params.items / (rawMs / 1000),
      ratio: rawMs / serviceMs,
      serviceMs,
      rawMs,
      peakRss: highest.peakRss,
      peakParts: highest.peakParts,
      cpuMsPerItem: {
        raw: cpu('raw'),
        fakesDuringRaw: cpu('fakesDuringRaw'),
        service: cpu('service'),
        fakesDuringService: cpu('fakesDuringService'),
      },
    },
  }
}

/**
 * Sequential timed reads, one every `everyMs` (or as soon as the previous one ends if it took
 * longer), for as long as `work` runs; those that started before it ended (`work`'s stamp). Paced,
 * so that a fast server is not read more often, and its reader and itself take no more of the
 * machine than a slow one's.
 */
async function readWhile(
  api: Api,
  jobId: string,
  everyMs: number,
  work: () => Promise<number>,
): Promise<number[]> {
  const samples: Array<{ at: number; ms: number }> = []
  let busy = true
  const reads = (async () => {
    while (busy) {
      const at = Date.now()
      const ms = await api.timedStatus(jobId)
      samples.push({ ms, at })
      if (ms < everyMs) await sleep(everyMs - ms)
    }
  })()
  reads.catch(() => {}) // awaited below; this only keeps an early failure from going unhandled
  const ended = await work().finally(() => {
    busy = false
  })
  await reads
  return samples.filter((s) => s.at <= ended).map((s) => s.ms)
}

const SIDES = ['service', 'reference'] as const

export type StatusRound = {
  service: Percentiles
  reference: Percentiles
  /** Service busy p99 ÷ reference busy p99. */
  p99Ratio: number
  serviceItemsPerSec: number
  rawItemsPerSec: number
  /** CPU time per item of the process doing the work: the service, or the raw pipeline's child. */
  cpuMsPerItem: { service: number; raw: number }
}

/**
 * The status route under full load against a trivial server under the same load: each round, the
 * service processes `items` while its status route is read every `statusEveryMs`, and the raw pipeline (a
 * child process) moves as many items while the reference server (another one) is read by the same
 * code, answering the same bytes. Rounds alternate which goes first; figures are medians of rounds.
 */
export async function statusBusy(
  ctx: Context,
  jobId: string,
  idle: number[],
): Promise<{ figures: Figures['status']; rounds: StatusRound[] }> {
  const { params, fakes, service, api, log } = ctx
  const reference = await startReference(await api.statusBytes(jobId))
  const referenceApi = createApi(reference.url)
  const raw = await forkRawPipeline(fakes.origin, fakes.sandbox)
  try {
    const referenceIdle = await statusIdle({ ...ctx, api: referenceApi }, jobId)
    await rawRun({ ...ctx, raw }, params.jobSize) // the child's JIT and connections
    const rounds: StatusRound[] = []
    for (let round = 0; round < params.rounds; round += 1) {
      const measure = {
        async service() {
          const cpu = cpuMs(service.pid)
          let ms = 0
          const samples = await readWhile(api, jobId, params.statusEveryMs, async () => {
            const run = await serviceRun(ctx, params.items)
            ms = run.ms
            return run.finished
          })
          return { samples, ms, cpu: cpuMs(service.pid) - cpu }
        },
        async reference() {
          const cpu = cpuMs(raw.pid)
          let ms = 0
          const samples = await readWhile(referenceApi, jobId, params.statusEveryMs, async () => {
            ms = await raw.run(seeds(params.items), params.items, params.concurrency)
            const ended = Date.now()
            await fakes.reset()
            return ended
          })
          return { samples, ms, cpu: cpuMs(raw.pid) - cpu }
        },
      }
      const runs: Partial<Record<keyof typeof measure, Awaited<ReturnType<typeof measure.service>>>> = {}
      for (const side of round % 2 === 0 ? SIDES : [...SIDES].reverse()) runs[side] = await measure[side]()
      const { service: s, reference: r } = runs as Required<typeof runs>
      const result: StatusRound = {
        service: percentiles(s.samples),
        reference: percentiles(r.samples),
        p99Ratio: percentiles(s.samples).p99 / percentiles(r.samples).p99,
        serviceItemsPerSec: params.items / (s.ms / 1000),
        rawItemsPerSec: params.items / (r.ms / 1000),
        cpuMsPerItem: { service: s.cpu / params.items, raw: r.cpu / params.items },
      }
      rounds.push(result)
      log(
        `  round ${round + 1}: status p99 service ${result.service.p99.toFixed(2)} ms (${result.service.samples} reads, ${result.serviceItemsPerSec.toFixed(0)} items/s), ` +
          `reference ${result.reference.p99.toFixed(2)} ms (${result.reference.samples} reads, raw ${result.rawItemsPerSec.toFixed(0)} items/s): ratio ${result.p99Ratio.toFixed(2)}`,
      )
    }
    const mid = (pick: (r: StatusRound) => number) => median(rounds.map(pick))
    const busy = (side: 'service' | 'reference'): Percentiles => ({
      samples: rounds.reduce((sum, r) => sum + r[side].samples, 0),
      p50: mid((r) => r[side].p50),
      p90: mid((r) => r[side].p90),
      p99: mid((r) => r[side].p99),
      max: mid((r) => r[side].max),
    })
    return {
      rounds,
      figures: {
        idle: percentiles(idle),
        referenceIdle: percentiles(referenceIdle),
        busy: busy('service'),
        referenceBusy: busy('reference'),
        p99Ratio: mid((r) => r.p99Ratio),
        everyMs: params.statusEveryMs,
        busyItemsPerSec: mid((r) => r.serviceItemsPerSec),
        rawItemsPerSec: mid((r) => r.rawItemsPerSec),
        cpuMsPerItem: { service: mid((r) => r.cpuMsPerItem.service), raw: mid((r) => r.cpuMsPerItem.raw) },
      },
    }
  } finally {
    await Promise.all([raw.close(), reference.close(), referenceApi.close()])
  }
}

export async function withLatency(ctx: Context): Promise<Figures['latency']> {
  const { params, fakes } = ctx
  await fakes.latency(params.latencyMs)
  const rawMs = await rawRun(ctx, params.latencyItems)
  const run = await serviceRun(ctx, params.latencyItems)
  await fakes.latency(0)
  return {
    latencyMs: params.latencyMs,
    items: params.latencyItems,
    serviceItemsPerSec: params.latencyItems / (run.ms / 1000),
    rawItemsPerSec: params.latencyItems / (rawMs / 1000),
    ratio: rawMs / run.ms,
    ceilingItemsPerSec: params.concurrency / (params.latencyMs / 1000),
  }
}

/** Sequential POSTs of jobs whose downloads fail fast (origin 404s); each job ends before the next POST. */
export async function postLatency({ params, fakes, api }: Context): Promise<Figures['post']> {
  const samples: number[] = []
  for (let post = 0; post < params.posts + 2; post += 1) {
    const urls = Array.from({ length: params.postUrls }, (_, i) => `${fakes.origin}/missing/${post}/${i}.png`)
    const { jobId, ms } = await api.submit(urls)
    if (post >= 2) samples.push(ms) // the first two warm the route
    await api.waitJobs([jobId], 50)
  }
  const p = percentiles(samples)
  return { urls: params.postUrls, posts: samples.length, medianMs: p.p50, p90Ms: p.p90, maxMs: p.max }
}

/**
 * RSS before and after `queued` URLs are submitted in jobs of `postUrls`, on a fresh service:
 * they point at an origin path that never answers, so all but `concurrency` of them wait. The
 * warm-up jobs wait the same way (failing ones would churn the heap with logs before `before`).
 * `marginal` is the slope over the second half, where the young generation has settled.
 */
export async function queuedMemory({ params, fakes, service, api }: Context) {
  const urlsOf = (job: number, size: number) =>
    Array.from({ length: size }, (_, i) => `${fakes.origin}/hang/photos/2026/11/${job}-${i}-camera-image.png`)
  for (let job = -2; job < 0; job += 1) await api.submit(urlsOf(job, params.postUrls))
  await sleep(2000)
  const rssBefore = await steadyRss(service)
  const posts: number[] = []
  let rssHalf = Number.NaN
  let half = 0
  for (let job = 0, left = params.queued; left > 0; job += 1) {
    const size = Math.min(params.postUrls, left)
    left -= size
    posts.push((await api.submit(urlsOf(job, size))).ms)
    if (Number.isNaN(rssHalf) && left <= params.queued / 2) {
      half = params.queued - left
      await sleep(1000)
      rssHalf = await steadyRss(service)
    }
  }
  await sleep(2000)
  const rssAfter = await steadyRss(service)
  return {
    queued: params.queued,
    rssBefore,
    rssAfter,
    bytesPerQueuedItem: (rssAfter - rssBefore) / params.queued,
    marginalBytesPerQueuedItem: (rssAfter - rssHalf) / (params.queued - half),
    postMedianMs: median(posts),
    urlLength: urlsOf(0, 1)[0]?.length ?? 0,
  }
}
