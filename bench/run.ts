/**
 * The benchmark: `npm run bench [-- --items 2000 --job-size 100 --concurrency 8 --image-kb 100]`
 * (`-- --help` lists every option). Starts the fakes (origin + Imgur sandbox) and the service as
 * child processes (by default as the Docker image runs it: types stripped at build time), measures
 * throughput against a raw pipeline, status reads against a trivial reference server under the same
 * load, API latency and memory, what idle memory is made of (bench/footprint.ts), and the
 * conversion of large photographs against sharp alone (bench/conversion.ts) and, when
 * `redis-server` is on the PATH, the fleet against the memory mode (bench/fleet.ts), prints every
 * figure next to its target and writes bench/results/latest.json. Children die with it, however
 * it ends.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stripSource } from '../scripts/strip-types.ts'
import { createApi } from './api.ts'
import { type Phase, parseParams, usage } from './args.ts'
import { conversion } from './conversion.ts'
import { footprint } from './footprint.ts'
import {
  type Context,
  postLatency,
  queuedMemory,
  statusBusy,
  statusIdle,
  steadyRss,
  throughput,
  warmUp,
  withLatency,
} from './phases.ts'
import { materials } from './photos.ts'
import { type Fakes, imageCopy, type ServiceProcess, startFakes, startService } from './processes.ts'
import { createRawPipeline } from './raw.ts'
import { type Figures, machine, summariseProbe, table, targets, writeJson } from './report.ts'

const params = parseParams()
if (params.help) {
  console.log(`npm run bench -- [options]\n${usage()}`)
  process.exit(0)
}

const children: { fakes?: ChildProcess; service?: ServiceProcess; fleet?: ChildProcess } = {}
const log = (message: string) => process.stderr.write(`[bench] ${message}\n`)

function killAll(): void {
  // bench/fleet.ts stops its replicas, fakes and Redis on SIGTERM.
  children.fleet?.kill('SIGTERM')
  children.service?.kill()
  children.fakes?.kill('SIGKILL')
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`)
    killAll()
    process.exit(130)
  })
}

async function phase<T>(name: string, work: () => Promise<T>, timeoutMs = params.phaseTimeoutMs): Promise<T> {
  log(`${name}…`)
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`phase "${name}" took longer than ${timeoutMs / 1000} s`)),
      timeoutMs,
    )
  })
  try {
    return await Promise.race([work(), limit])
  } finally {
    clearTimeout(timer)
  }
}

const logs: Record<string, string> = {}
// The checkout as the Docker image holds it (src/ as .js), made once; removed when the run ends.
const image = imageCopy(params.serviceDir)
process.on('exit', image.remove)
const served =
  params.serviceBuild === 'image'
    ? { dir: image.dir, entry: 'src/server.js' }
    : { dir: params.serviceDir, entry: 'src/server.ts' }

function serviceEnv(fakes: Fakes): Record<string, string> {
  const C = String(params.concurrency)
  return {
    IMGUR_API_URL: fakes.sandbox,
    IMGUR_CLIENT_ID: 'bench',
    FETCH_ALLOW_PRIVATE_NETWORKS: 'true',
    PER_HOST_CONCURRENCY: C,
    UPLOAD_CONCURRENCY: C,
    LOG_LEVEL: 'warn',
    MAX_URLS_PER_JOB: String(Math.max(params.jobSize, params.postUrls)),
    // The queued phase holds its two warm-up jobs too.
    MAX_PENDING_ITEMS: String(params.queued + params.items + 3 * params.postUrls),
    SHUTDOWN_TIMEOUT_MS: '2000',
    // The benchmark is one client submitting far more than a person would: no per-client limits.
    SUBMIT_RATE_LIMIT: '1000000',
    DAILY_URL_QUOTA: '0',
    CONVERT_CONCURRENCY: String(params.convertConcurrency),
    // The conversion phase measures time, not deadlines: a slow build must still finish its files.
    CONVERT_TIMEOUT_MS: '600000',
  }
}

function probeJs(): string {
  const source = fileURLToPath(new URL('./probe.ts', import.meta.url))
  const path = join(image.dir, 'probe.js')
  writeFileSync(
    path,
    stripSource(readFileSync(source, 'utf8'), source, () => false),
  )
  return path
}

/** Starts the service as users run it, watched by the fakes in case the benchmark dies. */
async function launch(fakes: Fakes, name: string): Promise<ServiceProcess> {
  // A .ts probe would load the type stripper into a service that otherwise does without it.
  const probe =
    params.serviceBuild === 'image' ? probeJs() : fileURLToPath(new URL('./probe.ts', import.meta.url))
  const service = await startService({
    ...served,
    logFile: `/tmp/bench-service-${process.pid}-${name}.log`,
    timeoutMs: 30_000,
    nodeOptions: `${params.serviceNodeOptions} ${params.probe ? `--import=${probe}` : ''}`,
    env: {
      ...serviceEnv(fakes),
      // MALLOC_* is read by glibc before main(): the image sets it with ENV, npm start prefixes the command.
      ...params.serviceEnv,
    },
  })
  children.service = service
  logs[name] = service.logFile
  await fakes.watch(service.pid)
  log(`${name} service: pid ${service.pid} at ${service.url}, log ${service.logFile}`)
  return service
}

async function stop(fakes: Fakes, service: ServiceProcess): Promise<void> {
  await fakes.watch(undefined)
  await service.stop()
  children.service = undefined
}

/**
 * The fleet phase: bench/fleet.ts in a child of its own (its own fakes, replicas and Redis, all
 * this benchmark's other processes stopped), with this run's sizes, rounds and checkout; its
 * replicas run src/server.ts as `npm start` does. Its log goes to stderr. Without `redis-server`
 * on the PATH it is not run, and says so.
 */
async function fleet(): Promise<Figures['fleet']> {
  if (spawnSync('redis-server', ['--version']).error !== undefined) {
    log('fleet: no redis-server on the PATH (Debian: apt-get install redis-server), not run')
    return undefined
  }
  const out = join(image.dir, 'fleet.json')
  const { items, jobSize, concurrency, imageBytes, rounds } = params
  const child = spawn(
    process.execPath,
    [
      fileURLToPath(new URL('./fleet.ts', import.meta.url)),
      ...['--items', String(items), '--job-size', String(jobSize), '--concurrency', String(concurrency)],
      ...['--image-kb', String(imageBytes / 1024), '--rounds', String(rounds), '--out', out],
      ...['--service-dir', params.serviceDir],
    ],
    { stdio: ['ignore', 2, 'inherit'] },
  )
  children.fleet = child
  const [code] = await once(child, 'exit')
  children.fleet = undefined
  if (code !== 0) throw new Error(`bench/fleet.ts exited with ${code}`)
  const result = JSON.parse(readFileSync(out, 'utf8'))
  const cpu = result.cpuMsPerItemMedians
  return {
    rounds,
    memoryItemsPerSec: result.medians.memory,
    oneItemsPerSec: result.medians.one,
    twoItemsPerSec: result.medians.two,
    ratioOne: result.ratioOne,
    ratioTwo: result.ratioTwo,
    cpuMsPerItem: { memory: cpu.memory, one: cpu['redis, 1 replica'], two: cpu['redis, 2 replicas'] },
    redisCommandsPerItem: result.redisCommandsPerItem,
  }
}

async function main() {
  const started = new Date()
  const info = machine()
  const has = (name: Phase) => params.phases.has(name)
  log(`machine: ${info.cpuCount}× ${info.cpuModel}, load ${info.loadAverage.join(' ')}`)
  // Rendered once and cached in the temporary folder (a few minutes the first time).
  const photos = has('conversion') ? await materials(params.photos, log) : []
  const fakes = await startFakes(params.imageBytes, (child) => {
    children.fakes = child
  })
  const service = await launch(fakes, 'main')
  const api = createApi(service.url)
  const raw = createRawPipeline(fakes.origin, fakes.sandbox)
  const ctx: Context = { params, fakes, service, api, raw, log }
  const figures: Figures = {}
  const runs: Record<string, unknown> = {}

  await new Promise((resolve) => setTimeout(resolve, 1000))
  const idleRss = await steadyRss(service)
  const statusJob = await phase('warm-up', () => warmUp(ctx))
  const idleStatus = has('status')
    ? await phase('status reads while idle', () => statusIdle(ctx, statusJob))
    : []
  if (has('throughput')) {
    const result = await phase('throughput', () => throughput(ctx))
    figures.throughput = result.figures
    runs.throughput = result.rounds
  }
  figures.memory = { idleRss, hwm: service.memory().hwm }
  if (has('status')) {
    const result = await phase('status reads while busy, service and reference', () =>
      statusBusy(ctx, statusJob, idleStatus),
    )
    figures.status = result.figures
    runs.status = result.rounds
  }
  if (has('latency'))
    figures.latency = await phase(`${params.latencyMs} ms upload latency`, () => withLatency(ctx))
  if (has('post')) figures.post = await phase(`${params.postUrls}-URL POSTs`, () => postLatency(ctx))
  if (has('conversion')) {
    // Its rounds take a minute or more each: the limit applies per round.
    const limit = params.phaseTimeoutMs * params.rounds
    const result = await phase(`conversion of ${photos.length} files`, () => conversion(ctx, photos), limit)
    figures.conversion = result.figures
    runs.conversion = { rounds: result.rounds, outcomes: result.outcomes }
  }
  const fakesStats = await fakes.stats()
  await stop(fakes, service)
  await Promise.all([raw.close(), api.close()])

  if (has('memory')) {
    // A fresh process: RSS never shrinks after the throughput runs, and the heap they grew would
    // absorb the queue without a byte of new RSS.
    figures.memory.queued = await phase(`${params.queued} URLs queued`, async () => {
      const fresh = await launch(fakes, 'memory')
      const freshApi = createApi(fresh.url)
      const queued = await queuedMemory({ ...ctx, service: fresh, api: freshApi })
      await freshApi.close()
      await stop(fakes, fresh)
      return queued
    })
  }
  if (has('footprint')) {
    figures.footprint = await phase('footprint', () =>
      footprint({
        checkout: params.serviceDir,
        image: image.dir,
        nodeOptions: params.serviceNodeOptions,
        env: serviceEnv(fakes),
        log,
      }),
    )
  }
  fakes.close()
  if (has('fleet')) {
    figures.fleet = await phase(
      'fleet: memory mode, 1 and 2 replicas on Redis',
      fleet,
      params.phaseTimeoutMs * params.rounds,
    )
  }

  const checks = targets(figures)
  const probe = params.probe ? summariseProbe(logs) : undefined
  const { items, jobSize, concurrency, imageBytes, rounds, serviceBuild } = params
  writeJson(params.out, {
    started: started.toISOString(),
    machine: { ...info, loadAverageAtEnd: machine().loadAverage },
    parameters: { ...params, phases: [...params.phases] },
    figures,
    targets: checks,
    runs,
    fakes: fakesStats,
    ...(probe && { probe }),
  })
  const env = Object.entries(params.serviceEnv).map(([name, value]) => ` ${name}=${value}`)
  const run = `${serviceBuild} ${params.serviceNodeOptions}${env.join('')}`
  console.log(table({ items, jobSize, concurrency, imageBytes, rounds, service: run }, figures, checks))
  if (probe?.main) console.log(`\nprobe (main service): ${JSON.stringify(probe.main.summary)}`)
  console.log(`\nJSON: ${params.out}`)
  for (const file of Object.values(logs)) rmSync(file, { force: true }) // kept only when a run fails
}

main().catch((error: unknown) => {
  log(`FAILED: ${error instanceof Error ? error.message : String(error)}`)
  if (children.service) log(`service log: ${children.service.logFile}`)
  killAll()
  process.exit(1)
})
