import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startService } from '../helpers/service.ts'

const BUDGET_KEY = /^(ip|none|client:[0-9a-f]{12}|account:[0-9a-f]{12})$/

test('/health and /ready report mode, workers, queue and hashed Imgur budgets', async (t) => {
  const { app, origin, run } = await startService(t, {
    env: { UPLOAD_CONCURRENCY: '3', MAX_PENDING_ITEMS: '50' },
  })
  const before = await app.inject({ method: 'GET', url: '/health' })
  assert.equal(before.statusCode, 200)
  assert.deepEqual(before.json(), {
    status: 'ok',
    imgurMode: 'live',
    accepting: true,
    workers: { active: 0, concurrency: 3 },
    queue: { pendingItems: 0, maxPendingItems: 50, jobs: 0 },
    budgets: [],
  })

  await run([`${origin.url}/img/1.png`, `${origin.url}/img/2.png`], { clientId: 'job-own-client-id' })
  for (const url of ['/health', '/ready']) {
    const response = await app.inject({ method: 'GET', url })
    assert.equal(response.statusCode, 200, url)
    const body = response.json()
    assert.equal(body.status, 'ok')
    assert.equal(body.reason, undefined)
    assert.deepEqual(body.queue, { pendingItems: 0, maxPendingItems: 50, jobs: 1 })
    assert.ok(body.budgets.length >= 2, 'the per-IP budget and the job client id budget')
    for (const entry of body.budgets) {
      assert.match(entry.key, BUDGET_KEY)
      for (const kind of ['post', 'client', 'user']) {
        if (entry[kind] === undefined) continue
        assert.equal(typeof entry[kind].remaining, 'number')
        assert.ok(entry[kind].remaining <= entry[kind].limit)
        assert.ok(Date.parse(entry[kind].resetAt) > Date.now())
      }
    }
    const spent = body.budgets.find((entry: { client?: unknown }) => entry.client)
    assert.equal(
      spent.client.limit - spent.client.remaining,
      20,
      'two anonymous uploads cost 10 credits each',
    )
    assert.doesNotMatch(response.body, /job-own-client-id|configured-client-id/)
  }
})

test('/health names sandbox mode when no Imgur is configured', async (t) => {
  const { app } = await startService(t, { env: { IMGUR_API_URL: '', IMGUR_CLIENT_ID: '' } })
  const response = await app.inject({ method: 'GET', url: '/health' })
  assert.equal(response.json().imgurMode, 'sandbox')
})

test('/ready answers 503 queue_full while the pending-item cap is reached, /health stays 200', async (t) => {
  const { app, origin, submit } = await startService(t, {
    env: { MAX_PENDING_ITEMS: '1', FETCH_TIMEOUT_MS: '60000' },
  })
  await submit([`${origin.url}/drip?every=50`])
  await origin.waitForRequest('/drip')
  const ready = await app.inject({ method: 'GET', url: '/ready' })
  assert.equal(ready.statusCode, 503)
  const body = ready.json()
  assert.equal(body.status, 'unavailable')
  assert.equal(body.reason, 'queue_full')
  assert.equal(body.accepting, false)
  assert.deepEqual(body.workers, { active: 1, concurrency: 8 })
  assert.deepEqual(body.queue, { pendingItems: 1, maxPendingItems: 1, jobs: 1 })
  const health = await app.inject({ method: 'GET', url: '/health' })
  assert.equal(health.statusCode, 200)
  assert.equal(health.json().status, 'ok')
  assert.equal(health.json().accepting, false)
})

test('/ready answers 503 shutting_down once the queue is closed', async (t) => {
  const { app, service } = await startService(t)
  assert.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200)
  await service.queue.close(0)
  const ready = await app.inject({ method: 'GET', url: '/ready' })
  assert.equal(ready.statusCode, 503)
  assert.equal(ready.json().reason, 'shutting_down')
  assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
})
