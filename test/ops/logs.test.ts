import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { loadConfig } from '../../src/config.ts'
import { createLogger } from '../../src/log.ts'
import { startService } from '../helpers/service.ts'

test('no log line, even at trace, holds a credential', async (t) => {
  const oauth = {
    clientId: 'cfg-client-7Hq2Lx',
    clientSecret: 'cfg-secret-Zr81Wq',
    refreshToken: 'cfg-refresh-Pm55Tv',
  }
  const dynamic = 'job-client-9Kd3Qs'
  const refused = 'job-refused-4Vn8Ye'
  // The sandbox's records never hold a credential: the test makes the tokens to know them.
  const tokens: string[] = []
  const issueToken = () => {
    tokens.push(`token-${randomUUID()}`)
    return tokens.at(-1) as string
  }
  const { app, origin, run, sandbox, logs } = await startService(t, {
    sandbox: { oauth: { ...oauth, issueToken }, clientIds: [oauth.clientId, dynamic] },
    env: {
      LOG_LEVEL: 'trace',
      IMGUR_CLIENT_ID: oauth.clientId,
      IMGUR_CLIENT_SECRET: oauth.clientSecret,
      IMGUR_REFRESH_TOKEN: oauth.refreshToken,
    },
  })
  const urls = [`${origin.url}/img/1.png`, `${origin.url}/img/2.png`, `${origin.url}/status/404`]
  const account = await run(urls)
  const own = await run([`${origin.url}/img/3.png`], { clientId: dynamic })
  const denied = await run([`${origin.url}/img/4.png`], { clientId: refused })
  assert.equal(account.uploaded.complete.length, 2)
  assert.equal(own.uploaded.complete.length, 1)
  assert.equal(denied.uploaded.failed.length, 1)
  const invalid = await app.inject({
    method: 'POST',
    url: '/v1/images/upload',
    payload: { urls, clientId: `${dynamic} with spaces` },
  })
  assert.equal(invalid.statusCode, 400)
  for (const url of ['/health', '/ready', '/metrics', '/openapi.json']) {
    assert.equal((await app.inject({ method: 'GET', url })).statusCode, 200)
  }

  // The Bearer token the sandbox issued is a credential too.
  const bearers = tokens.map((token) => sandbox.authTag(`Bearer ${token}`))
  assert.ok(
    sandbox.requests.some((request) => bearers.includes(request.authTag)),
    'account uploads used a token',
  )
  const secrets = [...Object.values(oauth), dynamic, refused, ...tokens]

  assert.ok(logs.length > 10, `trace logging captured ${logs.length} lines`)
  assert.equal(app.log.level, 'trace')
  assertNoSecret(logs, secrets)
})

test('no log line holds a credential when Imgur refuses the refresh or uploads time out', async (t) => {
  const oauth = {
    clientId: 'cfg-client-3Jf6Ra',
    clientSecret: 'cfg-secret-8Gu1Pd',
    refreshToken: 'right-Bk47Ns',
  }
  const env = {
    LOG_LEVEL: 'trace',
    IMGUR_CLIENT_ID: oauth.clientId,
    IMGUR_CLIENT_SECRET: oauth.clientSecret,
    RETRY_MAX_ATTEMPTS: '2',
  }
  const wrong = 'cfg-refresh-wrong-Qe29Hc'
  const refused = await startService(t, { sandbox: { oauth }, env: { ...env, IMGUR_REFRESH_TOKEN: wrong } })
  const body = await refused.run([`${refused.origin.url}/img/1.png`])
  assert.equal(body.uploaded.failed.length, 1)
  assertNoSecret(refused.logs, [...Object.values(oauth), wrong])

  const slow = await startService(t, {
    sandbox: { oauth, latencyMs: 500 },
    env: { ...env, IMGUR_REFRESH_TOKEN: oauth.refreshToken, UPLOAD_TIMEOUT_MS: '50' },
  })
  const timedOut = await slow.run([`${slow.origin.url}/img/2.png`], { clientId: 'job-client-5Wm0Tz' })
  assert.equal(timedOut.uploaded.failed.length, 1)
  assertNoSecret(slow.logs, [...Object.values(oauth), 'job-client-5Wm0Tz'])
})

test('the logger redacts credentials by path, whatever line carries them', () => {
  const lines: string[] = []
  const log = createLogger(
    'trace',
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk))
        done()
      },
    }),
  )
  const config = loadConfig({
    IMGUR_CLIENT_ID: 'id-1',
    IMGUR_CLIENT_SECRET: 'secret-2',
    IMGUR_REFRESH_TOKEN: 'token-3',
  })
  log.trace({ config }, 'configuration')
  log.info({ clientId: 'id-4', job: { clientId: 'id-5' } }, 'job')
  log.info({ req: { headers: { authorization: 'Bearer token-6', cookie: 'session=7' } } }, 'request')
  assert.equal(lines.length, 3)
  assertNoSecret(lines, ['id-1', 'secret-2', 'token-3', 'id-4', 'id-5', 'token-6', 'session=7'])
  assert.match(lines.join(''), /\[redacted\]/)
})

function assertNoSecret(logs: string[], secrets: string[]): void {
  if (process.env.SHOW_LOGS) process.stdout.write(logs.join(''))
  for (const line of logs) {
    for (const secret of secrets) assert.ok(!line.includes(secret), `a log line holds ${secret}: ${line}`)
  }
}
