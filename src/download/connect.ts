import type { LookupAddress, LookupOptions } from 'node:dns'
import { lookup as dnsLookup } from 'node:dns/promises'
import type { LookupFunction } from 'node:net'
import { isServiceError, ServiceError } from '../errors.ts'
import { dnsFailure } from './failures.ts'

export type Resolve = (hostname: string) => Promise<Array<{ address: string; family: 4 | 6 }>>

/** The operating system's resolver, every address of the name. */
export const osLookup: Resolve = async (hostname) =>
  (await dnsLookup(hostname, { all: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }))

/** Which dialled addresses are refused. `allowPrivate` lifts the ban (tests, local demos). */
export type AddressPolicy = { allowPrivate: boolean; isBlocked: (address: string) => boolean }

const noAddress = (hostname: string) =>
  dnsFailure(Object.assign(new Error(`no usable address for ${hostname}`), { code: 'ENOTFOUND' }), hostname)

/**
 * The `lookup` the socket itself uses: one resolution, judged and then dialled, so DNS rebinding
 * has no second answer to slip in (a separate resolve-check-fetch is a TOCTOU hole). Every
 * answer is judged, not only the one picked: Happy Eyeballs may dial any of them. A resolver
 * failure is a DNS failure whatever its errno (a c-ares `ECONNREFUSED` is not the origin's).
 */
export function guardedLookup(resolve: Resolve, policy: AddressPolicy): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family
    resolve(hostname)
      .catch((error: unknown) => {
        throw isServiceError(error) ? error : dnsFailure(error, hostname)
      })
      .then((answers) => {
        if (!policy.allowPrivate && answers.some((a) => policy.isBlocked(a.address))) {
          throw new ServiceError(
            'download_blocked',
            `blocked: ${hostname} resolves to a private or reserved address`,
          )
        }
        const usable = answers.filter((a) => !family || a.family === family)
        if (usable.length === 0) throw noAddress(hostname)
        return usable
      })
      .then(
        (usable: LookupAddress[]) => {
          const [first] = usable as [LookupAddress]
          if (options.all) callback(null, usable)
          else callback(null, first.address, first.family)
        },
        (error: NodeJS.ErrnoException) => callback(error, ''),
      )
  }
}
