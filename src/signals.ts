/** Settles with `promise`, or rejects as soon as `signal` aborts (the promise itself keeps running). */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/**
 * Settles with `promise`, or rejects with a `TimeoutError` after `ms` (the promise itself keeps
 * running). Unlike `AbortSignal.timeout`, whose timer fires (and builds its error) even when the
 * promise settled long before, the timer goes as soon as the promise settles: a replica racing
 * every Redis call of every item against one would otherwise pay for each firing later.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
      ms,
    )
    timer.unref()
    promise.then(resolve, reject).finally(() => clearTimeout(timer))
  })
}
