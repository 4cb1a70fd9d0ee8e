/**
 * Subscriptions to jobs changed anywhere in the fleet. Every change publishes "<id> <version>"
 * on one channel; a replica with listeners for that id reads the job and calls them with it.
 * Reads coalesce: while one is in flight, any number of further messages cause one more read,
 * so a job settling a thousand items costs a slow reader a few reads, not a thousand. A
 * listener hears each version at most once and in order, may miss intermediate ones, and is
 * never called after its unsubscribe. A listener that throws is a bug and surfaces as an
 * unhandled rejection, as it would have thrown into a transition of the memory store.
 *
 * The channel is listened to only while some job is watched (`watching`): every settled item
 * publishes, and a replica that nobody watches through would otherwise be woken by each of them.
 * Messages published before the subscription holds are missed; the store calls `missed()` once it
 * holds, so a watch started meanwhile reads its job then.
 */
import type { JobView } from '../jobs/contract.ts'

type Listener = (job: JobView) => void
type Watch = { listeners: Set<Listener>; delivered: number; reading: boolean; again: boolean }

export class Changes {
  readonly #watches = new Map<string, Watch>()
  readonly #read: (id: string) => Promise<JobView | undefined>
  readonly #watching: (watching: boolean) => void

  /** `watching`: told when the first job is watched (true) and when the last stops being (false). */
  constructor(
    read: (id: string) => Promise<JobView | undefined>,
    watching: (watching: boolean) => void = () => {},
  ) {
    this.#read = read
    this.#watching = watching
  }

  /** Whether some job is watched. */
  get watching(): boolean {
    return this.#watches.size > 0
  }

  subscribe(id: string, listener: Listener): () => void {
    let watch = this.#watches.get(id)
    if (watch === undefined) {
      watch = { listeners: new Set(), delivered: -1, reading: false, again: false }
      this.#watches.set(id, watch)
      if (this.#watches.size === 1) this.#watching(true)
    }
    const own = watch
    own.listeners.add(listener)
    return () => {
      own.listeners.delete(listener)
      if (own.listeners.size === 0 && this.#watches.get(id) === own) {
        this.#watches.delete(id)
        if (this.#watches.size === 0) this.#watching(false)
      }
    }
  }

  /** A message from the channel. */
  heard(message: string): void {
    const [id, version] = message.split(' ')
    if (id !== undefined) this.#changed(id, Number(version))
  }

  /** After a reconnection: messages may have been missed, so every watched job is read again. */
  missed(): void {
    for (const id of this.#watches.keys()) this.#changed(id, Number.POSITIVE_INFINITY)
  }

  clear(): void {
    // Reads in flight find no listener left to call.
    for (const watch of this.#watches.values()) watch.listeners.clear()
    this.#watches.clear()
  }

  #changed(id: string, version: number): void {
    const watch = this.#watches.get(id)
    if (watch === undefined || !(version > watch.delivered)) return
    if (watch.reading) watch.again = true
    else void this.#deliver(id, watch)
  }

  async #deliver(id: string, watch: Watch): Promise<void> {
    watch.reading = true
    try {
      do {
        watch.again = false
        // Unreadable (Redis down): the next message or the reconnection reads it again.
        const job = await this.#read(id).catch(() => undefined)
        if (job === undefined || job.version <= watch.delivered) continue
        watch.delivered = job.version
        for (const listener of [...watch.listeners]) if (watch.listeners.has(listener)) listener(job)
      } while (watch.again && this.#watches.get(id) === watch)
    } finally {
      watch.reading = false
    }
  }
}
