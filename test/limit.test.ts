import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createLimit } from '../src/limit.ts'

test('createLimit: an aborted waiter leaves no slot behind, and the order of the others holds', async () => {
  const limit = createLimit(1)
  let release = () => {}
  const order: string[] = []
  let active = 0
  let peak = 0
  const task = (name: string, hold?: Promise<void>) => async () => {
    active += 1
    peak = Math.max(peak, active)
    order.push(name)
    await (hold ?? new Promise((resolve) => setImmediate(resolve)))
    active -= 1
  }
  const first = limit.run(task('first', new Promise<void>((resolve) => (release = resolve))))
  const controller = new AbortController()
  const aborted = limit.run(task('aborted'), controller.signal)
  const later = [limit.run(task('second')), limit.run(task('third'))]
  assert.equal(limit.waiting, 3)
  controller.abort(new Error('gave up'))
  await assert.rejects(aborted, /gave up/)
  assert.equal(limit.waiting, 2)
  release()
  await Promise.all([first, ...later])
  assert.deepEqual(order, ['first', 'second', 'third'])
  assert.equal(peak, 1)
  assert.deepEqual([limit.active, limit.waiting], [0, 0])
  // An already aborted signal never queues.
  await assert.rejects(limit.run(task('late'), AbortSignal.abort(new Error('too late'))), /too late/)
  assert.equal(limit.active, 0)
})

test('createLimit: runs at most `size` tasks at once, in arrival order', async () => {
  const limit = createLimit(2)
  let active = 0
  let peak = 0
  const order: number[] = []
  const task = (i: number) =>
    limit.run(async () => {
      active += 1
      peak = Math.max(peak, active)
      await new Promise((resolve) => setImmediate(resolve))
      order.push(i)
      active -= 1
    })
  await Promise.all([0, 1, 2, 3, 4].map(task))
  assert.equal(peak, 2)
  assert.deepEqual(order, [0, 1, 2, 3, 4])
  await limit.onIdle()
})

test('createLimit: slots taken are handed to their waiters in turn, each given back once', async () => {
  const limit = createLimit(2)
  const first = await limit.take()
  const second = await limit.take()
  const order: string[] = []
  const waiting = ['c', 'd', 'e'].map((name) =>
    limit.take().then((release) => {
      order.push(name)
      return release
    }),
  )
  await Promise.resolve()
  assert.deepEqual(order, [], 'no slot is free')
  assert.equal(limit.active, 2)
  first()
  first()
  const third = await waiting[0]
  assert.deepEqual(order, ['c'], 'a release called twice hands over one slot')
  second()
  third?.()
  const [, fourth, fifth] = await Promise.all(waiting)
  assert.deepEqual(order, ['c', 'd', 'e'])
  assert.equal(limit.active, 2)
  fourth?.()
  fifth?.()
  assert.equal(limit.active, 0)
  // Free slots are taken at once, up to the limit.
  await limit.take()
  await limit.take()
  assert.equal(limit.active, 2)
})

test('createLimit: a slot taken ahead is handed over before the earlier waiters, which keep their order', async () => {
  const limit = createLimit(1)
  const held = await limit.take()
  const order: string[] = []
  const taking = (name: string, ahead = false, signal?: AbortSignal) =>
    limit.take(signal, { ahead }).then((release) => {
      order.push(name)
      return release
    })
  const fresh1 = taking('fresh 1')
  const fresh2 = taking('fresh 2')
  const leaving = new AbortController()
  const left = taking('ahead, aborted', true, leaving.signal)
  const back1 = taking('ahead 1', true)
  const back2 = taking('ahead 2', true)
  assert.equal(limit.waiting, 5)
  leaving.abort(new Error('gone'))
  await assert.rejects(left, /gone/)
  assert.equal(limit.waiting, 4, 'an aborted waiter ahead leaves its queue')
  held()
  ;(await back1)()
  ;(await back2)()
  ;(await fresh1)()
  ;(await fresh2)()
  assert.deepEqual(order, ['ahead 1', 'ahead 2', 'fresh 1', 'fresh 2'])
  assert.equal(limit.active, 0)
  // A free slot is taken at once, ahead or not.
  const free = await limit.take(undefined, { ahead: true })
  assert.equal(limit.active, 1)
  free()
})
