/**
 * `imgur-upload keygen [name]`: a new API key for a service that sets API_KEYS. The service keeps
 * only the key's SHA-256 (src/http/access.ts), so the key itself is shown here once and nowhere else.
 */
import { createHash, randomBytes } from 'node:crypto'

/**
 * 32 random bytes in base64url behind a fixed prefix: the prefix makes a leaked key easy to
 * recognise (secret scanners) and keeps a key from starting with `-`, which would read as an option.
 */
export const KEY_PREFIX = 'iuk_'

export function createApiKey(name: string): { key: string; entry: string } {
  const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`
  return { key, entry: `${name}:${createHash('sha256').update(key).digest('hex')}` }
}

/** Both lines are ready to paste: the client's variable and the service's. */
export function formatApiKey({ key, entry }: { key: string; entry: string }): string {
  return `IMGUR_UPLOAD_API_KEY=${key}\nAPI_KEYS=${entry}\n`
}

export const KEYGEN_NOTE =
  'Give the key to its client (it is stored nowhere else); add the entry to API_KEYS on the service (entries are comma-separated) and restart it.\n'
