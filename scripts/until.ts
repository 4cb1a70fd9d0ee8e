import { setTimeout as sleep } from 'node:timers/promises'

/** Probes every 200 ms until `probe` gives a value (a throw counts as none); throws after `seconds`. */
export async function until<T>(
  what: string,
  seconds: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000
  while (Date.now() < deadline) {
    const found = await probe().catch(() => undefined)
    if (found !== undefined) return found
    await sleep(200)
  }
  throw new Error(`timed out after ${seconds} s waiting for ${what}`)
}
