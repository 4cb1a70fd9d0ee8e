import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { anySignal, startDeadline, withTimeout } from '../src/signals.ts'

test('withTimeout settles as its promise does, and clears its timer then', async (t) => {
  const set = t.mock.method(globalThis, 'setTimeout')
  const cleared = t.mock.method(globalThis, 'clearTimeout')
  assert.equal(await withTimeout(Promise.resolve('answer'), 60_000), 'answer')
  await assert.rejects(withTimeout(Promise.reject(new Error('refused')), 60_000), /refused/)
  const timers = set.mock.calls.map((call) => call.result)
  assert.equal(timers.length, 2)
  assert.deepEqual(
    cleared.mock.calls.map((call) => call.arguments[0]),
    timers,
    'nothing is left to fire later for a promise that settled in time',
  )
})

test('withTimeout rejects with a TimeoutError when its promise is late, which keeps running', async () => {
  let finished = false
  const late = sleep(50).then(() => {
    finished = true
    return 'late'
  })
  await assert.rejects(withTimeout(late, 5), (error: unknown) => {
    assert.ok(error instanceof DOMException)
    assert.equal(error.name, 'TimeoutError')
    return true
  })
  assert.equal(finished, false)
  assert.equal(await late, 'late')
})

test('anySignal aborts with the reason of the first source that aborts, then lets go of them all', () => {
  const first = new AbortController()
  const second = new AbortController()
  const either = anySignal([first.signal, second.signal])
  assert.equal(getEventListeners(first.signal, 'abort').length, 1)
  assert.equal(either.signal.aborted, false)
  second.abort(new Error('second'))
  assert.equal(either.signal.aborted, true)
  assert.equal((either.signal.reason as Error).message, 'second')
  assert.equal(getEventListeners(first.signal, 'abort').length, 0, 'nothing left on the other source')
  first.abort(new Error('first'))
  assert.equal((either.signal.reason as Error).message, 'second')
})

test('anySignal is aborted at once by a source aborted already, and listens to none', () => {
  const live = new AbortController()
  const either = anySignal([live.signal, AbortSignal.abort(new Error('before'))])
  assert.equal(either.signal.aborted, true)
  assert.equal((either.signal.reason as Error).message, 'before')
  assert.equal(getEventListeners(live.signal, 'abort').length, 0)
})

test('anySignal disposed leaves a long-lived source as it found it', () => {
  const shutdown = new AbortController()
  for (let item = 0; item < 100; item += 1) {
    const either = anySignal([shutdown.signal, new AbortController().signal])
    either.dispose()
    either.dispose()
  }
  assert.equal(getEventListeners(shutdown.signal, 'abort').length, 0)
  const either = anySignal([shutdown.signal])
  either.dispose()
  shutdown.abort()
  assert.equal(either.signal.aborted, false, 'disposed: it follows its sources no more')
})

test('startDeadline: the timer or the caller, whichever comes first; disarmed, only the caller', async () => {
  const caller = new AbortController()
  const late = startDeadline(5, caller.signal, () => new Error('too late'))
  await sleep(30)
  assert.equal(late.timedOut, true)
  assert.equal((late.signal.reason as Error).message, 'too late')
  late.clear()

  const disarmed = startDeadline(5, caller.signal)
  disarmed.disarm()
  await sleep(30)
  assert.equal(disarmed.signal.aborted, false, 'no deadline once disarmed')
  caller.abort(new Error('cancelled'))
  assert.equal(disarmed.timedOut, false)
  assert.equal((disarmed.signal.reason as Error).message, 'cancelled')
  disarmed.clear()
  assert.deepEqual(getEventListeners(caller.signal, 'abort'), [], 'cleared: nothing left on the caller')
})
