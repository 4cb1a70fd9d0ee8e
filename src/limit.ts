/**
 * At most `size` holders at once; the others wait their turn, first come first served, except
 * those taken `ahead` (a holder coming back for the slot it lent), served before the rest, in
 * their own order. A waiter whose signal aborts leaves the queue at once (rejecting with
 * the signal's reason), so it never takes a slot. Used for conversions (`run`) and for a fleet
 * replica's transfers (`take`).
 */
export function createLimit(size: number) {
  let active = 0
  const waiting = new Set<() => void>()
  /** Waiters served before `waiting`'s (see `take`). */
  const ahead = new Set<() => void>()
  const idle: Array<() => void> = []
  function release() {
    const queue = ahead.size > 0 ? ahead : waiting
    const [next] = queue
    if (next) {
      queue.delete(next)
      next()
      return
    }
    active -= 1
    if (active === 0) for (const resolve of idle.splice(0)) resolve()
  }
  /** Takes a free slot at once (undefined), or joins the queue: settles once a slot is handed over. */
  function acquire(signal?: AbortSignal, queue = waiting): Promise<void> | undefined {
    signal?.throwIfAborted()
    if (active < size) {
      active += 1
      return undefined
    }
    // The slot is handed over by release(): `active` stays the same.
    return new Promise<void>((resolve, reject) => {
      const abort = () => {
        queue.delete(granted)
        reject(signal?.reason)
      }
      const granted = () => {
        signal?.removeEventListener('abort', abort)
        resolve()
      }
      queue.add(granted)
      signal?.addEventListener('abort', abort, { once: true })
    })
  }
  /**
   * A slot, once one is free: the returned function gives it back (once, however often called).
   * `ahead`: before every waiter that did not ask the same.
   */
  async function take(signal?: AbortSignal, options: { ahead?: boolean } = {}): Promise<() => void> {
    await acquire(signal, options.ahead ? ahead : waiting)
    let held = true
    return () => {
      if (!held) return
      held = false
      release()
    }
  }
  /** `fn` in a slot (called at once when one is free), which is released only when `fn` settles. */
  async function run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const queued = acquire(signal)
    if (queued !== undefined) await queued
    try {
      return await fn()
    } finally {
      release()
    }
  }
  return {
    take,
    run,
    get active() {
      return active
    },
    get waiting() {
      return ahead.size + waiting.size
    },
    onIdle(): Promise<void> {
      if (active === 0) return Promise.resolve()
      return new Promise<void>((resolve) => idle.push(resolve))
    },
  }
}
