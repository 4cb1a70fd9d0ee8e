/** The benchmark's command line: every option with its default, checked with exact messages. */
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'

export const PHASES = [
  'throughput',
  'status',
  'latency',
  'post',
  'conversion',
  'memory',
  'footprint',
  'fleet',
] as const
export type Phase = (typeof PHASES)[number]

const OPTIONS = {
  items: ['2000', 'images per throughput run'],
  'job-size': ['100', 'URLs per job in the throughput runs'],
  concurrency: ['8', 'UPLOAD_CONCURRENCY and PER_HOST_CONCURRENCY of the service; workers of the raw loop'],
  'image-kb': ['100', 'size of every fake image in KiB'],
  rounds: [
    '3',
    'raw + service throughput rounds, the best of each kept; conversion rounds, the medians kept',
  ],
  'status-reads': ['500', 'sequential status reads while idle'],
  'status-every-ms': [
    '2',
    'while busy, a status read starts every this many ms (or when the previous one ends)',
  ],
  posts: ['20', 'POSTs timed for the POST latency'],
  'post-urls': ['1000', 'URLs per timed POST (and per queued job)'],
  queued: ['100000', 'URLs left waiting for the memory-per-queued-item figure'],
  'latency-ms': ['100', 'sandbox upload latency of the latency phase'],
  'latency-items': ['', 'images per latency run (default: --items)'],
  photos: [
    '10',
    'conversion phase: 4096 × 4096 lossy WebP photographs (plus a quarter as many AVIF, a HEIC, 3 graphics)',
  ],
  'convert-concurrency': [
    '2',
    'conversion phase: CONVERT_CONCURRENCY of the service; images at once for sharp alone',
  ],
  'phase-timeout-s': ['300', 'a phase that takes longer fails the benchmark'],
  phases: [PHASES.join(','), 'which phases to run'],
  'service-dir': ['.', 'the checkout whose service is started (A/B runs of a patched copy)'],
  'service-build': [
    'image',
    'image: src/ stripped to .js and run as the Docker image runs it; start: src/server.ts as npm start runs it',
  ],
  'service-env': [
    'MALLOC_ARENA_MAX=2',
    'extra environment of the service, NAME=value,… (the Docker image sets this one); empty: none',
  ],
  'service-node-options': [
    // The flag `npm start` and the Docker image run the service with.
    '--max-semi-space-size=1',
    'node flags of the service: --service-node-options="--max-semi-space-size=1 --cpu-prof --cpu-prof-dir=DIR"',
  ],
  probe: ['', 'any value: preload bench/probe.ts into the service (memory by kind, loop delay, GC)'],
  out: ['bench/results/latest.json', 'where the JSON goes'],
} as const
type Name = keyof typeof OPTIONS

export function usage(): string {
  return Object.entries(OPTIONS)
    .map(([name, [value, about]]) => `  --${name.padEnd(22)}${about}${value ? ` (default ${value})` : ''}`)
    .join('\n')
}

export function parseParams(args: string[] = process.argv.slice(2)) {
  const { values } = parseArgs({
    args,
    options: {
      ...Object.fromEntries(
        Object.entries(OPTIONS).map(([name, [value]]) => [name, { type: 'string', default: value }]),
      ),
      help: { type: 'boolean', default: false },
    },
    strict: true,
  }) as unknown as { values: Record<Name, string> & { help: boolean } }
  const int = (name: Name, min: number): number => {
    const value = Number(values[name])
    if (!/^\d+$/.test(values[name]) || value < min) {
      throw new TypeError(`Expected \`--${name}\` to be an integer >= ${min}, got \`${values[name]}\``)
    }
    return value
  }
  const phases = values.phases.split(',').map((p) => p.trim())
  for (const phase of phases) {
    if (!(PHASES as readonly string[]).includes(phase)) {
      throw new TypeError(`Expected \`--phases\` to list some of ${PHASES.join(', ')}, got \`${phase}\``)
    }
  }
  const build = values['service-build']
  if (build !== 'image' && build !== 'start') {
    throw new TypeError(`Expected \`--service-build\` to be image or start, got \`${build}\``)
  }
  const serviceEnv: Record<string, string> = {}
  for (const pair of values['service-env'].split(',').filter((p) => p.trim() !== '')) {
    const [, name, value] = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(pair) ?? []
    if (name === undefined || value === undefined) {
      throw new TypeError(`Expected \`--service-env\` to list NAME=value pairs, got \`${pair}\``)
    }
    serviceEnv[name] = value.trim()
  }
  const items = int('items', 1)
  return {
    help: values.help,
    items,
    jobSize: int('job-size', 1),
    concurrency: int('concurrency', 1),
    imageBytes: int('image-kb', 1) * 1024,
    rounds: int('rounds', 1),
    statusReads: int('status-reads', 1),
    statusEveryMs: int('status-every-ms', 0),
    posts: int('posts', 1),
    postUrls: int('post-urls', 1),
    queued: int('queued', 1),
    latencyMs: int('latency-ms', 1),
    photos: int('photos', 1),
    convertConcurrency: int('convert-concurrency', 1),
    latencyItems: values['latency-items'] === '' ? items : int('latency-items', 1),
    phaseTimeoutMs: int('phase-timeout-s', 1) * 1000,
    phases: new Set(phases as Phase[]),
    serviceDir: resolve(values['service-dir']),
    serviceBuild: build as 'image' | 'start',
    serviceEnv,
    serviceNodeOptions: values['service-node-options'],
    probe: values.probe !== '',
    out: resolve(values.out),
  }
}

export type Params = ReturnType<typeof parseParams>
