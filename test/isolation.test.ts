import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startService } from './helpers/service.ts'

test("one job's refused client id never fails another job that shares its bytes", async (t) => {
  const { origin, sandbox, submit, status, service } = await startService(t, {
    sandbox: { clientIds: ['configured-client-id'], latencyMs: 100 },
  })
  // Both jobs download the same bytes; A's upload (refused) is in flight when B's item hashes them.
  const a = await submit([`${origin.url}/same-a.png`], { clientId: 'refused-client-id' })
  const b = await submit([`${origin.url}/same-b.png`, `${origin.url}/img/1.png`])
  await service.queue.onIdle()
  const [first, second] = [await status(a), await status(b)]
  assert.equal(first.items[0]?.reason?.code, 'imgur_client_id_refused')
  assert.deepEqual(
    second.items.map((item) => [item.state, item.reused ?? false]),
    [
      ['complete', false],
      ['complete', false],
    ],
  )
  assert.equal(sandbox.uploads.length, 2)
})

test('a link is reused only for uploads made with the same client id', async (t) => {
  const { origin, run } = await startService(t)
  const service = await run([`${origin.url}/same-a.png`])
  const other = await run([`${origin.url}/same-b.png`], { clientId: 'another-app' })
  const otherAgain = await run([`${origin.url}/same-a.png`], { clientId: 'another-app' })
  const serviceAgain = await run([`${origin.url}/same-b.png`])
  assert.equal(other.items[0]?.reused, undefined, "another app's upload is its own")
  assert.notEqual(other.items[0]?.link, service.items[0]?.link)
  assert.ok(other.items[0]?.deletehash)
  assert.equal(otherAgain.items[0]?.reused, true)
  assert.equal(otherAgain.items[0]?.link, other.items[0]?.link)
  assert.equal(serviceAgain.items[0]?.reused, true)
  assert.equal(serviceAgain.items[0]?.link, service.items[0]?.link)
})

test("an item waiting on a duplicate's upload makes its own attempt when that upload fails", async (t) => {
  const { origin, sandbox, run } = await startService(t, { sandbox: { latencyMs: 100 } })
  // The first upload of these bytes fails for good; the item that waited on it must not inherit that.
  sandbox.script('file-type-invalid')
  const body = await run([`${origin.url}/same-a.png`, `${origin.url}/same-b.png`])
  const states = body.items.map((item) => item.state).sort()
  assert.deepEqual(states, ['complete', 'failed'])
  const complete = body.items.find((item) => item.state === 'complete')
  assert.equal(complete?.reused, undefined, 'it uploaded the bytes itself')
  assert.equal(sandbox.uploads.length, 1)
})

test('one deadline covers the whole attempt: a slow download or a slow upload ends as item_timeout', async (t) => {
  const { origin, run } = await startService(t, {
    sandbox: { latencyMs: 2_000 },
    env: { ITEM_TIMEOUT_MS: '300', RETRY_MAX_ATTEMPTS: '1' },
  })
  const body = await run([`${origin.url}/drip?every=50`, `${origin.url}/img/1.png`])
  for (const item of body.items) {
    assert.equal(item.state, 'failed')
    assert.equal(item.reason?.code, 'item_timeout')
    assert.match(item.reason?.message ?? '', /took longer than/)
  }
})
