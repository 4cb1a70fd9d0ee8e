import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { withTimeout } from '../src/signals.ts'

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
