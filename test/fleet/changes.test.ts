import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Changes } from '../../src/fleet/changes.ts'
import type { JobView } from '../../src/jobs/contract.ts'
import { createJob } from '../../src/jobs/model.ts'

/** A read the test answers by hand, with the job at a given version. */
function reads() {
  const job = createJob(['https://a.example/1.png'], ['https://a.example/1.png'])
  const waiting: ((view: JobView) => void)[] = []
  let made = 0
  return {
    id: job.id,
    read: () => {
      made += 1
      return new Promise<JobView>((resolve) => waiting.push(resolve))
    },
    /** Reads made so far. */
    count: () => made,
    async answer(version: number) {
      waiting.shift()?.({ ...job, version })
      await new Promise((resolve) => setImmediate(resolve))
    },
  }
}

test('messages heard while a read is in flight cost one more read, not one each', async () => {
  const { id, read, count, answer } = reads()
  const changes = new Changes(read)
  const versions: number[] = []
  changes.subscribe(id, (job) => versions.push(job.version))
  changes.heard(`${id} 1`)
  for (const version of [2, 3, 4]) changes.heard(`${id} ${version}`)
  assert.equal(count(), 1)
  await answer(1)
  assert.equal(count(), 2)
  await answer(4)
  assert.equal(count(), 2, 'no further read')
  assert.deepEqual(versions, [1, 4])
  changes.heard(`${id} 3`)
  assert.equal(count(), 2, 'a version already delivered is not read again')
})

test('a listener is not called after its unsubscribe, even by a read already in flight', async () => {
  const { id, read, answer } = reads()
  const changes = new Changes(read)
  const versions: number[] = []
  const stop = changes.subscribe(id, (job) => versions.push(job.version))
  changes.heard(`${id} 1`)
  stop()
  await answer(1)
  assert.deepEqual(versions, [])
})

test('jobs nobody here watches are not read', () => {
  const { id, read, count } = reads()
  const changes = new Changes(read)
  changes.heard(`${id} 1`)
  assert.equal(count(), 0)
})

test('the store is told when the first job is watched and when the last stops being', () => {
  const first = reads()
  const second = reads()
  const told: boolean[] = []
  const changes = new Changes(first.read, (watching) => told.push(watching))
  assert.equal(changes.watching, false)
  const stopFirst = changes.subscribe(first.id, () => {})
  const stopAgain = changes.subscribe(first.id, () => {})
  const stopSecond = changes.subscribe(second.id, () => {})
  assert.deepEqual(told, [true], 'once, for the first watch')
  stopFirst()
  stopSecond()
  assert.deepEqual(told, [true], 'a listener is left')
  assert.equal(changes.watching, true)
  stopAgain()
  stopAgain()
  assert.deepEqual(told, [true, false], 'once, when nothing is watched')
  assert.equal(changes.watching, false)
  changes.subscribe(second.id, () => {})
  assert.deepEqual(told, [true, false, true])
})
