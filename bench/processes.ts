/**
 * The child processes: the fakes (steered over IPC) and the service as users run it (the Docker
 * image's `node src/server.js`, or `npm start`'s `node src/server.ts`, with its env), with their
 * memory and CPU time read from /proc.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process'
import {
  closeSync,
  copyFileSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { stripTree } from '../scripts/strip-types.ts'
import type { FakesCommand, FakesReady, FakesReply, FakesStats } from './fakes.ts'

export type ServiceProcess = {
  readonly url: string
  readonly pid: number
  readonly logFile: string
  /** VmRSS and VmHWM in bytes, from /proc/<pid>/status. */
  memory(): Memory
  stop(): Promise<void>
  kill(): void
}

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Bytes: resident (anonymous memory + pages of files, the `node` binary's code above all) and its high-water mark. */
export type Memory = { rss: number; hwm: number; anon: number; file: number }

export function readMemory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN)
  return {
    rss: kb('VmRSS') * 1024,
    hwm: kb('VmHWM') * 1024,
    anon: kb('RssAnon') * 1024,
    file: kb('RssFile') * 1024,
  }
}

/** Resident bytes by what holds them, from /proc/<pid>/smaps. */
export type RssParts = {
  /** Pages of mapped files: the `node` binary's code and data above all, then shared libraries. */
  files: number
  /** V8's heap pages (anonymous mappings of exactly 256 KiB), every isolate's together. */
  v8Pages: number
  /** glibc's malloc: the main arena (`[heap]`) and the others' heaps (anonymous, 64 MiB-aligned). */
  malloc: number
  /** The rest: thread stacks, V8's code space and large objects, WebAssembly memory. */
  other: number
}

const KIB = 1024
const ARENA_ALIGN = 64 * 1024 * KIB // glibc's HEAP_MAX_SIZE on 64-bit: each non-main arena's heap starts on it

function partOf(start: number, end: number, perms: string, name: string): keyof RssParts {
  if (name.startsWith('/')) return 'files'
  if (name === '[heap]') return 'malloc'
  if (name !== '') return 'other'
  if (end - start === 256 * KIB) return 'v8Pages'
  return perms === 'rw-p' && start % ARENA_ALIGN === 0 ? 'malloc' : 'other'
}

export function readRssParts(pid: number): RssParts {
  const parts: RssParts = { files: 0, v8Pages: 0, malloc: 0, other: 0 }
  let part: keyof RssParts = 'other'
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const mapping = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (mapping) {
      const [, start, end, perms, name] = mapping as unknown as [string, string, string, string, string]
      part = partOf(Number.parseInt(start, 16), Number.parseInt(end, 16), perms, name)
    } else if (line.startsWith('Rss:')) {
      parts[part] += Number(line.split(/\s+/)[1]) * KIB
    }
  }
  return parts
}

/** `files 57, V8 pages 56, malloc 55, other 9 MB`. */
export const describeParts = (parts: RssParts) =>
  `files ${mb(parts.files)}, V8 pages ${mb(parts.v8Pages)}, malloc ${mb(parts.malloc)}, other ${mb(parts.other)} MB`
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(0)

/** CPU time (user + system) the process has used so far, in ms; /proc counts in ticks of 10 ms. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/** The threads `threadCpuMs` tells apart, by the names Node gives them. */
export const THREADS = { MainThread: 'main', WorkerThread: 'pipeline', V8Worker: 'v8Helpers' } as const
export type ThreadCpu = Record<(typeof THREADS)[keyof typeof THREADS], number>

/**
 * CPU time (user + system, ms) of processes' main threads, worker threads (the service's item
 * pipeline) and V8's helper threads (concurrent marking and sweeping, background compiles), summed
 * over `pids`, from /proc/<pid>/task: where an item's CPU goes, which a process total hides.
 */
export function threadCpuMs(...pids: number[]): ThreadCpu {
  const spent: ThreadCpu = { main: 0, pipeline: 0, v8Helpers: 0 }
  for (const pid of pids) {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      let stat: string
      try {
        stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      } catch {
        continue // the thread ended meanwhile
      }
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) as keyof typeof THREADS
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const kind = THREADS[name]
      if (kind) spent[kind] += (Number(fields[11]) + Number(fields[12])) * 10
    }
  }
  return spent
}

/** CPU per item of each kind of thread between two readings of `threadCpuMs`. */
export const threadCpuPerItem = (before: ThreadCpu, after: ThreadCpu, items: number): ThreadCpu => ({
  main: (after.main - before.main) / items,
  pipeline: (after.pipeline - before.pipeline) / items,
  v8Helpers: (after.v8Helpers - before.v8Helpers) / items,
})

export const describeThreads = (cpu: ThreadCpu) =>
  `main ${cpu.main.toFixed(2)}, pipeline ${cpu.pipeline.toFixed(2)}, V8 helpers ${cpu.v8Helpers.toFixed(2)}`

/**
 * The checkout as the Docker image holds it: src/ stripped to plain .js (scripts/strip-types.ts, as
 * the Dockerfile does), next to the checkout's public/, package.json and node_modules. Returns the
 * folder and a function that removes it.
 */
export function imageCopy(dir: string): { dir: string; remove: () => void } {
  const copy = mkdtempSync(join(tmpdir(), 'imgur-bench-image-'))
  stripTree(join(dir, 'src'), join(copy, 'src'))
  copyFileSync(join(dir, 'package.json'), join(copy, 'package.json'))
  symlinkSync(resolve(dir, 'public'), join(copy, 'public'))
  symlinkSync(resolve(dir, 'node_modules'), join(copy, 'node_modules'))
  return { dir: copy, remove: () => rmSync(copy, { recursive: true, force: true }) }
}

export async function startService(options: {
  dir: string
  /** The file `node` runs, relative to `dir`: src/server.ts (npm start) or src/server.js (the image). */
  entry: string
  env: Record<string, string>
  logFile: string
  nodeOptions?: string
  timeoutMs: number
}): Promise<ServiceProcess> {
  const port = await freePort()
  // On the command line, as npm start and the image's CMD give them (NODE_OPTIONS refuses some V8 flags).
  const flags = (options.nodeOptions ?? '').split(/\s+/).filter((flag) => flag !== '')
  const log = openSync(options.logFile, 'w')
  // A clean environment: nothing from the caller's shell (PORT, IMGUR_*) leaks into the measurement.
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    HOST: '127.0.0.1',
    PORT: String(port),
    ...options.env,
  }
  const child: ChildProcess = spawn(process.execPath, [...flags, options.entry], {
    cwd: options.dir,
    env,
    stdio: ['ignore', log, log],
  })
  closeSync(log)
  let exited: string | undefined
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = signal ?? `code ${code}`
      resolve()
    })
  })
  const url = `http://127.0.0.1:${port}`
  const service: ServiceProcess = {
    url,
    pid: child.pid as number,
    logFile: options.logFile,
    memory: () => readMemory(child.pid as number),
    async stop() {
      if (exited !== undefined) return
      child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exit
      clearTimeout(killer)
    },
    kill() {
      if (exited === undefined) child.kill('SIGKILL')
    },
  }
  const deadline = Date.now() + options.timeoutMs
  for (;;) {
    if (exited !== undefined)
      throw new Error(`the service exited (${exited}) before answering; see ${options.logFile}`)
    try {
      const response = await request(`${url}/v1/images`)
      await response.body.dump()
      if (response.statusCode === 200) return service
    } catch {}
    if (Date.now() > deadline) {
      service.kill()
      throw new Error(
        `the service did not answer GET /v1/images within ${options.timeoutMs} ms; see ${options.logFile}`,
      )
    }
    await sleep(50)
  }
}

export type Fakes = Awaited<ReturnType<typeof startFakes>>

/** Starts bench/fakes.ts; every control call answers over IPC and fails if the process is gone. */
export async function startFakes(imageBytes: number, onChild: (child: ChildProcess) => void) {
  const child = fork(new URL('./fakes.ts', import.meta.url), [String(imageBytes)], {
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  onChild(child)
  const pending = new Map<number, (reply: FakesReply) => void>()
  let nextId = 1
  let gone: string | undefined
  const ready = new Promise<FakesReady>((resolveReady, reject) => {
    child.once('exit', (code, signal) => {
      gone = `the fakes process exited (${signal ?? `code ${code}`})`
      for (const settle of pending.values()) settle({ id: 0, ok: false, error: gone })
      pending.clear()
      reject(new Error(gone))
    })
    child.on('message', (message: FakesReady | FakesReply) => {
      if ('op' in message) return resolveReady(message)
      pending.get(message.id)?.(message)
      pending.delete(message.id)
    })
  })
  const { origin, sandbox } = await ready
  const control = async (command: FakesCommand): Promise<FakesReply> => {
    if (gone !== undefined) throw new Error(gone)
    const id = nextId++
    const reply = await new Promise<FakesReply>((settle) => {
      pending.set(id, settle)
      child.send({ ...command, id })
    })
    if (!reply.ok) throw new Error(`fakes: ${command.op} failed: ${reply.error}`)
    return reply
  }
  return {
    origin,
    sandbox,
    pid: child.pid as number,
    /** Frees the sandbox's stored uploads (and its rate-limit budgets). */
    reset: () => control({ op: 'reset' }),
    latency: (ms: number) => control({ op: 'latency', ms }),
    /** The pid the fakes SIGKILL if the benchmark dies without stopping it; undefined: none. */
    watch: (pid: number | undefined) => control({ op: 'watch', pid }),
    /** The folder the origin's `/files/<name>` serves. */
    files: (dir: string) => control({ op: 'files', dir }),
    stats: async () => (await control({ op: 'stats' })).stats as FakesStats,
    close: () => child.disconnect(),
  }
}
