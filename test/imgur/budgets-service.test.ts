import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startService } from '../helpers/service.ts'

test('the service bounds its budget table by BUDGET_MAX_ENTRIES', async (t) => {
  const { service, origin, run, app } = await startService(t, { env: { BUDGET_MAX_ENTRIES: '2' } })
  for (const clientId of ['job-client-1', 'job-client-2', 'job-client-3']) {
    const body = await run([`${origin.url}/img/1.png`], { clientId })
    assert.equal(body.uploaded.complete.length, 1)
  }
  assert.deepEqual(
    service.imgur.budgets.snapshot().map((entry) => entry.key),
    ['ip', service.imgur.credentialKey('job-client-3'), service.imgur.credentialKey('job-client-2')],
  )
  const health = (await app.inject({ method: 'GET', url: '/health' })).json()
  assert.equal(health.budgets.length, 3)
})
