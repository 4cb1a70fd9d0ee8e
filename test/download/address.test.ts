import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { checkHost, isBlockedAddress } from '../../src/download/address.ts'

// [address, blocked]
const TABLE: Array<[string, boolean]> = [
  ['0.0.0.0', true],
  ['0.1.2.3', true],
  ['10.0.0.1', true],
  ['9.255.255.255', false],
  ['11.0.0.0', false],
  ['100.63.255.255', false],
  ['100.64.0.0', true],
  ['100.100.100.200', true], // Alibaba Cloud metadata
  ['100.127.255.255', true],
  ['100.128.0.0', false],
  ['127.0.0.1', true],
  ['127.255.255.254', true],
  ['169.254.169.254', true], // AWS/GCP/Azure metadata
  ['172.15.255.255', false],
  ['172.16.0.0', true],
  ['172.31.255.255', true],
  ['172.32.0.0', false],
  ['192.0.0.1', true],
  ['192.0.2.1', true],
  ['192.168.1.1', true],
  ['198.18.0.1', true],
  ['198.19.255.255', true],
  ['198.20.0.0', false],
  ['198.51.100.7', true],
  ['203.0.113.9', true],
  ['224.0.0.1', true],
  ['239.255.255.250', true],
  ['240.0.0.1', true],
  ['255.255.255.255', true],
  ['8.8.8.8', false],
  ['1.1.1.1', false],
  ['::', true],
  ['::1', true],
  ['fd00:ec2::254', true], // AWS metadata over IPv6
  ['FD00:EC2::254', true],
  ['fc00::1', true],
  ['fe80::1', true],
  ['fe80::1%eth0', true],
  ['fec0::1', true],
  ['ff02::1', true],
  ['100::1', true],
  ['2001:db8::1', true],
  ['2606:4700::1111', false],
  ['2001:4860:4860::8888', false],
  ['2606:4700::1111%eth0', true], // a zone id only makes sense on a scoped address: fail closed
  // IPv4-mapped
  ['::ffff:127.0.0.1', true],
  ['::ffff:7f00:1', true],
  ['::ffff:169.254.169.254', true],
  ['::ffff:8.8.8.8', false],
  ['::ffff:808:808', false],
  // IPv4-compatible (deprecated)
  ['::127.0.0.1', true],
  ['::8.8.8.8', false],
  // SIIT translated ::ffff:0:a.b.c.d
  ['::ffff:0:10.0.0.1', true],
  ['::ffff:0:8.8.8.8', false],
  // NAT64 well-known and local-use prefixes
  ['64:ff9b::169.254.169.254', true],
  ['64:ff9b::a9fe:a9fe', true],
  ['64:ff9b::808:808', false],
  // local-use 64:ff9b:1::/48 (RFC 8215) is blocked whole: its IPv4 may sit at any RFC 6052 offset
  ['64:ff9b:1::a00:1', true],
  ['64:ff9b:1::', true], // first address
  ['64:ff9b:1::8.8.8.8', true], // a public payload in the last 32 bits does not make it public
  ['64:ff9b:1:808:800::', true], // 8.8.8.8 at the /48 offset of RFC 6052
  ['64:ff9b:1:abcd:1234:5678:9abc:def0', true],
  ['64:ff9b:1:ffff:ffff:ffff:ffff:ffff', true], // last address
  ['64:ff9b:0:ffff:ffff:ffff:ffff:ffff', false], // just below
  ['64:ff9b:2::', false], // just above
  ['64:ff9b:2::808:808', false],
  // 6to4
  ['2002:a9fe:a9fe::1', true],
  ['2002:7f00:1::', true],
  ['2002:808:808::1', false],
  // Teredo: server 65.54.227.120, client = last 32 bits XOR ffffffff
  ['2001:0:4136:e378:8000:63bf:f5ff:fffe', true], // client 10.0.0.1
  ['2001:0:4136:e378:8000:63bf:80ff:fffe', true], // client 127.0.0.1
  ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', false], // client 8.8.8.8
  // not an IP at all: fail closed
  ['localhost', true],
  ['', true],
  ['not an ip', true],
  ['127.1', true],
  ['[::1]', true],
]

describe('isBlockedAddress', () => {
  test(`has at least 49 cases`, () => assert.ok(TABLE.length >= 49))
  for (const [address, blocked] of TABLE) {
    test(`${address || '(empty)'} → ${blocked ? 'blocked' : 'allowed'}`, () => {
      assert.equal(isBlockedAddress(address), blocked)
    })
  }

  test('every IPv6 embedding of an IPv4 address is judged like the IPv4 address itself', () => {
    const hex = (v4: string) => {
      const [a = 0, b = 0, c = 0, d = 0] = v4.split('.').map(Number)
      return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)]
    }
    const xor = (v4: string) =>
      hex(
        v4
          .split('.')
          .map((x) => Number(x) ^ 0xff)
          .join('.'),
      )
    fc.assert(
      fc.property(fc.ipV4(), (v4) => {
        const [hi, lo] = hex(v4)
        const [thi, tlo] = xor(v4)
        const forms = [
          `::ffff:${v4}`,
          `::ffff:${hi}:${lo}`,
          `64:ff9b::${v4}`,
          `2002:${hi}:${lo}::1`,
          `2001:0:4136:e378:8000:63bf:${thi}:${tlo}`,
        ]
        for (const form of forms) assert.equal(isBlockedAddress(form), isBlockedAddress(v4), form)
      }),
      { numRuns: 500 },
    )
  })

  test('every address in the local-use NAT64 prefix 64:ff9b:1::/48 is blocked, whatever it carries', () => {
    const word = fc.integer({ min: 0, max: 0xffff }).map((w) => w.toString(16))
    fc.assert(
      fc.property(fc.array(word, { minLength: 5, maxLength: 5 }), (words) => {
        const address = `64:ff9b:1:${words.join(':')}`
        assert.equal(isBlockedAddress(address), true, address)
      }),
      { numRuns: 500 },
    )
  })
})

describe('checkHost', () => {
  const blocked = (href: string, message: string) => {
    assert.throws(() => checkHost(new URL(href), false), { code: 'download_blocked', message })
  }

  test('denies local and internal host names, trailing dot and case included', () => {
    for (const href of [
      'http://localhost/',
      'http://LOCALHOST./',
      'http://foo.localhost/',
      'http://metadata.google.internal/computeMetadata/v1/',
      'http://db.internal./',
    ]) {
      blocked(href, 'blocked: host name not allowed')
    }
  })

  test('judges address literals in every spelling WHATWG URL folds', () => {
    for (const href of [
      'http://127.1/',
      'http://0x7f.1/',
      'http://2130706433/',
      'http://017700000001/',
      'http://0/',
      'http://[::ffff:7f00:1]/',
      'http://[::]/',
      'http://169.254.169.254/latest/meta-data/',
      'http://[fd00:ec2::254]/',
      'http://[64:ff9b:1::808:808]/',
    ]) {
      blocked(href, 'blocked: private address literal')
    }
  })

  test('lets public names and addresses through', () => {
    for (const href of [
      'https://example.com/a.png',
      'http://8.8.8.8/',
      'http://[2606:4700::1111]/',
      'http://i.imgur.com./',
    ]) {
      assert.doesNotThrow(() => checkHost(new URL(href), false))
    }
  })

  test('allowPrivate lifts the ban; a custom policy replaces the address list', () => {
    assert.doesNotThrow(() => checkHost(new URL('http://localhost/'), true))
    assert.doesNotThrow(() => checkHost(new URL('http://127.0.0.1/'), true))
    const onlyLoopbackOnePublic = (ip: string) => ip !== '127.0.0.1' && isBlockedAddress(ip)
    assert.doesNotThrow(() => checkHost(new URL('http://127.0.0.1/'), false, onlyLoopbackOnePublic))
    assert.throws(() => checkHost(new URL('http://127.0.0.2/'), false, onlyLoopbackOnePublic), {
      code: 'download_blocked',
    })
  })
})
