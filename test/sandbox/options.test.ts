import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createSandbox, type SandboxOptions } from '../../src/sandbox/sandbox.ts'

test('options are checked at construction with the exact wrong value', () => {
  const cases: Array<[SandboxOptions, string]> = [
    [{ maxImageBytes: 0 }, 'Expected `maxImageBytes` to be an integer >= 1, got `0`'],
    [{ maxVideoBytes: 1.5 }, 'Expected `maxVideoBytes` to be an integer >= 1, got `1.5`'],
    [{ maxBytes: 0 }, 'Expected `maxBytes` to be an integer >= 1, got `0`'],
    [{ maxRecords: 2.5 }, 'Expected `maxRecords` to be an integer >= 1, got `2.5`'],
    [{ latencyMs: -1 }, 'Expected `latencyMs` to be an integer >= 0, got `-1`'],
    [{ errorRate: 2 }, 'Expected `errorRate` to be a number from 0 to 1, got `2`'],
    [{ publicUrl: 'ftp://x' }, 'Expected `publicUrl` to be an http(s) URL, got `ftp://x`'],
    [{ clientIds: ['ok', ''] }, 'Expected `clientIds[1]` to be a non-empty string, got ``'],
    [{ budget: { resetSeconds: 0 } }, 'Expected `budget.resetSeconds` to be an integer >= 1, got `0`'],
    [
      { oauth: { clientId: 'a', clientSecret: '', refreshToken: 'r' } },
      'Expected `oauth.clientSecret` to be a non-empty string, got ``',
    ],
  ]
  for (const [options, message] of cases) {
    assert.throws(() => createSandbox(options), { name: 'TypeError', message })
  }
})

test('listen resolves the base URL; close without listen resolves', async () => {
  const sandbox = createSandbox()
  assert.equal(sandbox.url, '')
  const url = await sandbox.listen(0, '127.0.0.1')
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
  assert.equal(sandbox.url, url)
  await sandbox.close()
  await assert.rejects(fetch(`${url}/`))
  await createSandbox().close()
})

test('listen rejects when the port is taken', async (t) => {
  const first = createSandbox()
  const url = await first.listen()
  t.after(() => first.close())
  const second = createSandbox()
  await assert.rejects(second.listen(Number(new URL(url).port)), { code: 'EADDRINUSE' })
})
