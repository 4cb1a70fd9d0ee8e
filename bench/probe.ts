/**
 * Diagnostics preloaded into the service when a target is missed: `npm run bench -- --probe 1`
 * (stripped to .js first when the service runs as the image does, so it loads no type stripper).
 * Every second it writes one `bench-probe` JSON line to stderr (the service log): memory by kind
 * (heap spaces, external, ArrayBuffers, anonymous vs file-backed RSS), event-loop delay and GC
 * pauses since the previous line. It only observes; it never forces a GC.
 */
import { readFileSync } from 'node:fs'
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'
import { getHeapSpaceStatistics } from 'node:v8'

const MB = 2 ** 20
const round = (n: number) => Math.round(n * 10) / 10
const delay = monitorEventLoopDelay({ resolution: 5 })
delay.enable()

const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
}
const fresh = () => ({ count: 0, ms: 0, maxMs: 0, maxMsByKind: {} as Record<string, number> })
let gc = fresh()
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const { detail } = entry as { detail?: { kind?: number } }
    const kind = KINDS[detail?.kind ?? -1] ?? 'other'
    gc.count += 1
    gc.ms += entry.duration
    gc.maxMs = Math.max(gc.maxMs, entry.duration)
    gc.maxMsByKind[kind] = round(Math.max(gc.maxMsByKind[kind] ?? 0, entry.duration))
  }
}).observe({ entryTypes: ['gc'] })

function statusKb(status: string, name: string): number {
  return Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) / 1024
}

const timer = setInterval(() => {
  const memory = process.memoryUsage()
  const status = readFileSync('/proc/self/status', 'utf8')
  const spaces = Object.fromEntries(
    getHeapSpaceStatistics()
      .filter((space) => space.space_size > 0)
      .map((space) => [space.space_name, round(space.space_size / MB)]),
  )
  const line = {
    probe: 'bench-probe',
    rss: round(memory.rss / MB),
    rssAnon: round(statusKb(status, 'RssAnon')),
    rssFile: round(statusKb(status, 'RssFile')),
    heapTotal: round(memory.heapTotal / MB),
    heapUsed: round(memory.heapUsed / MB),
    external: round(memory.external / MB),
    arrayBuffers: round(memory.arrayBuffers / MB),
    spaces,
    loopDelayMs: {
      p50: round(delay.percentile(50) / 1e6),
      p99: round(delay.percentile(99) / 1e6),
      max: round(delay.max / 1e6),
    },
    gc: { ...gc, ms: round(gc.ms), maxMs: round(gc.maxMs) },
  }
  delay.reset()
  gc = fresh()
  process.stderr.write(`${JSON.stringify(line)}\n`)
}, 1000)
timer.unref()
