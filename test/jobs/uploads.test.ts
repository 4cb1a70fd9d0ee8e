import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Uploads } from '../../src/jobs/uploads.ts'

test('options are checked at construction with exact messages', () => {
  assert.throws(() => new Uploads(0), /Expected `maxEntries` to be an integer >= 1, got `0`/)
})

test('the least recently used entry is forgotten first', () => {
  const uploads = new Uploads(2)
  uploads.set('a', 'https://i.imgur.com/a.png')
  uploads.set('b', 'https://i.imgur.com/b.png')
  assert.equal(uploads.get('a'), 'https://i.imgur.com/a.png', 'a read makes a the most recent')
  uploads.set('c', 'https://i.imgur.com/c.png')
  assert.equal(uploads.get('b'), undefined)
  assert.equal(uploads.get('a'), 'https://i.imgur.com/a.png')
  assert.equal(uploads.get('c'), 'https://i.imgur.com/c.png')
  assert.equal(uploads.size, 2)
})

test('forget drops an entry only while it still holds the given value', () => {
  const uploads = new Uploads(10)
  const failed = Promise.resolve('x')
  const later = Promise.resolve('y')
  uploads.set('k', failed)
  uploads.set('k', later)
  uploads.forget('k', failed)
  assert.equal(uploads.get('k'), later, "a failed upload's clean-up leaves the next attempt's entry")
  uploads.forget('k', later)
  assert.equal(uploads.get('k'), undefined)
})
