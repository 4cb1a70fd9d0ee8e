import assert from 'node:assert/strict'
import type { LookupOptions } from 'node:dns'
import { after, before, describe, test } from 'node:test'
import { request } from 'undici'
import { isBlockedAddress } from '../../src/download/address.ts'
import { createAgent } from '../../src/download/agent.ts'
import { type AddressPolicy, guardedLookup, type Resolve } from '../../src/download/connect.ts'
import { type Origin, startOrigin } from '../helpers/origin.ts'

const strict: AddressPolicy = { allowPrivate: false, isBlocked: isBlockedAddress }
const PUBLIC_V4 = { address: '8.8.8.8', family: 4 } as const
const PUBLIC_V6 = { address: '2606:4700::1111', family: 6 } as const

/** Calls a lookup the way net.connect does and returns what it hands back. */
function callLookup(resolve: Resolve, policy: AddressPolicy, options: LookupOptions) {
  return new Promise<{ error: (Error & { code?: string }) | null; address: unknown; family?: number }>(
    (done) => {
      guardedLookup(resolve, policy)('host.test', options, (error, address, family) =>
        done({ error, address, family }),
      )
    },
  )
}

describe('guardedLookup', () => {
  test('returns every answer when `all` is set (Happy Eyeballs), the first one otherwise', async () => {
    const resolve: Resolve = async () => [PUBLIC_V4, PUBLIC_V6]
    assert.deepEqual(await callLookup(resolve, strict, { all: true }), {
      error: null,
      address: [PUBLIC_V4, PUBLIC_V6],
      family: undefined,
    })
    assert.deepEqual(await callLookup(resolve, strict, {}), { error: null, address: '8.8.8.8', family: 4 })
    assert.deepEqual((await callLookup(resolve, strict, { all: true, family: 6 })).address, [PUBLIC_V6])
  })

  test('refuses the whole answer when any address in it is blocked', async () => {
    const resolve: Resolve = async () => [PUBLIC_V4, { address: '169.254.169.254', family: 4 }]
    const { error } = await callLookup(resolve, strict, { all: true })
    assert.equal(error?.code, 'download_blocked')
    assert.equal(error?.message, 'blocked: host.test resolves to a private or reserved address')
  })

  test('judges each call on its own answer (a resolver that changes its mind gains nothing)', async () => {
    let calls = 0
    const flipping: Resolve = async () =>
      calls++ % 2 === 0 ? [PUBLIC_V4] : [{ address: '10.0.0.7', family: 4 }]
    const results = [] as Array<string | undefined>
    for (let i = 0; i < 4; i++) {
      const { error, address } = await callLookup(flipping, strict, { all: true })
      results.push(error ? error.code : (address as Array<{ address: string }>)[0]?.address)
    }
    assert.deepEqual(results, ['8.8.8.8', 'download_blocked', '8.8.8.8', 'download_blocked'])
  })

  test('private answers pass when private networks are allowed', async () => {
    const resolve: Resolve = async () => [{ address: '127.0.0.1', family: 4 }]
    const { error, address } = await callLookup(resolve, { ...strict, allowPrivate: true }, { all: true })
    assert.equal(error, null)
    assert.deepEqual(address, [{ address: '127.0.0.1', family: 4 }])
  })

  test('resolver failures and empty answers surface as DNS errors, judged by errno', async () => {
    const failing =
      (code: string): Resolve =>
      async () => {
        throw Object.assign(new Error(`getaddrinfo ${code} host.test`), { code })
      }
    const codeOf = async (resolve: Resolve, options: LookupOptions = { all: true }) =>
      (await callLookup(resolve, strict, options)).error?.code
    assert.equal(await codeOf(failing('ENOTFOUND')), 'download_dns_not_found')
    assert.equal(await codeOf(failing('EAI_AGAIN')), 'download_dns_unavailable')
    assert.equal(
      await codeOf(failing('ECONNREFUSED')),
      'download_dns_unavailable',
      "the resolver's, not the origin's",
    )
    assert.equal(await codeOf(async () => []), 'download_dns_not_found')
    assert.equal(await codeOf(async () => [PUBLIC_V4], { family: 6 }), 'download_dns_not_found')
  })
})

describe('createAgent', () => {
  let origin: Origin
  before(async () => {
    origin = await startOrigin()
  })
  after(() => origin.close())

  test('judges literal IP hosts itself, since Node never calls lookup for them', async () => {
    const agent = createAgent(async () => [], strict, 5000)
    try {
      await assert.rejects(request(`${origin.url}/img/1.png`, { dispatcher: agent }), {
        code: 'download_blocked',
        message: 'blocked: private address literal',
      })
      assert.equal(origin.connections, 0)
    } finally {
      await agent.close()
    }
  })

  test('dials the address its lookup judged', async () => {
    const resolve: Resolve = async () => [{ address: '127.0.0.1', family: 4 }]
    const agent = createAgent(resolve, { allowPrivate: false, isBlocked: (ip) => ip !== '127.0.0.1' }, 5000)
    try {
      const { port } = new URL(origin.url)
      const response = await request(`http://origin.test:${port}/img/2.png`, { dispatcher: agent })
      assert.equal(response.statusCode, 200)
      await response.body.dump()
      assert.equal(origin.hits.get('/img/2.png'), 1)
    } finally {
      await agent.close()
    }
  })
})
