import { BlockList, isIP } from 'node:net'
import { ServiceError } from '../errors.ts'

/** Ranges no download may reach (see shared/notes/secure-fetch.md). */
const blocked = new BlockList()
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network": connecting to 0.0.0.0 reaches local listeners on Linux
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT; Alibaba Cloud's metadata service lives here
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local: AWS/GCP/Azure metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4], // reserved, includes broadcast 255.255.255.255
] as const) {
  blocked.addSubnet(network, prefix, 'ipv4')
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  // NAT64 local-use (RFC 8215): a site's own translator may carry its IPv4 at any RFC 6052 offset,
  // so no embedded address can be trusted; nothing in it is public.
  ['64:ff9b:1::', 48],
  ['fc00::', 7], // unique local: AWS metadata is fd00:ec2::254
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
  ['100::', 64],
  ['2001:db8::', 32],
  ['3fff::', 20], // documentation (RFC 9637)
] as const) {
  blocked.addSubnet(network, prefix, 'ipv6')
}

/**
 * True when `ip` must not be dialled. Fails closed: anything that is not a plain IP address is
 * blocked, and so is any address carrying a zone id (only scoped, non-global addresses have one).
 */
export function isBlockedAddress(ip: string): boolean {
  if (ip.includes('%')) return true
  const family = isIP(ip)
  if (family === 4) return blocked.check(ip, 'ipv4')
  if (family !== 6) return true
  if (blocked.check(ip, 'ipv6')) return true
  return embeddedIPv4(parseIPv6(ip)).some((v4) => blocked.check(v4, 'ipv4'))
}

/** Every IPv4 address an IPv6 address carries by a known translation scheme; each is judged. */
function embeddedIPv4(b: Uint8Array): string[] {
  const zero = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0)
  const v4 = (at: number, mask = 0) => Array.from(b.subarray(at, at + 4), (x) => x ^ mask).join('.')
  const word = (at: number) => ((b[at] ?? 0) << 8) | (b[at + 1] ?? 0)
  const found: string[] = []
  // ::a.b.c.d (compatible), ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (SIIT translated)
  if (zero(0, 10) && (word(10) === 0 || word(10) === 0xffff)) found.push(v4(12))
  if (zero(0, 8) && word(8) === 0xffff && word(10) === 0) found.push(v4(12))
  // NAT64 well-known prefix 64:ff9b::/96 (the local-use /48 is blocked whole)
  if (word(0) === 0x64 && word(2) === 0xff9b && zero(4, 12)) found.push(v4(12))
  // 6to4: 2002:AABB:CCDD::/48
  if (word(0) === 0x2002) found.push(v4(2))
  // Teredo 2001:0:<server v4>:<flags>:<port>:<client v4 XOR ffffffff>; the client is where packets go
  if (word(0) === 0x2001 && word(2) === 0) found.push(v4(12, 0xff), v4(4))
  return found
}

/** Parses an address `isIP` already accepted as IPv6 into its 16 bytes. */
export function parseIPv6(ip: string): Uint8Array {
  let text = ip
  const tail: number[] = []
  const dotted = text.match(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/)
  if (dotted) {
    tail.push(...dotted.slice(1).map(Number))
    text = `${text.slice(0, dotted.index)}0:0`
  }
  const [head = '', rest] = text.split('::')
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)))
  const left = groups(head)
  const right = rest === undefined ? [] : groups(rest)
  const words = [...left, ...Array(8 - left.length - right.length).fill(0), ...right]
  const bytes = new Uint8Array(16)
  words.forEach((w, i) => {
    bytes[i * 2] = w >> 8
    bytes[i * 2 + 1] = w & 0xff
  })
  if (dotted) bytes.set(tail, 12)
  return bytes
}

/** Host names refused before any lookup: defence in depth, the address check is the real guard. */
function isDeniedName(host: string): boolean {
  return (
    host === '' ||
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host.endsWith('.internal') ||
    host === 'metadata.google.internal'
  )
}

/** Scheme, host and effective port: `HTTP://Up.example.:80` and `http://up.example` are one origin. */
export function originOf(url: URL): string {
  const port = url.port || (url.protocol === 'https:' ? '443' : '80')
  return `${url.protocol}//${url.hostname.replace(/\.+$/, '')}:${port}`
}

/** Scheme and credential rules, applied to the submitted URL and to every redirect target. */
export function checkUrl(url: URL, code: 'download_bad_url' | 'download_bad_redirect'): void {
  const subject = code === 'download_bad_url' ? 'URL' : 'origin redirected to a URL'
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ServiceError(code, `${subject} with scheme ${url.protocol} (only http and https are allowed)`)
  }
  if (url.username || url.password) throw new ServiceError(code, `${subject} with credentials`)
}

/**
 * Judges the host of an already parsed URL. `hostname` has been normalised by WHATWG URL (IDN,
 * IPv4 shorthand like `0x7f.1`), so literal addresses are checked here: Node skips the lookup hook
 * for them. Throws `download_blocked` without any network traffic.
 */
export function checkHost(url: URL, allowPrivate: boolean, isBlocked = isBlockedAddress): void {
  if (allowPrivate) return
  let host = url.hostname.toLowerCase().replace(/\.+$/, '')
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1)
  if (isIP(host) !== 0) {
    if (isBlocked(host)) throw new ServiceError('download_blocked', 'blocked: private address literal')
    return
  }
  if (isDeniedName(host)) throw new ServiceError('download_blocked', 'blocked: host name not allowed')
}
