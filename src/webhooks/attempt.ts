/**
 * One attempt at a delivery: the message POSTed with a fresh signature, through connections
 * guarded exactly as downloads are (same lookup, same address rules), its answer judged.
 */
import type { Agent } from 'undici'
import { checkHost, checkUrl, originOf } from '../download/address.ts'
import type { AddressPolicy } from '../download/connect.ts'
import { isServiceError } from '../errors.ts'
import { startDeadline } from '../signals.ts'
import { formatDuration } from '../units.ts'
import { signature } from './message.ts'
import { describe, judge, type Outcome } from './outcome.ts'

/** What every attempt of a delivery sends; only `webhook-timestamp` (and so the signature) changes. */
export type Message = {
  readonly url: string
  /** `webhook-id`: made once, the same on every attempt (receivers de-duplicate on it). */
  readonly id: string
  readonly body: string
}

/** What every attempt shares, made once. */
export type Sender = {
  /** Made with the first attempt: a service that sends no webhook never loads undici on its main thread. */
  readonly agent: () => Promise<Agent>
  readonly policy: AddressPolicy
  /** The service's own origins (PUBLIC_URL): never called back. */
  readonly ownOrigins: ReadonlySet<string>
  readonly key: Buffer
  readonly userAgent: string
  readonly timeoutMs: number
  /** The clock of `webhook-timestamp`. */
  readonly now: () => number
  /** Aborted at shutdown: attempts in flight stop. */
  readonly stop: AbortSignal
}

const DISCARD_LIMIT = 64 * 1024

export async function attempt(sender: Sender, { url: webhookUrl, id, body }: Message): Promise<Outcome> {
  const { policy, timeoutMs, stop } = sender
  const url = URL.parse(webhookUrl)
  if (url === null) return { ok: false, final: true, error: 'webhookUrl is not a valid URL' }
  try {
    checkUrl(url, 'download_bad_url')
    if (sender.ownOrigins.has(originOf(url))) {
      return { ok: false, final: true, error: 'blocked: the URL points at this service itself' }
    }
    checkHost(url, policy.allowPrivate, policy.isBlocked)
  } catch (error) {
    return { ok: false, final: true, error: describe(error, timeoutMs) }
  }
  const timestamp = Math.floor(sender.now() / 1000)
  const deadline = startDeadline(timeoutMs, stop)
  try {
    const agent = await sender.agent()
    const response = await agent.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': sender.userAgent,
        'webhook-id': id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signature(sender.key, id, timestamp, body),
      },
      body,
      signal: deadline.signal,
    })
    // Read (within the deadline) so the connection can be reused; what it says does not matter.
    await response.body.dump({ limit: DISCARD_LIMIT }).catch(() => {})
    return judge(response.statusCode, response.headers)
  } catch (error) {
    const timedOut = deadline.timedOut && !stop.aborted
    if (timedOut) return { ok: false, final: false, error: `no answer within ${formatDuration(timeoutMs)}` }
    const blocked = isServiceError(error) && error.code === 'download_blocked'
    return { ok: false, final: blocked, error: describe(error, timeoutMs) }
  } finally {
    deadline.clear()
  }
}
