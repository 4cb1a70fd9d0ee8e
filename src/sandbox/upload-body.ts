import { Request } from 'undici'

/**
 * What an upload request body carried, decided the way Imgur does: multipart, urlencoded or JSON
 * fields (`image`, `video`, `type`, `name`, `title`, `description`), or a raw `image/*` body.
 */
export type UploadBody =
  | {
      kind: 'file'
      field: 'image' | 'video'
      bytes: Uint8Array
      name: string | undefined
      title: string | undefined
      description: string | undefined
    }
  | { kind: 'url' }
  | { kind: 'empty' }
  /** `type=base64` with data that is not base64, or a body Imgur cannot read at all. */
  | { kind: 'corrupt' }

export type FieldValue = string | File

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/
const HTTP_URL = /^https?:\/\//i

export async function parseUploadBody(contentType: string | undefined, body: Buffer): Promise<UploadBody> {
  const mediaType = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  if (mediaType.startsWith('image/')) return file('image', new Uint8Array(body), {})
  const fields = await parseFields(contentType, body)
  if (fields === undefined) return body.length === 0 ? { kind: 'empty' } : { kind: 'corrupt' }
  return fromFields(fields)
}

/** Form (multipart or urlencoded) or JSON fields, each its first value; undefined for another or an unreadable body. */
export async function parseFields(
  contentType: string | undefined,
  body: Buffer,
): Promise<Map<string, FieldValue> | undefined> {
  const lists = await parseFieldLists(contentType, body)
  if (lists === undefined) return undefined
  const fields = new Map<string, FieldValue>()
  for (const [key, [first]] of lists) if (first !== undefined) fields.set(key, first)
  return fields
}

/**
 * Every value of every field, in the order sent (`ids[]` repeats; a JSON array of strings counts
 * as repeats too); undefined for another or an unreadable body.
 */
export async function parseFieldLists(
  contentType: string | undefined,
  body: Buffer,
): Promise<Map<string, FieldValue[]> | undefined> {
  const mediaType = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  try {
    if (mediaType === 'multipart/form-data' || mediaType === 'application/x-www-form-urlencoded') {
      return await formFields(contentType ?? '', body)
    }
    if (mediaType === 'application/json') return jsonFields(body)
  } catch {
    return undefined
  }
  return undefined
}

async function formFields(contentType: string, body: Buffer): Promise<Map<string, FieldValue[]>> {
  const request = new Request('http://sandbox.invalid/', {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  })
  const fields = new Map<string, FieldValue[]>()
  for (const [key, value] of await request.formData()) {
    const list = fields.get(key)
    if (list === undefined) fields.set(key, [value])
    else list.push(value)
  }
  return fields
}

function jsonFields(body: Buffer): Map<string, FieldValue[]> {
  const parsed: unknown = JSON.parse(body.toString('utf8'))
  const fields = new Map<string, FieldValue[]>()
  if (typeof parsed !== 'object' || parsed === null) return fields
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value === 'string') fields.set(key, [value])
    else if (Array.isArray(value)) {
      const strings = value.filter((entry): entry is string => typeof entry === 'string')
      if (strings.length > 0) fields.set(key, strings)
    }
  }
  return fields
}

async function fromFields(fields: Map<string, FieldValue>): Promise<UploadBody> {
  const text = (key: string) => {
    const value = fields.get(key)
    return typeof value === 'string' ? value : undefined
  }
  const type = text('type')?.trim().toLowerCase()
  const meta = { name: text('name'), title: text('title'), description: text('description') }
  const video = fields.get('video')
  const field = video !== undefined && !isEmpty(video) ? 'video' : 'image'
  const value = field === 'video' ? video : fields.get('image')
  if (value === undefined || isEmpty(value)) return type === 'url' ? { kind: 'url' } : { kind: 'empty' }
  if (type === 'url') return { kind: 'url' }

  if (typeof value === 'string') {
    if (HTTP_URL.test(value.trim())) return { kind: 'url' }
    const decoded = decodeBase64(value)
    if (decoded !== undefined) return file(field, decoded, meta)
    // Without `type`, Imgur sniffs: text that is not base64 is taken as the bytes themselves.
    return type === 'base64' ? { kind: 'corrupt' } : file(field, new Uint8Array(Buffer.from(value)), meta)
  }

  const bytes = new Uint8Array(await value.arrayBuffer())
  if (type !== 'base64') return file(field, bytes, meta)
  const decoded = decodeBase64(Buffer.from(bytes).toString('latin1'))
  return decoded === undefined ? { kind: 'corrupt' } : file(field, decoded, meta)
}

function decodeBase64(value: string): Uint8Array | undefined {
  const compact = value.replace(/\s+/g, '')
  if (compact.length === 0 || compact.length % 4 === 1 || !BASE64.test(compact)) return undefined
  return new Uint8Array(Buffer.from(compact, 'base64'))
}

function isEmpty(value: FieldValue): boolean {
  return typeof value === 'string' ? value.length === 0 : value.size === 0
}

function file(
  field: 'image' | 'video',
  bytes: Uint8Array,
  meta: { name?: string | undefined; title?: string | undefined; description?: string | undefined },
): UploadBody {
  if (bytes.length === 0) return { kind: 'empty' }
  return { kind: 'file', field, bytes, name: meta.name, title: meta.title, description: meta.description }
}
