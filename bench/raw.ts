/**
 * The raw pipeline: the same downloads and multipart uploads the service does, in a minimal loop
 * with the same concurrency and nothing else (no queue, no sniffing, no hashing, no API). It is the
 * ceiling the service is measured against. It runs in the harness (the throughput phase), or in a
 * child process of its own (`forkRawPipeline`): the load the reference server is read under, which
 * must not share the event loop of the process that reads.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { Agent, FormData, request } from 'undici'

export type RawPipeline = {
  /** Downloads and uploads seeds `from` … `from + count - 1`; resolves with the wall time in ms. */
  run(from: number, count: number, concurrency: number): Promise<number>
  close(): Promise<void>
}

export function createRawPipeline(originUrl: string, sandboxUrl: string): RawPipeline {
  // One keep-alive agent per side, as the service has (downloader and Imgur client).
  const originAgent = new Agent({ keepAliveTimeout: 10_000 })
  const imgurAgent = new Agent({ keepAliveTimeout: 10_000 })

  async function one(seed: number): Promise<void> {
    const download = await request(`${originUrl}/img/${seed}.png`, { dispatcher: originAgent })
    if (download.statusCode !== 200) {
      await download.body.dump()
      throw new Error(`raw pipeline: origin answered ${download.statusCode} for seed ${seed}`)
    }
    const bytes = new Uint8Array(await download.body.arrayBuffer())
    const form = new FormData()
    form.append('image', new Blob([bytes], { type: 'image/png' }), 'image.png')
    form.append('type', 'file')
    const upload = await request(`${sandboxUrl}/3/image`, {
      dispatcher: imgurAgent,
      method: 'POST',
      headers: { authorization: 'Client-ID bench', accept: 'application/json' },
      body: form,
    })
    const answer = (await upload.body.json()) as { data?: { link?: unknown } }
    if (upload.statusCode !== 200 || typeof answer.data?.link !== 'string') {
      throw new Error(`raw pipeline: sandbox answered ${upload.statusCode}: ${JSON.stringify(answer)}`)
    }
  }

  return {
    async run(from, count, concurrency) {
      const started = performance.now()
      let next = 0
      const loop = async (): Promise<void> => {
        while (next < count) {
          const seed = from + next
          next += 1
          await one(seed)
        }
      }
      await Promise.all(Array.from({ length: concurrency }, loop))
      return performance.now() - started
    },
    async close() {
      await Promise.all([originAgent.close(), imgurAgent.close()])
    },
  }
}

type RunCommand = { id: number; from: number; count: number; concurrency: number }
type RunReply = { id: number; ms?: number; error?: string }

/** The same pipeline in a child process, steered over IPC; `pid` is there for its CPU time. */
export async function forkRawPipeline(
  originUrl: string,
  sandboxUrl: string,
): Promise<RawPipeline & { pid: number }> {
  const child = fork(new URL(import.meta.url), [originUrl, sandboxUrl], {
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  await once(child, 'spawn')
  const pending = new Map<number, (reply: RunReply) => void>()
  let nextId = 1
  child.on('message', (reply: RunReply) => {
    pending.get(reply.id)?.(reply)
    pending.delete(reply.id)
  })
  child.once('exit', (code, signal) => {
    for (const settle of pending.values()) settle({ id: 0, error: `raw pipeline exited (${signal ?? code})` })
  })
  return {
    pid: child.pid as number,
    async run(from, count, concurrency) {
      const id = nextId++
      const reply = await new Promise<RunReply>((settle) => {
        pending.set(id, settle)
        child.send({ id, from, count, concurrency } satisfies RunCommand)
      })
      if (reply.ms === undefined) throw new Error(reply.error)
      return reply.ms
    },
    async close() {
      child.disconnect()
      if (child.exitCode === null) await once(child, 'exit')
    },
  }
}

if (import.meta.main) {
  const [originUrl, sandboxUrl] = process.argv.slice(2) as [string, string]
  const raw = createRawPipeline(originUrl, sandboxUrl)
  process.on('message', ({ id, from, count, concurrency }: RunCommand) => {
    raw.run(from, count, concurrency).then(
      (ms) => process.send?.({ id, ms } satisfies RunReply),
      (error: unknown) => process.send?.({ id, error: String(error) } satisfies RunReply),
    )
  })
  process.once('disconnect', () => void raw.close())
}
