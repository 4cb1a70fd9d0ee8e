/**
 * What a webhook sends: a thin `job.completed` payload and its Standard Webhooks signature,
 * HMAC-SHA256 over `<id>.<timestamp>.<body>` keyed with the bytes of the `whsec_` secret
 * (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md).
 */
import { createHmac, randomUUID } from 'node:crypto'
import type { JobView } from '../jobs/contract.ts'

const SECRET = /^whsec_([A-Za-z0-9+/]+={0,2})$/

/** The key a `whsec_<base64>` secret stands for. */
export function signingKey(secret: string): Buffer {
  const base64 = SECRET.exec(secret)?.[1]
  if (base64 === undefined) throw new TypeError('Expected `secret` to be `whsec_` followed by base64')
  return Buffer.from(base64, 'base64')
}

/** The `webhook-signature` header: one `v1,<base64>` signature (the spec allows a space-separated list). */
export function signature(key: Buffer, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`
}

/** A message id, made once and sent on every attempt: receivers de-duplicate on it. */
export function messageId(): string {
  return `msg_${randomUUID().replaceAll('-', '')}`
}

/** The body of `job.completed`: ids and counts only. Its `timestamp` is when the job finished. */
export function completedMessage(job: JobView): string {
  let complete = 0
  let failed = 0
  for (const item of job.items) {
    if (item.state === 'complete') complete += 1
    else if (item.state === 'failed') failed += 1
  }
  const created = new Date(job.created).toISOString()
  const finished = new Date(job.finished ?? Date.now()).toISOString()
  return JSON.stringify({
    type: 'job.completed',
    timestamp: finished,
    data: { jobId: job.id, created, finished, complete, failed },
  })
}
