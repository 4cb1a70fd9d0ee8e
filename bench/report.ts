/** Figures → targets with pass/fail, a table for people and JSON for the record. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { dirname } from 'node:path'
import type { FootprintRow } from './footprint.ts'
import { describeParts, type RssParts } from './processes.ts'

export type Percentiles = { samples: number; p50: number; p90: number; p99: number; max: number }

export type Figures = {
  throughput?: {
    /** Items per run. */
    items: number
    serviceItemsPerSec: number
    rawItemsPerSec: number
    ratio: number
    serviceMs: number
    rawMs: number
    /** VmRSS sampled every 50 ms during the service's runs. */
    peakRss: number
    /** What that peak was made of. */
    peakParts: RssParts
    /** CPU time per item of each process (medians over the rounds): where the cost is, whatever the machine's load. */
    cpuMsPerItem: { raw: number; fakesDuringRaw: number; service: number; fakesDuringService: number }
  }
  /**
   * Status reads of the service, and of the reference server (bench/reference.ts) while the raw
   * pipeline loads the machine; busy figures are medians over the rounds, `p99Ratio` the median
   * of each round's service p99 ÷ reference p99.
   */
  status?: {
    idle: Percentiles
    referenceIdle: Percentiles
    busy: Percentiles
    referenceBusy: Percentiles
    p99Ratio: number
    /** While busy, a read started every this many ms (or when the previous one ended). */
    everyMs: number
    busyItemsPerSec: number
    rawItemsPerSec: number
    cpuMsPerItem: { service: number; raw: number }
  }
  /** Idle RSS of node, its libraries and the service (bench/footprint.ts). */
  footprint?: FootprintRow[]
  post?: { urls: number; posts: number; medianMs: number; p90Ms: number; maxMs: number }
  memory?: {
    idleRss: number
    /** VmHWM once the throughput phases are over. */
    hwm: number
    queued?: {
      queued: number
      rssBefore: number
      rssAfter: number
      bytesPerQueuedItem: number
      /** The same over the second half of the queue only. */
      marginalBytesPerQueuedItem: number
      postMedianMs: number
      urlLength: number
    }
  }
  conversion?: {
    /** Files per round, and their pixels in all. */
    items: number
    megapixels: number
    convertConcurrency: number
    threadsPerImage: number
    /** Medians over the rounds; `ratio` is sharp alone's time ÷ the service's, per round. */
    serviceMs: number
    directMs: number
    ratio: number
    /** VmRSS sampled every 50 ms during the service's rounds. */
    peakRss: number
    cpuMsPerItem: { service: number; direct: number }
    /** What the service made of the files, and their bytes in and out. */
    outputs: { jpeg: number; png: number; reencoded: number; inBytes: number; outBytes: number }
  }
  /**
   * bench/fleet.ts, run as a phase: items per second of the memory mode, one replica and two on one
   * Redis (medians of its rounds), each mode's CPU time per item, by process kind (medians).
   */
  fleet?: {
    rounds: number
    memoryItemsPerSec: number
    oneItemsPerSec: number
    twoItemsPerSec: number
    ratioOne: number
    ratioTwo: number
    cpuMsPerItem: Record<'memory' | 'one' | 'two', { service: number; redis: number; fakes: number }>
    redisCommandsPerItem: number
  }
  latency?: {
    latencyMs: number
    items: number
    serviceItemsPerSec: number
    rawItemsPerSec: number
    ratio: number
    /** concurrency ÷ latency: the most any pipeline can do when every upload waits that long. */
    ceilingItemsPerSec: number
  }
}

export type Target = { name: string; value: number | undefined; limit: string; pass: boolean | undefined }

export function percentiles(samples: number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN
  return {
    samples: sorted.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: sorted.at(-1) ?? Number.NaN,
  }
}

export function median(samples: number[]): number {
  return percentiles(samples).p50
}

export function machine() {
  const cpu = cpus()
  return {
    cpuModel: cpu[0]?.model ?? 'unknown',
    cpuCount: cpu.length,
    totalMemoryBytes: totalmem(),
    node: process.version,
    os: `${process.platform} ${release()}`,
    loadAverage: loadavg().map((n) => Number(n.toFixed(2))),
  }
}

const MB = 1024 * 1024

export function targets(f: Figures): Target[] {
  const check = (name: string, value: number | undefined, limit: string, ok: (v: number) => boolean) => ({
    name,
    value,
    limit,
    pass: value === undefined || Number.isNaN(value) ? undefined : ok(value),
  })
  return [
    check('throughput ratio service/raw', f.throughput?.ratio, '>= 0.9', (v) => v >= 0.9),
    check('busy status p99 service/reference', f.status?.p99Ratio, '<= 1.5', (v) => v <= 1.5),
    check(
      `peak RSS MB, ${f.throughput?.items ?? 2000}-item runs`,
      f.throughput && f.throughput.peakRss / MB,
      '<= 150',
      (v) => v <= 150,
    ),
    check('idle RSS MB', f.memory && f.memory.idleRss / MB, '<= 90', (v) => v <= 90),
    check('conversion ratio sharp alone/service', f.conversion?.ratio, '>= 0.8', (v) => v >= 0.8),
    check(`${f.post?.urls ?? 1000}-URL POST median ms`, f.post?.medianMs, '<= 20', (v) => v <= 20),
    check('RSS bytes per queued item', f.memory?.queued?.bytesPerQueuedItem, '<= 1024', (v) => v <= 1024),
    check('fleet: 1 replica / memory mode', f.fleet?.ratioOne, '>= 0.7', (v) => v >= 0.7),
  ]
}

const fixed = (n: number | undefined, digits = 1) =>
  n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits)
const mb = (n: number | undefined) => (n === undefined ? '—' : `${(n / MB).toFixed(1)} MB`)
const ms = (p: Percentiles) =>
  `${fixed(p.p50, 2)} / ${fixed(p.p99, 2)} / ${fixed(p.max, 2)} ms (${p.samples})`

function rows(f: Figures): Array<[string, string]> {
  const out: Array<[string, string]> = []
  const { throughput: t, status: s, post: p, memory: m, latency: l, conversion: c } = f
  if (t) {
    const cpu = t.cpuMsPerItem
    out.push(
      ['throughput: service', `${fixed(t.serviceItemsPerSec)} items/s (${fixed(t.serviceMs / 1000, 2)} s)`],
      ['throughput: raw pipeline', `${fixed(t.rawItemsPerSec)} items/s (${fixed(t.rawMs / 1000, 2)} s)`],
      ['throughput: ratio service/raw', fixed(t.ratio, 3)],
      [
        '  CPU ms/item: service / raw loop',
        `${fixed(cpu.service, 2)} / ${fixed(cpu.raw, 2)} (fakes meanwhile ${fixed(cpu.fakesDuringService, 2)} / ${fixed(cpu.fakesDuringRaw, 2)})`,
      ],
    )
  }
  if (s) {
    out.push(
      ['status read idle p50 / p99 / max', ms(s.idle)],
      ['  reference server idle', ms(s.referenceIdle)],
      [`status read busy, one per ${s.everyMs} ms, p50 / p99 / max`, ms(s.busy)],
      ['  reference server, raw pipeline running', ms(s.referenceBusy)],
      ['  busy p99 service / reference', `${fixed(s.p99Ratio, 2)} × (medians of rounds)`],
      [
        '  items/s meanwhile: service / raw',
        `${fixed(s.busyItemsPerSec)} / ${fixed(s.rawItemsPerSec)} (ratio ${fixed(s.busyItemsPerSec / s.rawItemsPerSec, 2)})`,
      ],
      [
        '  CPU ms/item: service / raw child',
        `${fixed(s.cpuMsPerItem.service, 2)} / ${fixed(s.cpuMsPerItem.raw, 2)}`,
      ],
    )
  }
  if (p) {
    out.push([
      `POST ${p.urls} URLs p50 / p90 / max`,
      `${fixed(p.medianMs, 2)} / ${fixed(p.p90Ms, 2)} / ${fixed(p.maxMs, 2)} ms (${p.posts})`,
    ])
  }
  if (m) out.push(['RSS idle', mb(m.idleRss)])
  if (t) out.push(['RSS peak during throughput runs', mb(t.peakRss)])
  if (t) out.push(['  made of', describeParts(t.peakParts)])
  if (m) out.push(['VmHWM after the throughput phases', mb(m.hwm)])
  const q = m?.queued
  if (q) {
    out.push(
      [`RSS before / after ${q.queued} queued`, `${mb(q.rssBefore)} / ${mb(q.rssAfter)}`],
      [
        'RSS per queued item (second half only)',
        `${fixed(q.bytesPerQueuedItem, 0)} (${fixed(q.marginalBytesPerQueuedItem, 0)}) bytes, URLs of ${q.urlLength} chars`,
      ],
      ['  POST median while filling the queue', `${fixed(q.postMedianMs, 2)} ms`],
    )
  }
  if (c) {
    const o = c.outputs
    out.push(
      [
        `conversion: ${c.items} files, ${fixed(c.megapixels, 0)} MP`,
        `service ${fixed(c.serviceMs / 1000, 2)} s, sharp alone ${fixed(c.directMs / 1000, 2)} s (medians)`,
      ],
      ['conversion: ratio sharp alone/service', fixed(c.ratio, 3)],
      [
        '  slots × threads; CPU ms/item service / alone',
        `${c.convertConcurrency} × ${c.threadsPerImage}; ${fixed(c.cpuMsPerItem.service, 0)} / ${fixed(c.cpuMsPerItem.direct, 0)}`,
      ],
      [
        '  outputs; bytes in → out',
        `${o.jpeg} JPEG, ${o.png} PNG, ${o.reencoded} re-encoded; ${mb(o.inBytes)} → ${mb(o.outBytes)}`,
      ],
      ['  RSS peak during conversion', mb(c.peakRss)],
    )
  }
  const fl = f.fleet
  if (fl) {
    const cpu = (mode: keyof typeof fl.cpuMsPerItem) =>
      `${fixed(fl.cpuMsPerItem[mode].service, 2)}, ${fixed(fl.cpuMsPerItem[mode].redis, 2)}, ${fixed(fl.cpuMsPerItem[mode].fakes, 2)}`
    out.push(
      [
        'fleet: memory / 1 replica / 2 replicas',
        `${fixed(fl.memoryItemsPerSec)} / ${fixed(fl.oneItemsPerSec)} / ${fixed(fl.twoItemsPerSec)} items/s (medians of ${fl.rounds})`,
      ],
      ['  ratio to the memory mode: 1 / 2 replicas', `${fixed(fl.ratioOne, 2)} / ${fixed(fl.ratioTwo, 2)}`],
      ['  CPU ms/item service, Redis, fakes: memory', cpu('memory')],
      ['  … 1 replica; 2 replicas', `${cpu('one')}; ${cpu('two')}`],
      ['  Redis commands per item (1 replica)', fixed(fl.redisCommandsPerItem)],
    )
  }
  for (const row of f.footprint ?? []) {
    out.push([`idle RSS: ${row.name}`, `${mb(row.rss)} (anonymous ${mb(row.anon)}, files ${mb(row.file)})`])
  }
  if (l) {
    out.push(
      [
        `${l.latencyMs} ms upload latency: service / raw`,
        `${fixed(l.serviceItemsPerSec)} / ${fixed(l.rawItemsPerSec)} items/s`,
      ],
      [
        '  ratio; ceiling concurrency÷latency',
        `${fixed(l.ratio, 3)}; ${fixed(l.ceilingItemsPerSec)} items/s`,
      ],
    )
  }
  return out
}

export function table(params: Record<string, unknown>, f: Figures, checks: Target[]): string {
  const figures = rows(f)
  const width = Math.max(...figures.map(([name]) => name.length), ...checks.map((c) => c.name.length)) + 2
  const result = (c: Target) => (c.pass === undefined ? 'not run' : c.pass ? '✔' : '✘')
  return [
    `parameters: ${Object.entries(params)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    '',
    ...figures.map(([name, value]) => `${name.padEnd(width)}${value}`),
    '',
    `${'target'.padEnd(width)}${'value'.padEnd(12)}${'limit'.padEnd(10)}result`,
    ...checks.map(
      (c) => `${c.name.padEnd(width)}${fixed(c.value, 2).padEnd(12)}${c.limit.padEnd(10)}${result(c)}`,
    ),
  ].join('\n')
}

export function writeJson(file: string, document: unknown): void {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, `${JSON.stringify(document, null, 2)}\n`)
}

type ProbeLine = { rss: number; loopDelayMs: { p99: number; max: number }; gc: { ms: number; maxMs: number } }

/** bench/probe.ts's lines from each service log: the line at peak RSS and the worst loop delays and GC pauses. */
export function summariseProbe(logs: Record<string, string>) {
  const out: Record<string, { summary: Record<string, unknown>; lines: ProbeLine[] }> = {}
  for (const [name, file] of Object.entries(logs)) {
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.includes('"bench-probe"'))
      .map((line) => JSON.parse(line) as ProbeLine)
    if (lines.length === 0) continue
    out[name] = {
      summary: {
        atPeakRss: lines.reduce((a, b) => (b.rss > a.rss ? b : a)),
        worstLoopDelayP99Ms: Math.max(...lines.map((l) => l.loopDelayMs.p99)),
        worstLoopDelayMaxMs: Math.max(...lines.map((l) => l.loopDelayMs.max)),
        longestGcMs: Math.max(...lines.map((l) => l.gc.maxMs)),
        gcMsTotal: Math.round(lines.reduce((sum, l) => sum + l.gc.ms, 0)),
      },
      lines,
    }
  }
  return out
}
