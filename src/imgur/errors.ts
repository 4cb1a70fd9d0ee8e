/**
 * Every error Imgur answers, whatever its shape, classified into one stable code. Pure.
 * Shapes and status table: /work/shared/notes/imgur-api.md#errors--more-than-one-shape-and-not-always-json
 * The HTTP status is the truth; a `status` inside the body is ignored.
 */
import { type ErrorCode, ServiceError } from '../errors.ts'
import { type Headers, header, retryAfterHeaderMs, retryAfterMs } from './rate-limits.ts'

type Detail = { text?: string; code?: number | string }

const MAX_DETAIL = 120

function tidy(text: string): string | undefined {
  const flat = text
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#0?39;/g, "'")
    .replace(/[\s\p{Cc}]+/gu, ' ')
    .trim()
  if (flat === '') return undefined
  return flat.length > MAX_DETAIL ? `${flat.slice(0, MAX_DETAIL - 1)}…` : flat
}

function fromJson(value: unknown): Detail {
  if (typeof value !== 'object' || value === null) return {}
  const body = value as { data?: { error?: unknown }; errors?: unknown; error?: unknown; message?: unknown }
  const error = body.data?.error ?? body.error
  if (typeof error === 'string') return { text: tidy(error) }
  if (typeof error === 'object' && error !== null) {
    const { message, code } = error as { message?: unknown; code?: unknown }
    return {
      text: typeof message === 'string' ? tidy(message) : undefined,
      code: typeof code === 'number' || typeof code === 'string' ? code : undefined,
    }
  }
  if (Array.isArray(body.errors) && typeof body.errors[0] === 'object' && body.errors[0] !== null) {
    const first = body.errors[0] as { detail?: unknown; status?: unknown; code?: unknown }
    const text = [first.detail, first.status].find((part) => typeof part === 'string')
    return {
      text: typeof text === 'string' ? tidy(text) : undefined,
      code: String(first.code ?? '') || undefined,
    }
  }
  if (typeof body.message === 'string') return { text: tidy(body.message) }
  return {}
}

/** An HTML page (a CDN's or proxy's error page), not an answer of Imgur's API. */
export function isHtml(body: string): boolean {
  return /^<(!doctype|html)|<html[\s>]/i.test(body.trim())
}

/** What Imgur said, in a short line: JSON message, HTML <title>, or short plain text. */
export function describeImgurBody(status: number, body: string): Detail {
  const trimmed = body.trim()
  let detail: Detail = {}
  if (isHtml(trimmed)) {
    const title = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(trimmed)?.[1]
    const text = title === undefined ? undefined : tidy(title)
    if (text !== undefined && !text.endsWith('…')) detail = { text }
  } else if (trimmed !== '') {
    try {
      detail = fromJson(JSON.parse(trimmed))
    } catch {
      detail = { text: tidy(trimmed) }
    }
  }
  // HTML titles repeat the status ("503 first byte timeout"); the messages add it themselves.
  const text = detail.text?.replace(new RegExp(`^${status}\\s*`), '') || undefined
  return { ...detail, text }
}

function waitText(ms: number | undefined): string {
  if (ms === undefined) return 'Imgur gave no reset time'
  const minutes = Math.ceil(ms / 60_000)
  if (ms < 90_000) return `its budget resets in ${Math.ceil(ms / 1000)} s`
  return minutes < 90
    ? `its budget resets in ${minutes} min`
    : `its budget resets in ${Math.ceil(minutes / 60)} h`
}

/** `subject` names what was refused in the messages: an upload, or an album being made. */
export function parseImgurError(
  status: number,
  headers: Headers,
  body: string,
  now = Date.now(),
  subject: 'upload' | 'album' = 'upload',
): ServiceError {
  const { text, code } = describeImgurBody(status, body)
  const said = (text ?? '').toLowerCase()
  const details: Record<string, unknown> = { imgurStatus: status }
  if (code !== undefined) details.imgurCode = code
  if (text !== undefined) details.imgurMessage = text
  const fail = (errorCode: ErrorCode, message: string, retryable: boolean, wait?: number) =>
    new ServiceError(errorCode, message, { retryable, details, retryAfterMs: wait })
  const quoted = text ? ` (${text})` : ` (${status})`
  const withStatus = text ? ` (${status} ${text})` : ` (${status})`

  if (status === 429) {
    const wait = retryAfterMs(headers, now)
    return fail(
      'imgur_rate_limited',
      `Imgur's rate limit was reached${withStatus}; ${waitText(wait)}`,
      true,
      wait,
    )
  }
  // A Retry-After on an outage is a hint the retry policy honours (capped like a backoff).
  const asked = retryAfterHeaderMs(headers, now)
  if (said.includes('over capacity') && (status === 403 || status >= 500)) {
    return fail(
      'imgur_over_capacity',
      `Imgur is over capacity, often a block on this server's IP${withStatus}`,
      true,
      asked,
    )
  }
  if (status >= 500 || status === 408) {
    return fail('imgur_unavailable', `Imgur answered ${status}${text ? ` (${text})` : ''}`, true, asked)
  }
  if ((status === 400 || status === 403) && header(headers, 'cdn-error')?.trim().toLowerCase() === 'yes') {
    return fail(
      'imgur_forbidden',
      `Imgur's network refused the request${quoted} — an operator must act`,
      false,
    )
  }
  if (status === 413 || (status === 400 && said.includes('over the size limit'))) {
    return fail(
      'imgur_too_large',
      `Imgur refused the file as too large${quoted}; its API takes images up to 10 MB`,
      false,
    )
  }
  if (status === 400) {
    if (String(code) === '1003' || said.includes('file type invalid')) {
      return fail('imgur_rejected', `Imgur rejected the file type${quoted}`, false)
    }
    return fail('imgur_rejected', `Imgur rejected the ${subject}${quoted}`, false)
  }
  if (status === 401) return fail('imgur_auth', 'Imgur requires authentication (401)', false)
  if (status === 403) {
    if (said.includes('invalid client_id') || said.includes('malformed auth header')) {
      return fail('imgur_client_id_refused', `Imgur refused the client id${withStatus}`, false)
    }
    if (said.includes('access token') && said.includes('invalid')) {
      return fail('imgur_token_invalid', `Imgur refused the account's access token${withStatus}`, false)
    }
    return fail('imgur_forbidden', `Imgur refused the request${withStatus}`, false)
  }
  if (status >= 400) return fail('imgur_rejected', `Imgur refused the ${subject}${withStatus}`, false)
  return fail('imgur_bad_response', `Imgur answered with an unexpected status${withStatus}`, true)
}

export function networkError(cause: unknown): ServiceError {
  const code = (cause as { code?: unknown } | undefined)?.code
  const why = typeof code === 'string' && /^[A-Z0-9_]+$/.test(code) ? ` (${code})` : ''
  return new ServiceError('imgur_network', `The connection to Imgur failed${why}`, {
    retryable: true,
    cause,
  })
}

export function timeoutError(timeoutMs: number, cause: unknown): ServiceError {
  return new ServiceError('imgur_timeout', `Imgur did not answer within ${timeoutMs} ms`, {
    retryable: true,
    cause,
  })
}

export function cancelledError(cause?: unknown): ServiceError {
  return new ServiceError('cancelled', 'The upload to Imgur was cancelled', { cause })
}

/**
 * Imgur's error text may echo what we sent. Scrubbing happens on the raw body, before any
 * shortening could leave a recognisable prefix of a credential behind.
 */
export function redactText(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let redacted = text
  for (const secret of secrets) {
    if (secret && secret.length >= 4) redacted = redacted.split(secret).join('[redacted]')
  }
  return redacted
}
