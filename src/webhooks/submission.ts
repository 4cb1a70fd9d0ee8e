/** The checks a submitted `webhookUrl` passes before a job is accepted. */
import { ServiceError } from '../errors.ts'
import { problemOf } from '../urls.ts'

/**
 * Refuses a webhook when the service has no secret to sign it with, and a URL that breaks the
 * download rules (http(s), no credentials, at most 2048 characters). Addresses are judged at
 * delivery, by the connection's own lookup, as for downloads.
 */
export function checkWebhookUrl(webhookUrl: string | undefined, enabled: boolean): void {
  if (webhookUrl === undefined) return
  if (!enabled) {
    throw new ServiceError(
      'webhooks_disabled',
      'webhooks are off on this service (WEBHOOK_SECRET is not set); submit without webhookUrl',
    )
  }
  const problem = problemOf(webhookUrl)
  if (typeof problem === 'string') {
    throw new ServiceError('invalid_webhook_url', `webhookUrl is invalid: ${problem}`)
  }
}
