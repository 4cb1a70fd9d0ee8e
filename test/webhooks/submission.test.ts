import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startService } from '../helpers/service.ts'

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`

test('without WEBHOOK_SECRET a webhookUrl is refused with webhooks_disabled, and nothing is queued', async (t) => {
  const h = await startService(t)
  assert.equal(h.service.webhooks, undefined)
  const response = await h.app.inject({
    method: 'POST',
    url: '/v1/images/upload',
    payload: { urls: [`${h.origin.url}/img/1.png`], webhookUrl: 'https://hooks.example/in' },
  })
  assert.equal(response.statusCode, 400)
  const body = response.json()
  assert.equal(body.error, 'webhooks_disabled')
  assert.match(body.message, /WEBHOOK_SECRET/)
  assert.equal((await h.service.store.stats()).jobs, 0)
  // Without a webhookUrl the submission goes through, and the status has no webhook.
  const status = await h.run([`${h.origin.url}/img/1.png`])
  assert.equal(status.status, 'complete')
  assert.equal(status.webhook, undefined)
})

test('a webhookUrl outside the download rules is refused with invalid_webhook_url', async (t) => {
  const h = await startService(t, { env: { WEBHOOK_SECRET: SECRET } })
  const cases: Array<[unknown, RegExp]> = [
    ['', /empty string/],
    ['not a url', /not an absolute URL/],
    ['/relative/path', /not an absolute URL/],
    ['ftp://hooks.example/in', /scheme ftp: is not allowed/],
    ['javascript:alert(1)', /scheme javascript: is not allowed/],
    ['https://user:pass@hooks.example/in', /credentials/],
    ['https://user@hooks.example/in', /credentials/],
    [`https://hooks.example/${'a'.repeat(2048)}`, /longer than 2048 characters/],
  ]
  for (const [webhookUrl, reason] of cases) {
    const response = await h.app.inject({
      method: 'POST',
      url: '/v1/images/upload',
      payload: { urls: [`${h.origin.url}/img/1.png`], webhookUrl },
    })
    assert.equal(response.statusCode, 400, String(webhookUrl))
    const body = response.json()
    assert.equal(body.error, 'invalid_webhook_url', String(webhookUrl))
    assert.match(body.message, reason)
    assert.doesNotMatch(body.message, /pass/, 'the URL is not echoed')
  }
  // Not a string at all: the schema's own answer.
  const wrongType = await h.app.inject({
    method: 'POST',
    url: '/v1/images/upload',
    payload: { urls: [`${h.origin.url}/img/1.png`], webhookUrl: 42 },
  })
  assert.equal(wrongType.statusCode, 400)
  assert.equal(wrongType.json().error, 'invalid_body')
  assert.equal((await h.service.store.stats()).jobs, 0)
  // Exactly 2048 characters is fine; addresses are judged at delivery, not here.
  const longest = `http://127.0.0.1:9/${'a'.repeat(2048 - 'http://127.0.0.1:9/'.length)}`
  assert.equal(longest.length, 2048)
  await h.submit([`${h.origin.url}/img/1.png`], { webhookUrl: longest })
  assert.equal((await h.service.store.stats()).jobs, 1)
})
