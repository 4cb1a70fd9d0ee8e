/**
 * The fleet benchmark (`npm run bench:fleet [-- --items 2000 --job-size 100 --concurrency 8
 * --rounds 3 --queued 20000 --out FILE --service-dir DIR]`): in one run, against one fakes process
 * (bench/fakes.ts) and one real redis-server, the same items through
 *   - the memory mode (one process, as `npm start` runs it),
 *   - one replica on Redis (`REDIS_URL`), and
 *   - two replicas on the same Redis, the jobs submitted to both in turn,
 * rounds interleaved (memory, one, two, memory, …) so the machine's noise hits each mode alike;
 * then Redis memory per queued URL (an `ROLE=api` replica, which takes no items, holds them).
 * Prints medians next to the target (one replica ≥ 0.7 of the memory mode), and each
 * mode's CPU time per item in the service's processes, in Redis and in the fakes, and writes
 * bench/results/fleet.json (`--out` elsewhere). Needs `redis-server` on the PATH (Debian's
 * package). `npm run bench` runs it as its `fleet` phase.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { startRedis } from '../test/helpers/redis.ts'
import {
  cpuMs,
  describeThreads,
  freePort,
  startFakes,
  type ThreadCpu,
  threadCpuMs,
  threadCpuPerItem,
} from './processes.ts'

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '2000' },
    'job-size': { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    queued: { type: 'string', default: '20000' },
    'image-kb': { type: 'string', default: '100' },
    out: { type: 'string', default: fileURLToPath(new URL('./results/fleet.json', import.meta.url)) },
    // The checkout whose src/server.ts the replicas run (A/B runs of a patched copy).
    'service-dir': { type: 'string', default: fileURLToPath(new URL('..', import.meta.url)) },
  },
})
const items = Number(values.items)
const jobSize = Number(values['job-size'])
const concurrency = Number(values.concurrency)
const rounds = Number(values.rounds)
const queued = Number(values.queued)
const root = values['service-dir']

type Replica = { url: string; child: ChildProcess; stop(): Promise<void> }

const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})
// Stopped (by `npm run bench`, or Ctrl-C): the replicas, the fakes and Redis go with it.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130))

async function replica(env: Record<string, string>): Promise<Replica> {
  const port = await freePort()
  // Each mode as it is deployed: `npm start`'s 1 MB semi-space for the memory mode, Compose's 4 MB
  // for a replica (it allocates for every Redis round trip; README, Scaling out).
  const semiSpace = env.REDIS_URL === undefined ? 1 : 4
  const child = spawn(process.execPath, [`--max-semi-space-size=${semiSpace}`, 'src/server.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      HOST: '127.0.0.1',
      PORT: String(port),
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  children.add(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const url = `http://127.0.0.1:${port}`
  for (const deadline = Date.now() + 60_000; ; await sleep(50)) {
    if (child.exitCode !== null) throw new Error(`a replica exited (${child.exitCode}) before answering`)
    const answer = await request(`${url}/ready`).catch(() => undefined)
    await answer?.body.dump()
    if (answer?.statusCode === 200) break
    if (Date.now() > deadline) throw new Error('a replica did not get ready within 60 s')
  }
  return {
    url,
    child,
    async stop() {
      child.kill('SIGTERM')
      await exited
      children.delete(child)
    },
  }
}

async function json<T>(url: string, init?: { method: 'POST'; body: unknown }): Promise<T> {
  const answer = await request(url, {
    method: init?.method ?? 'GET',
    ...(init && { body: JSON.stringify(init.body), headers: { 'content-type': 'application/json' } }),
  })
  const body = (await answer.body.json()) as T
  if (answer.statusCode >= 300)
    throw new Error(`${url} answered ${answer.statusCode}: ${JSON.stringify(body)}`)
  return body
}

type Status = { status: string; uploaded: { complete: string[]; failed: string[] } }

/** Submits `items` fresh images in jobs of `jobSize`, to the replicas in turn; items per second until all are complete. */
async function run(replicas: Replica[], origin: string, seed: number): Promise<number> {
  const started = performance.now()
  const jobs: Array<{ url: string; jobId: string }> = []
  for (let job = 0; job * jobSize < items; job += 1) {
    const urls = Array.from(
      { length: Math.min(jobSize, items - job * jobSize) },
      (_, i) => `${origin}/img/${seed + job * jobSize + i}.png`,
    )
    const at = replicas[job % replicas.length] as Replica
    const { jobId } = await json<{ jobId: string }>(`${at.url}/v1/images/upload`, {
      method: 'POST',
      body: { urls },
    })
    jobs.push({ url: at.url, jobId })
  }
  let failed = 0
  for (const { url, jobId } of jobs) {
    for (;;) {
      const status = await json<Status>(`${url}/v1/images/upload/${jobId}`)
      if (status.status === 'complete') {
        failed += status.uploaded.failed.length
        break
      }
      await sleep(20)
    }
  }
  if (failed > 0) throw new Error(`${failed} items failed: the measurement is void`)
  return items / ((performance.now() - started) / 1000)
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

const redis = await startRedis()
children.add(redis.process)
const fakes = await startFakes(Number(values['image-kb']) * 1024, (child) => children.add(child))
const C = String(concurrency)
const base = {
  IMGUR_API_URL: fakes.sandbox,
  IMGUR_CLIENT_ID: 'bench',
  FETCH_ALLOW_PRIVATE_NETWORKS: 'true',
  UPLOAD_CONCURRENCY: C,
  PER_HOST_CONCURRENCY: C,
  LOG_LEVEL: 'warn',
  MAX_URLS_PER_JOB: String(Math.max(jobSize, 1000)),
  MAX_PENDING_ITEMS: String(Math.max(items, queued) * 2),
  SUBMIT_RATE_LIMIT: '1000000',
  DAILY_URL_QUOTA: '0',
  SHUTDOWN_TIMEOUT_MS: '2000',
}
const modes = {
  memory: () => [base],
  'redis, 1 replica': (prefix: string) => [{ ...base, REDIS_URL: redis.url, REDIS_PREFIX: prefix }],
  'redis, 2 replicas': (prefix: string) => [
    { ...base, REDIS_URL: redis.url, REDIS_PREFIX: prefix },
    { ...base, REDIS_URL: redis.url, REDIS_PREFIX: prefix },
  ],
} as const
/** Commands Redis has run, every kind summed (`INFO commandstats`), for commands per item. */
const stats = new Redis(redis.url)
const commandsRun = async () =>
  [...(await stats.info('commandstats')).matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)].reduce(
    (sum, [, calls]) => sum + Number(calls),
    0,
  )
const commandsPerItem: number[] = []
const rates: Record<keyof typeof modes, number[]> = {
  memory: [],
  'redis, 1 replica': [],
  'redis, 2 replicas': [],
}
/**
 * CPU time per item, by process kind, for each round of each mode: where a mode's time goes; and
 * the service's by thread (the replicas' summed).
 */
type Cpu = { service: number; redis: number; fakes: number; serviceThreads: ThreadCpu }
const cpu: Record<keyof typeof modes, Cpu[]> = {
  memory: [],
  'redis, 1 replica': [],
  'redis, 2 replicas': [],
}
const redisPid = redis.process.pid as number
try {
  let seed = 0
  for (let round = 0; round < rounds; round += 1) {
    for (const mode of Object.keys(modes) as Array<keyof typeof modes>) {
      await fakes.reset()
      const started = await Promise.all(
        modes[mode](`bench-${round}-${mode.length}`).map((env) => replica(env)),
      )
      // A warm-up job per replica: the first requests pay for lazy loading and JIT.
      await run(started, fakes.origin, 1e9 + seed).catch(() => 0)
      seed += items
      const before = await commandsRun()
      const cpuNow = () => ({
        service: started.reduce((sum, one) => sum + cpuMs(one.child.pid as number), 0),
        redis: cpuMs(redisPid),
        fakes: cpuMs(fakes.pid),
        threads: threadCpuMs(...started.map((one) => one.child.pid as number)),
      })
      const cpuBefore = cpuNow()
      const rate = await run(started, fakes.origin, seed)
      const cpuAfter = cpuNow()
      const spent = (kind: 'service' | 'redis' | 'fakes') => (cpuAfter[kind] - cpuBefore[kind]) / items
      cpu[mode].push({
        service: spent('service'),
        redis: spent('redis'),
        fakes: spent('fakes'),
        serviceThreads: threadCpuPerItem(cpuBefore.threads, cpuAfter.threads, items),
      })
      // Status reads of the waiting loop included: a few per job, against ten or so per item.
      if (mode === 'redis, 1 replica') commandsPerItem.push(((await commandsRun()) - before) / items)
      seed += items
      rates[mode].push(rate)
      const spentNow = cpu[mode].at(-1) as Cpu
      process.stderr.write(
        `round ${round + 1} ${mode}: ${rate.toFixed(1)} items/s; CPU ms/item service ${spentNow.service.toFixed(2)} (${describeThreads(spentNow.serviceThreads)}), Redis ${spentNow.redis.toFixed(2)}, fakes ${spentNow.fakes.toFixed(2)}\n`,
      )
      await Promise.all(started.map((one) => one.stop()))
    }
  }

  // Redis memory per queued URL: URLs held by an API-only replica (no worker takes them), 60-character URLs.
  const used = async () => Number(/used_memory:(\d+)/.exec(await stats.info('memory'))?.[1])
  const [api] = await Promise.all([
    replica({ ...base, REDIS_URL: redis.url, REDIS_PREFIX: 'queued', ROLE: 'api' }),
  ])
  const before = await used()
  for (let sent = 0; sent < queued; sent += 1000) {
    const urls = Array.from(
      { length: 1000 },
      (_, i) => `https://images.example.org/photos/2026/${String(sent + i).padStart(8, '0')}.png`,
    )
    await json(`${(api as Replica).url}/v1/images/upload`, { method: 'POST', body: { urls } })
  }
  const perUrl = ((await used()) - before) / queued
  await (api as Replica).stop()

  // Each mode's CPU time per item, by process kind: medians over the rounds.
  const cpuMedians = Object.fromEntries(
    (Object.keys(modes) as Array<keyof typeof modes>).map((mode) => {
      const of = (kind: 'service' | 'redis' | 'fakes') => median(cpu[mode].map((spent) => spent[kind]))
      const thread = (kind: keyof ThreadCpu) => median(cpu[mode].map((spent) => spent.serviceThreads[kind]))
      const serviceThreads = {
        main: thread('main'),
        pipeline: thread('pipeline'),
        v8Helpers: thread('v8Helpers'),
      }
      return [mode, { service: of('service'), redis: of('redis'), fakes: of('fakes'), serviceThreads }]
    }),
  ) as Record<keyof typeof modes, Cpu>
  const memory = median(rates.memory)
  const one = median(rates['redis, 1 replica'])
  const two = median(rates['redis, 2 replicas'])
  const rows = [
    ['memory mode', `${memory.toFixed(1)} items/s`, ''],
    [
      'redis, 1 replica',
      `${one.toFixed(1)} items/s (ratio ${(one / memory).toFixed(2)})`,
      `≥ 0.7 ${one / memory >= 0.7 ? '✔' : '✘'}`,
    ],
    ['Redis commands per item', `${median(commandsPerItem).toFixed(1)} (1 replica)`, ''],
    ...Object.entries(cpuMedians).map(([mode, { service, redis, fakes }]) => [
      `CPU ms/item, ${mode}`,
      `service ${service.toFixed(2)}, Redis ${redis.toFixed(2)}, fakes ${fakes.toFixed(2)}`,
      '',
    ]),
    ['redis, 2 replicas', `${two.toFixed(1)} items/s (ratio ${(two / memory).toFixed(2)})`, ''],
    ['Redis memory per queued URL', `${perUrl.toFixed(0)} bytes (${queued} URLs of 60 characters)`, ''],
  ]
  process.stdout.write(
    `\nfleet benchmark: ${items} items of ${values['image-kb']} KiB in jobs of ${jobSize}, UPLOAD_CONCURRENCY ${concurrency} per replica, medians of ${rounds} rounds\n`,
  )
  for (const [name, value, target] of rows)
    process.stdout.write(`${(name as string).padEnd(32)}${(value as string).padEnd(44)}${target}\n`)
  mkdirSync(dirname(values.out), { recursive: true })
  writeFileSync(
    values.out,
    `${JSON.stringify({ date: new Date().toISOString(), items, jobSize, concurrency, rounds, rates, cpuMsPerItem: cpu, cpuMsPerItemMedians: cpuMedians, medians: { memory, one, two }, ratioOne: one / memory, ratioTwo: two / memory, redisCommandsPerItem: median(commandsPerItem), redisBytesPerQueuedUrl: perUrl }, null, 2)}\n`,
  )
} finally {
  stats.disconnect()
  fakes.close()
  await redis.stop()
  for (const child of children) child.kill('SIGKILL')
}
