/**
 * The command line's side of the API: submit a job, then follow it over Server-Sent Events,
 * falling back to polling the status route when the stream is unavailable or breaks off; cancel one.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { StatusDocument, UploadBody } from '../http/schemas.ts'

const POLL_MS = 500
const POLL_FAILURES = 3
const SUBMIT_RETRY_MS = 500
/** How long a completed job's webhook is waited for, and how often its status is read meanwhile. */
const WEBHOOK_WAIT_MS = 3000
const WEBHOOK_POLL_MS = 250

/** Where the service is, and the API key to send it (when it sets API_KEYS). */
export type Service = { server: string; apiKey: string | undefined }

/** The service could not be reached or refused the request: exit status 2. */
export class ServiceProblem extends Error {
  override name = 'ServiceProblem'
}

/** No answer came: the connection failed or broke off before one. */
class Unreachable extends ServiceProblem {
  override name = 'Unreachable'
}

type ErrorBody = {
  error?: string
  message?: string
  details?: { invalid?: Array<{ index: number; reason: string }> }
}

/**
 * Submits the job and resolves with its id. A connection that fails before the answer is tried
 * once more with the same Idempotency-Key, so a job the service took the first time is answered
 * again rather than taken twice.
 */
export async function submitJob(
  service: Service,
  submission: UploadBody & { urls: string[] },
): Promise<string> {
  const { urls } = submission
  const init = {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
    body: JSON.stringify(submission),
  }
  const response = await request(service, '/v1/images/upload', init).catch(async (error: unknown) => {
    if (!(error instanceof Unreachable)) throw error
    await sleep(SUBMIT_RETRY_MS)
    return request(service, '/v1/images/upload', init)
  })
  const body = (await response.json().catch(() => ({}))) as ErrorBody & { jobId?: string }
  if (response.status === 202 && typeof body.jobId === 'string') return body.jobId
  if (response.status === 401) throw unauthorized(service, body)
  const lines = (body.details?.invalid ?? []).map(
    ({ index, reason }) => `\n  ${urls[index] ?? `#${index}`}: ${reason}`,
  )
  const code = body.error ? ` ${body.error}` : ''
  throw new ServiceProblem(
    `the service refused the job (HTTP ${response.status}${code}): ${body.message ?? 'no explanation given'}${lines.join('')}`,
  )
}

/**
 * Cancels the job and resolves with its final status: the cancel's own answer, or, when that is
 * not complete yet (an album still being made of the uploaded images), the status it then reaches.
 */
export async function cancelJob(service: Service, jobId: string): Promise<StatusDocument> {
  const path = `/v1/images/upload/${encodeURIComponent(jobId)}/cancel`
  const response = await request(service, path, { method: 'POST' })
  const body = (await response.json().catch(() => ({}))) as StatusDocument & ErrorBody
  if (response.status === 401) throw unauthorized(service, body)
  if (response.status === 404 && body.error === 'job_not_found')
    throw new ServiceProblem(`the service knows no job ${jobId}`)
  if (response.status !== 200) {
    const code = body.error ? ` ${body.error}` : ''
    throw new ServiceProblem(
      `the service refused to cancel job ${jobId} (HTTP ${response.status}${code}): ${body.message ?? 'no explanation given'}`,
    )
  }
  return body.status === 'complete' ? body : followJob(service, jobId, () => {})
}

/**
 * A webhook is called once its job is complete, so the status that says `complete` shows it not
 * tried yet. Waits briefly for the first attempt's outcome; resolves with the newest status seen.
 */
export async function awaitWebhook(service: Service, status: StatusDocument): Promise<StatusDocument> {
  const deadline = Date.now() + WEBHOOK_WAIT_MS
  let current = status
  while (current.webhook?.state === 'pending' && current.webhook.attempts === 0 && Date.now() < deadline) {
    await sleep(WEBHOOK_POLL_MS)
    const response = await request(service, `/v1/images/upload/${encodeURIComponent(status.id)}`).catch(
      () => undefined,
    )
    const next = response?.status === 200 ? await response.json().catch(() => undefined) : undefined
    if (next === undefined) {
      await response?.body?.cancel().catch(() => {})
      break
    }
    current = next as StatusDocument
  }
  return current
}

/** Calls `onStatus` with every status seen and resolves with the complete one. */
export async function followJob(
  service: Service,
  jobId: string,
  onStatus: (status: StatusDocument) => void,
): Promise<StatusDocument> {
  const last = await followEvents(service, jobId, onStatus).catch(() => undefined)
  if (last?.status === 'complete') return last
  return pollJob(service, jobId, onStatus)
}

/** Reads the event stream until `complete`; undefined or an unfinished status when it cannot. */
async function followEvents(service: Service, jobId: string, onStatus: (status: StatusDocument) => void) {
  const response = await request(service, `/v1/images/upload/${encodeURIComponent(jobId)}/events`, {
    headers: { accept: 'text/event-stream' },
  })
  if (!response.ok || !response.headers.get('content-type')?.startsWith('text/event-stream')) {
    await response.body?.cancel()
    return undefined
  }
  let last: StatusDocument | undefined
  let buffer = ''
  for await (const chunk of response.body?.pipeThrough(new TextDecoderStream()) ?? []) {
    buffer += chunk.replaceAll('\r\n', '\n')
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const event = parseEvent(buffer.slice(0, end))
      buffer = buffer.slice(end + 2)
      if (event?.name !== 'status') continue
      last = JSON.parse(event.data) as StatusDocument
      onStatus(last)
      if (last.status === 'complete') return last
    }
  }
  return last
}

/** One SSE block (https://html.spec.whatwg.org/multipage/server-sent-events.html): its type and data. */
function parseEvent(block: string): { name: string; data: string } | undefined {
  let name = 'message'
  const data: string[] = []
  for (const line of block.split('\n')) {
    const colon = line.indexOf(':')
    if (colon === 0) continue
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'event') name = value
    else if (field === 'data') data.push(value)
  }
  return data.length > 0 ? { name, data: data.join('\n') } : undefined
}

async function pollJob(
  service: Service,
  jobId: string,
  onStatus: (status: StatusDocument) => void,
): Promise<StatusDocument> {
  for (let failures = 0; ; ) {
    let response: Response
    try {
      response = await request(service, `/v1/images/upload/${encodeURIComponent(jobId)}`)
      failures = 0
    } catch (error) {
      // A restart or a blip should not lose the job; a service that stays away should.
      if (++failures >= POLL_FAILURES) throw error
      await sleep(POLL_MS * failures)
      continue
    }
    const body = (await response.json().catch(() => ({}))) as StatusDocument & ErrorBody
    if (response.status === 401) throw unauthorized(service, body)
    if (response.status === 404) throw new ServiceProblem(`the service no longer knows job ${jobId}`)
    if (!response.ok) throw new ServiceProblem(`job status answered HTTP ${response.status}: ${body.message}`)
    onStatus(body)
    if (body.status === 'complete') return body
    await sleep(POLL_MS)
  }
}

function unauthorized(service: Service, body: ErrorBody): ServiceProblem {
  return new ServiceProblem(
    service.apiKey === undefined
      ? 'the service needs an API key: pass --api-key or set IMGUR_UPLOAD_API_KEY'
      : `the service refused the API key (HTTP 401): ${body.message ?? 'no explanation given'}`,
  )
}

async function request({ server, apiKey }: Service, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers)
  if (apiKey !== undefined) headers.set('authorization', `Bearer ${apiKey}`)
  try {
    return await fetch(`${server}${path}`, { ...init, headers })
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    throw new Unreachable(
      `cannot reach the service at ${server}: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
    )
  }
}
