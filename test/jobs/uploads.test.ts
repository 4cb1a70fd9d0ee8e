import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Known, Uploads } from '../../src/jobs/uploads.ts'

const known = (name: string): Known => ({
  link: `https://i.imgur.com/${name}.png`,
  imageId: name,
  deletehash: `d-${name}`,
})

test('options are checked at construction with exact messages', () => {
  assert.throws(() => new Uploads(0), /Expected `maxEntries` to be an integer >= 1, got `0`/)
})

test('the least recently used upload is forgotten first', () => {
  const uploads = new Uploads(2)
  uploads.set('a', known('a'))
  uploads.set('b', known('b'))
  assert.deepEqual(uploads.get('a'), known('a'), 'a read makes a the most recent')
  uploads.set('c', known('c'))
  assert.equal(uploads.get('b'), undefined)
  assert.equal(uploads.size, 2)
})

test('forget drops an entry only while it still holds the given value', () => {
  const uploads = new Uploads(10)
  const failed = Promise.resolve(known('x'))
  const later = Promise.resolve(known('y'))
  uploads.set('k', failed)
  uploads.set('k', later)
  uploads.forget('k', failed)
  assert.equal(uploads.get('k'), later, "a failed upload's clean-up leaves the next attempt's entry")
  uploads.forget('k', later)
  assert.equal(uploads.get('k'), undefined)
})
