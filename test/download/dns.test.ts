/**
 * DNS failures through the downloader, offline: an injected resolver fails with each errno a
 * resolver reports. A name that does not exist fails for good, at once; a resolver in trouble
 * (SERVFAIL, timeout, refusal) is the service's problem, not the URL's, and is retried.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { isServiceError, type ServiceError } from '../../src/errors.ts'
import { retryDelay } from '../../src/jobs/retry.ts'
import { TEST_USER_AGENT, useDownloaders } from '../helpers/downloaders.ts'
import { startService } from '../helpers/service.ts'

const fixture = useDownloaders({
  maxBytes: 1024 * 1024,
  timeoutMs: 10_000,
  maxRedirects: 5,
  allowPrivateNetworks: false,
  userAgent: TEST_USER_AGENT,
})
const { downloader } = fixture

/** A resolver failing every call with `code` (none: a bare Error), the way dns.lookup does; counts calls. */
function failing(code?: string) {
  const resolver = async (hostname: string): Promise<never> => {
    resolver.calls++
    throw Object.assign(new Error(`getaddrinfo ${code ?? 'trouble'} ${hostname} 10.0.0.53:53`), {
      ...(code && { code }),
      syscall: 'getaddrinfo',
      hostname,
    })
  }
  resolver.calls = 0
  return resolver
}

const NOT_FOUND = ['download_dns_not_found', false, 'host missing.test not found in DNS'] as const
const UNAVAILABLE = [
  'download_dns_unavailable',
  true,
  'DNS lookup for host missing.test failed temporarily',
] as const

async function fails(
  promise: Promise<unknown>,
  [code, retryable, message]: readonly [string, boolean, string],
) {
  let caught: ServiceError | undefined
  await assert.rejects(promise, (error: ServiceError) => {
    assert.deepEqual([error.code, error.retryable, error.message], [code, retryable, message])
    assert.doesNotMatch(error.message, /10\.0\.0\.53|getaddrinfo|E[A-Z_]{4,}/, 'no resolver internals')
    caught = error
    return true
  })
  return caught as ServiceError
}

describe('a resolver failure, by errno', () => {
  const cases: Array<
    [errno: string | undefined, why: string, expected: typeof NOT_FOUND | typeof UNAVAILABLE]
  > = [
    ['ENOTFOUND', 'NXDOMAIN, or no address record (dns.lookup folds both into ENOTFOUND)', NOT_FOUND],
    ['ENODATA', 'c-ares: the name has no record of that type', NOT_FOUND],
    ['EAI_AGAIN', 'SERVFAIL or a resolver timeout', UNAVAILABLE],
    ['EAI_FAIL', 'the resolver refused or could not answer', UNAVAILABLE],
    ['ESERVFAIL', 'c-ares SERVFAIL', UNAVAILABLE],
    ['ETIMEOUT', 'c-ares timeout', UNAVAILABLE],
    ['ECONNREFUSED', "the resolver refused the query: not the origin's refusal", UNAVAILABLE],
    [undefined, 'an error without a code', UNAVAILABLE],
  ]
  for (const [errno, why, expected] of cases) {
    test(`${errno ?? 'no errno'} (${why}) → ${expected[0]}`, async () => {
      const lookup = failing(errno)
      const error = await fails(downloader({ lookup }).download('http://missing.test/a.png'), expected)
      assert.equal(lookup.calls, 1, 'asked once: no retry inside the download')
      assert.equal((error.cause as { code?: string }).code, errno, 'the raw error is kept as cause')
    })
  }

  test('an empty answer is a name without an address: not found', async () => {
    await fails(downloader({ lookup: async () => [] }).download('http://missing.test/a.png'), NOT_FOUND)
  })

  test('a redirect to a name that does not exist fails the same way', async () => {
    const lookup = failing('ENOTFOUND')
    const before = fixture.origin.hits.get('/redirect-to') ?? 0
    const target = encodeURIComponent('http://missing.test/a.png')
    await fails(
      downloader({ lookup, allowPrivateNetworks: true }).download(
        `${fixture.origin.url}/redirect-to?url=${target}`,
      ),
      NOT_FOUND,
    )
    assert.equal(fixture.origin.hits.get('/redirect-to'), before + 1)
    assert.equal(lookup.calls, 1)
  })
})

test('the retry policy retries an unavailable resolver and never a name that does not exist', async () => {
  const policy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.5 }
  const [gone, flaky] = await Promise.all(
    ['ENOTFOUND', 'EAI_AGAIN'].map((errno) =>
      downloader({ lookup: failing(errno) })
        .download('http://missing.test/a.png')
        .catch((error: unknown) => error),
    ),
  )
  assert.ok(isServiceError(gone) && isServiceError(flaky))
  assert.equal(retryDelay(policy, gone, 1), undefined)
  assert.equal(retryDelay(policy, flaky, 1), 50)
})

test('through the service: NXDOMAIN fails after one attempt, EAI_AGAIN is retried up to RETRY_MAX_ATTEMPTS', async (t) => {
  const calls = new Map<string, number>()
  const lookup = async (hostname: string): Promise<never> => {
    calls.set(hostname, (calls.get(hostname) ?? 0) + 1)
    const code = hostname === 'gone.test' ? 'ENOTFOUND' : 'EAI_AGAIN'
    throw Object.assign(new Error(`getaddrinfo ${code} ${hostname}`), { code })
  }
  const { run } = await startService(t, { env: { RETRY_MAX_ATTEMPTS: '3' }, overrides: { lookup } })
  const body = await run(['http://gone.test/a.png', 'http://flaky.test/a.png'])
  assert.deepEqual(
    body.items.map((item) => [item.state, item.attempts, item.reason?.code]),
    [
      ['failed', 1, 'download_dns_not_found'],
      ['failed', 3, 'download_dns_unavailable'],
    ],
  )
  assert.deepEqual(Object.fromEntries(calls), { 'gone.test': 1, 'flaky.test': 3 })
})
