/**
 * Every answer the sandbox gives, in the shapes Imgur really uses (see
 * /work/shared/notes/imgur-api.md, "Errors — more than one shape, and not always JSON").
 */
export type Reply = {
  status: number
  headers?: Record<string, string>
  body?: string | Uint8Array
}

export const FAULTS = [
  'server-error',
  'unavailable-html',
  'unavailable-empty',
  'over-capacity',
  'rate-limited',
  'rate-limited-errors',
  'rate-limited-html',
  'reset',
  'no-image',
  'file-type-invalid',
  'forbidden-cdn',
  'invalid-client-id',
  'token-invalid',
  'too-large',
] as const

export type Fault = (typeof FAULTS)[number]

/** Where a reply goes: error bodies echo the path and method that were called. */
export type Call = { path: string; method: string }

export const MESSAGES = {
  noImage: 'No image data was sent to the upload api',
  tooLarge: 'File is over the size limit',
  corrupt: 'Image format not supported, or image is corrupt.',
  authRequired: 'Authentication required',
  malformedAuth: 'Malformed auth header',
  invalidClientId: 'Invalid client_id',
  tokenInvalid: 'The access token provided is invalid.',
  overCapacity: 'Imgur is temporarily over capacity. Please try again later.',
  rateLimited: 'Too Many Requests',
  serverError: 'Internal server error',
  forbidden: 'These actions are forbidden.',
  urlUpload:
    'Upload by URL is refused by the Imgur sandbox: the service must send the image bytes, never a URL',
} as const

export function json(status: number, value: unknown, headers: Record<string, string> = {}): Reply {
  return {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(value),
  }
}

/** Shape 1: `{"data":{"error","request","method"},"success":false,"status"}`. */
export function classicError(status: number, error: unknown, call: Call): Reply {
  return json(status, { data: { error, request: call.path, method: call.method }, success: false, status })
}

export function fileTypeInvalid(call: Call): Reply {
  const error = { code: 1003, message: 'File type invalid (1)', type: 'ImgurException', exception: {} }
  return classicError(400, error, call)
}

/** Over the size cap: 400 on /3/image; /3/upload answers 413 with a bare `legacy-api` object (seen 2024). */
export function tooLarge(call: Call, random: () => number): Reply {
  if (!call.path.startsWith('/3/upload')) return classicError(400, MESSAGES.tooLarge, call)
  const body = {
    id: legacyId(random),
    code: 413,
    detail: 'file is over the size limit',
    status: 'Request Entity Too Large',
  }
  return json(413, body)
}

export function html(
  status: number,
  title: string,
  text: string,
  headers: Record<string, string> = {},
): Reply {
  const page = `<!DOCTYPE html>\n<html><head><title>${title}</title></head><body><h1>${title}</h1><p>${text}</p></body></html>\n`
  return { status, headers: { 'Content-Type': 'text/html; charset=utf-8', ...headers }, body: page }
}

export function notFound(): Reply {
  return html(404, 'imgur: the simple 404 page', "Oops! We couldn't find that page.")
}

export function faultReply(fault: Exclude<Fault, 'reset'>, call: Call, random: () => number): Reply {
  switch (fault) {
    case 'server-error':
      return classicError(500, MESSAGES.serverError, call)
    case 'unavailable-html':
      // The CDN's page when the origin is slow (large uploads, ~15 s).
      return html(
        503,
        'Error 503 first byte timeout',
        'first byte timeout<br>Guru Mediation: Varnish cache server',
      )
    case 'unavailable-empty':
      return { status: 503 }
    case 'over-capacity':
      return classicError(403, MESSAGES.overCapacity, call)
    case 'rate-limited':
      return classicError(429, MESSAGES.rateLimited, call)
    case 'rate-limited-errors': {
      const error = {
        id: legacyId(random),
        code: '429',
        status: 'Too Many Requests',
        detail: 'Too Many Requests',
      }
      return json(429, { errors: [error] })
    }
    case 'rate-limited-html':
      return html(429, '429 Too Many Requests', 'You are being rate limited.')
    case 'no-image':
      return classicError(400, MESSAGES.noImage, call)
    case 'file-type-invalid':
      return fileTypeInvalid(call)
    case 'forbidden-cdn':
      return json(
        400,
        { data: { error: MESSAGES.forbidden }, success: false, status: 400 },
        { 'CDN-Error': 'yes' },
      )
    case 'invalid-client-id':
      return classicError(403, MESSAGES.invalidClientId, call)
    case 'token-invalid':
      return classicError(403, MESSAGES.tokenInvalid, call)
    case 'too-large':
      return tooLarge({ ...call, path: '/3/upload' }, random)
  }
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

export function randomAlnum(length: number, random: () => number): string {
  let text = ''
  for (let index = 0; index < length; index += 1) text += ALNUM[Math.floor(random() * ALNUM.length)] ?? 'a'
  return text
}

function legacyId(random: () => number): string {
  return `legacy-api-${randomAlnum(10, random).toLowerCase()}-${randomAlnum(5, random).toLowerCase()}`
}
