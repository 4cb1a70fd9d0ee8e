import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createJob } from '../../src/jobs/model.ts'
import { createTurn, exhausted, HostSlots, hostOf, pick, takeRest } from '../../src/jobs/turns.ts'

const urls = ['https://a.test/1', 'https://b.test:8443/2', 'https://a.test/3', 'https://c.test/4']

test('hostOf reads host and port of a normalised URL', () => {
  assert.equal(hostOf('https://b.test:8443/2?x=//y/'), 'b.test:8443')
  assert.equal(hostOf('http://[::1]:80/'), '[::1]:80')
})

test('pick passes over busy hosts, keeps them in order, and offers them first once free', () => {
  const turn = createTurn(createJob(urls, urls), 'key')
  const busy = new Set(['a.test'])
  const free = (host: string) => !busy.has(host)
  const url = (index: number | undefined) => (index === undefined ? undefined : urls[index])
  assert.equal(url(pick(turn, free)), 'https://b.test:8443/2')
  assert.deepEqual(turn.ready.map(url), ['https://a.test/1'])
  assert.equal(url(pick(turn, free)), 'https://c.test/4')
  assert.equal(pick(turn, free), undefined)
  busy.clear()
  assert.equal(url(pick(turn, free)), 'https://a.test/1')
  assert.equal(url(pick(turn, free)), 'https://a.test/3')
  assert.equal(exhausted(turn), true)
})

test('a pick looks at most 32 items deep, so a huge job of one busy host costs little', () => {
  const many = Array.from({ length: 1000 }, (_, i) => `https://a.test/${i}`)
  const turn = createTurn(createJob(many, many), 'key')
  assert.equal(
    pick(turn, () => false),
    undefined,
  )
  assert.equal(turn.next, 32)
  assert.equal(turn.ready.length, 32)
})

test('takeRest hands over every item the turn has not started, passed over ones first, and nothing twice', () => {
  const job = createJob(urls, urls)
  const turn = createTurn(job, 'key')
  assert.equal(
    pick(turn, (host) => host !== 'a.test'),
    1,
  )
  assert.deepEqual(
    takeRest(turn).map((index) => job.items[index]?.url),
    ['https://a.test/1', 'https://a.test/3', 'https://c.test/4'],
  )
  assert.deepEqual(takeRest(turn), [])
  assert.equal(exhausted(turn), true)
})

test('host slots are given back once, however often the release is called', () => {
  const slots = new HostSlots(2)
  const first = slots.take('a.test')
  slots.take('a.test')
  assert.equal(slots.free('a.test'), false)
  first()
  first()
  assert.equal(slots.free('a.test'), true)
  slots.take('a.test')
  assert.equal(slots.free('a.test'), false)
})
