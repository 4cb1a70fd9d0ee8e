import type { IncomingMessage } from 'node:http'

export function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://sandbox.invalid').pathname
}

/** Reads the body up to `limit` bytes, then drains the rest (an answer before the end resets clients). */
export function readBody(req: IncomingMessage, limit: number): Promise<{ body: Buffer; overflow: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= limit) chunks.push(chunk)
      else chunks.length = 0
    })
    req.once('end', () => resolve({ body: Buffer.concat(chunks), overflow: size > limit }))
    req.once('error', reject)
    req.once('close', () => {
      if (!req.complete) reject(new Error('request aborted'))
    })
  })
}

/** Timers that close() can end at once: each wait resolves early instead of hanging. */
export function createWaits() {
  const waits = new Map<NodeJS.Timeout, () => void>()
  return {
    wait(ms: number): Promise<void> {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waits.delete(timer)
          resolve()
        }, ms)
        timer.unref()
        waits.set(timer, resolve)
      })
    },
    endAll(): void {
      for (const [timer, resolve] of waits) {
        clearTimeout(timer)
        resolve()
      }
      waits.clear()
    },
  }
}
