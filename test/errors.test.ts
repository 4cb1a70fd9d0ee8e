import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { ERRORS, ServiceError } from '../src/errors.ts'

test('the catalogue decides retryability, HTTP status and failsRest; an error may override retryability', () => {
  assert.equal(new ServiceError('download_timeout', 'x').retryable, true)
  assert.equal(new ServiceError('download_blocked', 'x').retryable, false)
  assert.equal(new ServiceError('download_http_status', 'x', { retryable: true }).retryable, true)
  assert.equal(new ServiceError('queue_full', 'x').statusCode, 503)
  assert.equal(new ServiceError('job_not_found', 'x').statusCode, 404)
  assert.equal(new ServiceError('download_blocked', 'x').statusCode, undefined, 'a reason is no HTTP answer')
  assert.equal(new ServiceError('imgur_client_id_refused', 'x').failsRest, true)
  assert.equal(new ServiceError('imgur_auth', 'x').failsRest, false)
})

test('the README documents every code of the catalogue that a client can see', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const internal = new Set(['imgur_invalid_options'])
  const missing = Object.keys(ERRORS).filter(
    (code) => !internal.has(code) && !new RegExp(`[\`"]${code}[\`"]`).test(readme),
  )
  assert.deepEqual(missing, [])
})
