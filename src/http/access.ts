/**
 * Access control (opt-in): with API_KEYS set, every /v1 route wants `Authorization: Bearer <key>`
 * (RFC 6750). The key is hashed with SHA-256 and compared, in constant time, with every configured
 * hash; the matching key's name becomes the request's `owner`. The page, its assets, the API
 * document and the operations routes stay open. Without keys nothing is checked and `owner` stays
 * undefined.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isIP } from 'node:net'
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  FastifyTypeProvider,
  RawServerDefault,
} from 'fastify'
import { parseIPv6 } from '../download/address.ts'
import { ServiceError } from '../errors.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key name the request authenticated with; undefined when API keys are off. */
    owner: string | undefined
  }
}

/** Who a request counts against: its key name, or its IP address when API keys are off. */
export const clientOf = (request: FastifyRequest): string => request.owner ?? request.ip

/**
 * Who a request's limits count against (submission rate, daily quota, streams): its key, else its
 * address as `addressClient` groups addresses.
 */
export const limitedAs = (request: FastifyRequest): string => request.owner ?? addressClient(request.ip)

/**
 * The client an address stands for: an IPv4 address itself (a dual-stack socket's ::ffff:a.b.c.d
 * too); for IPv6, its /64, the block a single subscriber is given (RFC 6177), so that a client
 * rotating through the addresses of its own /64 does not get fresh limits with each one.
 */
export function addressClient(ip: string): string {
  if (isIP(ip) !== 6) return ip
  const bytes = parseIPv6(ip.split('%')[0] as string)
  const word = (at: number) => (((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0)).toString(16)
  if (bytes.subarray(0, 10).every((byte) => byte === 0) && word(10) === 'ffff') {
    return Array.from(bytes.subarray(12)).join('.')
  }
  return `${[0, 2, 4, 6].map(word).join(':')}::/64`
}

/** The label metrics carry for a request: its key name, never a key or an address. */
export const keyLabel = (owner: string | undefined): string => owner ?? 'anonymous'

// RFC 6750 §2.1: `Bearer` (any case), one or more spaces, a b64token.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i

const refuse = (message: string, challenge: string) =>
  new ServiceError('unauthorized', message, { headers: { 'www-authenticate': challenge } })

/** Decorates requests with `owner` and, when keys are configured, checks them on every /v1 route. */
export function registerAccess<Log extends FastifyBaseLogger, Provider extends FastifyTypeProvider>(
  app: FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, Log, Provider>,
  apiKeys: ReadonlyMap<string, string>,
): void {
  app.decorateRequest('owner', undefined)
  if (apiKeys.size === 0) return
  const hashes = [...apiKeys].map(([name, hex]) => [name, Buffer.from(hex, 'hex')] as const)

  const ownerOf = (key: string): string | undefined => {
    const digest = createHash('sha256').update(key).digest()
    let owner: string | undefined
    // Every hash is compared, so the time taken does not tell which key came close.
    for (const [name, hash] of hashes) if (timingSafeEqual(digest, hash)) owner = name
    return owner
  }

  app.addHook('onRequest', async (request) => {
    // The matched route, not the raw path: encoded or doubled slashes cannot walk around the check.
    if (!request.routeOptions.url?.startsWith('/v1/')) return
    const header = request.headers.authorization
    const token = header === undefined ? undefined : BEARER.exec(header)?.[1]
    if (header === undefined || (token === undefined && !/^bearer(\s|$)/i.test(header))) {
      throw refuse('this API needs an API key: send `Authorization: Bearer <key>`', 'Bearer')
    }
    const owner = token === undefined ? undefined : ownerOf(token)
    if (owner === undefined) {
      throw refuse(
        'the API key is not valid',
        'Bearer error="invalid_token", error_description="the API key is not valid"',
      )
    }
    request.owner = owner
  })
}
