/**
 * Replicas of a fleet as real processes: `src/server.ts` spawned with the environment a test
 * gives it, on one real Redis. Each replica's JSON log is kept (its port is read from Fastify's
 * "Server listening" line), and every process still running when the test ends is killed.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { StatusDocument } from '../../src/http/schemas.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** One line of a replica's log (pino JSON). */
export type LogLine = { level: number; msg: string; [field: string]: unknown }

export type Exit = { code: number | null; signal: NodeJS.Signals | null }

export type Replica = {
  name: string
  /** Base URL of its HTTP server, e.g. `http://127.0.0.1:40123`. */
  url: string
  process: ChildProcess
  logs: LogLine[]
  /** Settles when the process has exited. */
  exited: Promise<Exit>
  readonly running: boolean
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<Exit>
}

/** Every replica started by this test process: killed on exit if a test could not stop it. */
const everyChild = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of everyChild) child.kill('SIGKILL')
})

/** How long a replica may take to listen: a loaded machine with several starting at once is slow. */
const START_TIMEOUT_MS = 60_000

/**
 * Replicas sharing `env` (REDIS_URL, REDIS_PREFIX, Imgur…), each started with its own overrides.
 * Every process spawned, also one still starting when the test fails, is killed with SIGKILL in
 * `t.after`, whatever the test's outcome.
 */
export function fleetOf(t: TestContext, env: Record<string, string>) {
  const spawned = new Set<ChildProcess>()
  t.after(async () => {
    await Promise.all(
      [...spawned].map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return
        const exited = once(child, 'exit')
        child.kill('SIGKILL')
        await exited
      }),
    )
  })
  return {
    start(name: string, overrides: Record<string, string> = {}): Promise<Replica> {
      return startReplica(name, { ...env, ...overrides }, (child) => spawned.add(child))
    },
  }
}

export async function startReplica(
  name: string,
  env: Record<string, string>,
  onSpawn: (child: ChildProcess) => void = () => {},
): Promise<Replica> {
  const child = spawn(process.execPath, ['--max-semi-space-size=4', 'src/server.ts'], {
    cwd: ROOT,
    // Only what the test says: nothing of the runner's own environment leaks into the config.
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  everyChild.add(child)
  onSpawn(child)
  const exited = once(child, 'exit').then(([code, signal]) => {
    everyChild.delete(child)
    return { code, signal } as Exit
  })
  const logs: LogLine[] = []
  let stderr = ''
  let partial = ''
  let onLine = (_line: LogLine): void => {}
  child.stdout?.setEncoding('utf8')
  child.stdout?.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() ?? ''
    for (const text of lines) {
      if (text.trim() === '') continue
      try {
        const line = JSON.parse(text) as LogLine
        logs.push(line)
        onLine(line)
      } catch {
        logs.push({ level: 0, msg: text })
      }
    }
  })
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk
  })

  const listening = new Promise<string>((resolve) => {
    onLine = (line) => {
      const match = /^Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line.msg)
      if (match?.[1] !== undefined) resolve(match[1])
    }
  })
  let timer: NodeJS.Timeout | undefined
  const url = await Promise.race([
    listening,
    exited.then((exit) => {
      throw new Error(`replica ${name} exited (${exit.code ?? exit.signal}) before listening:\n${stderr}`)
    }),
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`replica ${name} did not listen within ${START_TIMEOUT_MS} ms:\n${stderr}`)),
        START_TIMEOUT_MS,
      )
    }),
  ])
    .catch((error: unknown) => {
      child.kill('SIGKILL')
      throw error
    })
    .finally(() => clearTimeout(timer))
  onLine = () => {}

  return {
    name,
    url,
    process: child,
    logs,
    exited,
    get running() {
      return child.exitCode === null && child.signalCode === null
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}

/** Polls `check` until it returns something other than undefined, or fails after `timeoutMs`. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: last })
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

export type Answer<T = unknown> = { status: number; headers: Headers; body: T }

/** A JSON request to a replica; the body parsed whatever the status. */
export async function call<T = unknown>(
  base: string,
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<Answer<T>> {
  const response = await fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    ...(init.body !== undefined && {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(init.body),
    }),
    signal: AbortSignal.timeout(10_000),
  })
  const text = await response.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {}
  return { status: response.status, headers: response.headers, body: body as T }
}

/** Submits `urls` at `replica` and answers the job's id (throws unless 202). */
export async function submit(replica: Replica, urls: string[]): Promise<string> {
  const answer = await call<{ jobId: string }>(replica.url, '/v1/images/upload', {
    method: 'POST',
    body: { urls },
  })
  if (answer.status !== 202) {
    throw new Error(`submit at ${replica.name} answered ${answer.status}: ${JSON.stringify(answer.body)}`)
  }
  return answer.body.jobId
}

export async function status(replica: Replica, jobId: string): Promise<StatusDocument> {
  const answer = await call<StatusDocument>(replica.url, `/v1/images/upload/${jobId}`)
  if (answer.status !== 200) {
    throw new Error(`status at ${replica.name} answered ${answer.status}: ${JSON.stringify(answer.body)}`)
  }
  return answer.body
}

/** Polls the job's status at `replica` until it is complete, and answers that document. */
export function complete(replica: Replica, jobId: string, timeoutMs = 60_000): Promise<StatusDocument> {
  return until(
    `job ${jobId} to complete (asked at ${replica.name})`,
    async () => {
      const document = await status(replica, jobId)
      return document.status === 'complete' ? document : undefined
    },
    timeoutMs,
    100,
  )
}

/** The log lines of `replica` saying it completed an item of `jobId`, as the indexes of those items. */
export function completedBy(replica: Replica, jobId: string): number[] {
  return replica.logs
    .filter((line) => line.msg === 'item complete' && line.jobId === jobId)
    .map((line) => line.index as number)
}
