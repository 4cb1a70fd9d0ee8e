/**
 * What the service's idle memory is made of (the `footprint` phase): the idle RSS of `node` with
 * nothing loaded, running an empty .ts file (Node's type stripper loaded), with the libraries the
 * service loads at start, then the service itself as `npm start` and as the Docker image run it.
 * What one library costs is read against the libraries loaded at start, without it or with it
 * added: alone, each would also pay for machinery they all share. Each figure is the median of
 * three fresh processes, read from /proc a second after they are ready, with the service's node
 * options. Libraries are imported from an .mjs file, so their figure holds no type stripping.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Memory, readMemory, startService } from './processes.ts'
import { median } from './report.ts'

export type FootprintRow = { name: string } & Omit<Memory, 'hwm'>

const SPAWNS = 3
const SETTLE_MS = 1000

/** Fastify and what the app registers on it, then the other libraries the service loads at start. */
const FASTIFY = ['fastify', '@fastify/swagger', '@fastify/swagger-ui']
const AT_START = [...FASTIFY, 'pino', 'undici', 'typebox', 'file-type', 'prom-client']

/** Median (by RSS) of `SPAWNS` runs of `measure`. */
async function medianOf(name: string, measure: () => Promise<Memory>): Promise<FootprintRow> {
  const runs: Memory[] = []
  for (let i = 0; i < SPAWNS; i += 1) runs.push(await measure())
  const mid = median(runs.map((r) => r.rss))
  const { rss, anon, file } = runs.find((r) => r.rss === mid) as Memory
  return { name, rss, anon, file }
}

/** Runs `node <nodeOptions> <args>` until it prints a line, lets it settle, reads its memory, kills it. */
async function idleChild(args: string[], nodeOptions: string[]): Promise<Memory> {
  const child = spawn(process.execPath, [...nodeOptions, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  try {
    await once(child.stdout, 'data')
    await sleep(SETTLE_MS)
    return readMemory(child.pid as number)
  } finally {
    child.kill('SIGKILL')
  }
}

const READY = "process.stdout.write('ready\\n'); setInterval(() => {}, 60_000)"

export async function footprint(options: {
  checkout: string
  /** The image copy (processes.ts): the import scripts are written there, next to its node_modules. */
  image: string
  nodeOptions: string
  env: Record<string, string>
  log: (message: string) => void
}): Promise<FootprintRow[]> {
  const { image, nodeOptions, log } = options
  const flags = nodeOptions.split(/\s+/).filter((f) => f !== '' && !f.startsWith('--import'))
  const script = (name: string, body: string) => {
    const path = join(image, name)
    writeFileSync(path, body)
    return path
  }
  const imports = (modules: string[]) =>
    script(
      `footprint-${modules.join('+').replace(/[^\w+-]/g, '_')}.mjs`,
      `${modules.map((m) => `await import(${JSON.stringify(m)})`).join('\n')}\n${READY}\n`,
    )
  const without = (...names: string[]) => AT_START.filter((m) => !names.includes(m))
  const ladder: Array<[string, string[]]> = [
    ['node, nothing loaded', ['-e', READY]],
    [
      'node running an empty .ts file',
      [script('footprint-empty.ts', `const ready: string = 'ready'\n${READY}\n`)],
    ],
    ['node + Fastify, @fastify/swagger, swagger-ui', [imports(FASTIFY)]],
    ['  + pino, undici, typebox, file-type, prom-client', [imports(AT_START)]],
    // What one library costs once the others are loaded: the row above, minus it or plus it.
    ['    without prom-client', [imports(without('prom-client'))]],
    [
      '    without @fastify/swagger, swagger-ui',
      [imports(without('@fastify/swagger', '@fastify/swagger-ui'))],
    ],
    ['    + sharp', [imports([...AT_START, 'sharp'])]],
    ['    + heic-decode', [imports([...AT_START, 'heic-decode'])]],
    [
      '    + the sandbox (src/sandbox, as .js)',
      [imports([...AT_START, join(image, 'src/sandbox/sandbox.js')])],
    ],
  ]
  const rows: FootprintRow[] = []
  for (const [name, args] of ladder) {
    log(`  footprint: ${name}`)
    rows.push(await medianOf(name, () => idleChild(args, flags)))
  }
  const services: Array<[string, string, string, Record<string, string>]> = [
    ['service, npm start (src/server.ts)', options.checkout, 'src/server.ts', {}],
    ['service, .js as the image runs it', image, 'src/server.js', {}],
    ['  + MALLOC_ARENA_MAX=2', image, 'src/server.js', { MALLOC_ARENA_MAX: '2' }],
  ]
  for (const [name, dir, entry, extra] of services) {
    log(`  footprint: ${name}`)
    rows.push(
      await medianOf(name, async () => {
        const service = await startService({
          dir,
          entry,
          env: { ...options.env, ...extra },
          nodeOptions: flags.join(' '),
          logFile: '/dev/null',
          timeoutMs: 30_000,
        })
        try {
          await sleep(SETTLE_MS)
          return readMemory(service.pid)
        } finally {
          await service.stop()
        }
      }),
    )
  }
  return rows
}
