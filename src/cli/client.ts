/**
 * The command line's side of the API: submit a job, then follow it over Server-Sent Events,
 * falling back to polling the status route when the stream is unavailable or breaks off.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { StatusDocument } from '../http/schemas.ts'

const POLL_MS = 500
const POLL_FAILURES = 3

/** Where the service is, and the API key to send it (when it sets API_KEYS). */
export type Service = { server: string; apiKey: string | undefined }

/** The service could not be reached or refused the request: exit status 2. */
export class ServiceProblem extends Error {
  override name = 'ServiceProblem'
}

type ErrorBody = {
  error?: string
  message?: string
  details?: { invalid?: Array<{ index: number; reason: string }> }
}

export async function submitJob(service: Service, urls: string[], clientId?: string): Promise<string> {
  const response = await request(service, '/v1/images/upload', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(clientId === undefined ? { urls } : { urls, clientId }),
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
    throw new ServiceProblem(
      `cannot reach the service at ${server}: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
    )
  }
}
