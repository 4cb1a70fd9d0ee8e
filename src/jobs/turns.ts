/**
 * The pieces of scheduling that need no clock or worker: a job's turn (which of its items may
 * start next) and the per-host download slots.
 */
import type { JobView } from './contract.ts'

/** How deep into a job's items one pick looks for an item whose host is free. */
const LOOKAHEAD = 32

/**
 * A job with items to start, by position: `ready` (retries due and items passed over), then its
 * untried ones from `next`. A turn holds only what its queue has not started or settled yet.
 */
export type Turn = { job: JobView; key: string; next: number; ready: number[] }

export function createTurn(job: JobView, key: string): Turn {
  return { job, key, next: 0, ready: [] }
}

/** Nothing left to start: no ready item and no untried one. */
export function exhausted(turn: Turn): boolean {
  return turn.ready.length === 0 && turn.next >= turn.job.items.length
}

/**
 * The turn's next item whose host is free: first from its ready list, then from its untried
 * items. Looking at most LOOKAHEAD items deep in each keeps a pick cheap however large the job;
 * items passed over keep their order in the ready list.
 */
export function pick(turn: Turn, hostFree: (host: string) => boolean): number | undefined {
  const { ready } = turn
  const { items } = turn.job
  const target = (index: number) => items[index]?.target ?? ''
  for (let i = 0; i < ready.length && i < LOOKAHEAD; i += 1) {
    const index = ready[i] as number
    if (hostFree(hostOf(target(index)))) {
      ready.splice(i, 1)
      return index
    }
  }
  for (let scanned = 0; turn.next < items.length && scanned < LOOKAHEAD; scanned += 1) {
    const index = turn.next
    turn.next += 1
    if (hostFree(hostOf(target(index)))) return index
    ready.push(index)
  }
  return undefined
}

/** Takes every item of the turn not started yet out of it (to fail them at once). */
export function takeRest(turn: Turn): number[] {
  const rest = turn.ready.splice(0)
  for (; turn.next < turn.job.items.length; turn.next += 1) rest.push(turn.next)
  return rest
}

/** Download slots per origin host. */
export class HostSlots {
  readonly #limit: number
  readonly #taken = new Map<string, number>()

  constructor(limit: number) {
    this.#limit = limit
  }

  free(host: string): boolean {
    return (this.#taken.get(host) ?? 0) < this.#limit
  }

  /** Takes a slot of `host`; the returned function gives it back (once, however often called). */
  take(host: string): () => void {
    this.#taken.set(host, (this.#taken.get(host) ?? 0) + 1)
    let held = true
    return () => {
      if (!held) return
      held = false
      const count = (this.#taken.get(host) ?? 1) - 1
      if (count === 0) this.#taken.delete(host)
      else this.#taken.set(host, count)
    }
  }
}

/** The host (and port) of a normalised http(s) URL, which always has a path after it. */
export function hostOf(target: string): string {
  const start = target.indexOf('//') + 2
  return target.slice(start, target.indexOf('/', start))
}
