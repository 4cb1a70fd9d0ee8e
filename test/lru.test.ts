import assert from 'node:assert/strict'
import { test } from 'node:test'
import { LruMap } from '../src/lru.ts'

test('the least recently used entry goes first; peek leaves recency alone', () => {
  const map = new LruMap<string, number>(2)
  map.set('a', 1)
  map.set('b', 2)
  assert.equal(map.peek('a'), 1)
  map.set('c', 3)
  assert.equal(map.get('a'), undefined, 'a peek did not make `a` recent')
  assert.equal(map.get('b'), 2)
  map.set('d', 4)
  assert.deepEqual(
    [...map.entries()],
    [
      ['b', 2],
      ['d', 4],
    ],
  )
})

test('kept entries are never forgotten; the map shrinks back when trimmed after they are idle', () => {
  const busy = new Set(['a'])
  const map = new LruMap<string, string>(1, (value) => busy.has(value))
  map.set('a', 'a')
  map.set('b', 'b')
  map.set('c', 'c')
  assert.deepEqual(
    [...map.entries()].map(([key]) => key),
    ['a', 'c'],
  )
  busy.clear()
  map.trim()
  assert.deepEqual(
    [...map.entries()].map(([key]) => key),
    ['c'],
  )
})

test('options are checked at construction with exact messages', () => {
  assert.throws(() => new LruMap(0), /Expected `maxEntries` to be an integer >= 1, got `0`/)
})
