import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { classifyError } from '../../src/download/failures.ts'
import { formatBytes, formatDuration } from '../../src/units.ts'

const context = {
  url: new URL('https://img.example/a.png'),
  reading: false,
  timeoutMs: 30_000,
  timedOut: false,
}
const errno = (code: string, message = `${code} 10.0.0.5:6379`) => Object.assign(new Error(message), { code })

describe('classifyError', () => {
  const cases: Array<[string, unknown, Partial<typeof context>, string, boolean, string]> = [
    [
      'deadline',
      new DOMException('x', 'TimeoutError'),
      { timedOut: true },
      'download_timeout',
      true,
      'download did not finish within 30 s',
    ],
    [
      'headers timeout',
      errno('UND_ERR_HEADERS_TIMEOUT'),
      {},
      'download_timeout',
      true,
      'download did not finish within 30 s',
    ],
    [
      'connect timeout',
      errno('UND_ERR_CONNECT_TIMEOUT'),
      {},
      'download_timeout',
      true,
      'download did not finish within 30 s',
    ],
    [
      'NXDOMAIN',
      errno('ENOTFOUND'),
      {},
      'download_dns_not_found',
      false,
      'host img.example not found in DNS',
    ],
    [
      'resolver temporarily failing (SERVFAIL, timeout)',
      errno('EAI_AGAIN'),
      {},
      'download_dns_unavailable',
      true,
      'DNS lookup for host img.example failed temporarily',
    ],
    ['refused', errno('ECONNREFUSED'), {}, 'download_network', true, 'connection refused by origin'],
    ['reset before headers', errno('ECONNRESET'), {}, 'download_network', true, 'connection reset by origin'],
    [
      'reset mid-body',
      errno('UND_ERR_SOCKET'),
      { reading: true },
      'download_truncated',
      true,
      'origin closed the connection before the body was complete',
    ],
    [
      'Happy Eyeballs: every attempt failed',
      new AggregateError([errno('ECONNREFUSED'), errno('ECONNREFUSED')]),
      {},
      'download_network',
      true,
      'connection refused by origin',
    ],
    ['unreachable', errno('ENETUNREACH'), {}, 'download_network', true, 'origin is unreachable'],
    [
      'bad certificate',
      errno('CERT_HAS_EXPIRED'),
      {},
      'download_network',
      false,
      "origin's TLS certificate is not valid",
    ],
    [
      'TLS protocol error',
      errno('ERR_SSL_WRONG_VERSION_NUMBER'),
      {},
      'download_network',
      true,
      'TLS handshake with origin failed',
    ],
    [
      'anything else',
      new Error('boom 10.0.0.5'),
      {},
      'download_network',
      true,
      'could not download from origin',
    ],
  ]
  for (const [name, error, overrides, code, retryable, message] of cases) {
    test(name, () => {
      const result = classifyError(error, { ...context, ...overrides })
      assert.deepEqual([result.code, result.retryable, result.message], [code, retryable, message])
      assert.equal(result.cause, error, 'the raw error is kept as cause, out of the message')
    })
  }
})

test('formatBytes and formatDuration read well', () => {
  assert.deepEqual([10 * 2 ** 20, 64 * 1024, 1536, 1000, 2 ** 30].map(formatBytes), [
    '10 MiB',
    '64 KiB',
    '1.5 KiB',
    '1000 bytes',
    '1 GiB',
  ])
  assert.deepEqual([30_000, 1500, 300].map(formatDuration), ['30 s', '1.5 s', '300 ms'])
})
