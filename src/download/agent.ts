/**
 * The undici Agent of downloads and webhook deliveries. Apart from connect.ts so that loading the
 * address rules does not load undici: the main thread makes one only for its first webhook.
 */
import { isIP } from 'node:net'
import { Agent, buildConnector } from 'undici'
import { ServiceError } from '../errors.ts'
import { type AddressPolicy, guardedLookup, type Resolve } from './connect.ts'

/**
 * One keep-alive Agent whose every new connection goes through the guarded lookup. Literal IP
 * hosts never reach a lookup hook (Node skips it), so the connector judges them itself.
 */
export function createAgent(resolve: Resolve, policy: AddressPolicy, timeoutMs: number): Agent {
  const connectTimeout = Math.min(timeoutMs, 10_000) // also bounds a hanging DNS lookup
  const base = buildConnector({
    timeout: connectTimeout,
    lookup: guardedLookup(resolve, policy),
    autoSelectFamily: true,
  })
  const connect: buildConnector.connector = (options, callback) => {
    if (!policy.allowPrivate && isIP(options.hostname) !== 0 && policy.isBlocked(options.hostname)) {
      callback(new ServiceError('download_blocked', 'blocked: private address literal'), null)
      return
    }
    base(options, callback)
  }
  // headersTimeout/bodyTimeout are backstops only: the total deadline (an AbortSignal) is what
  // stops a drip, since bodyTimeout resets on every chunk.
  return new Agent({ connect, headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
}
