/**
 * What de-duplication remembers: the link of image bytes already uploaded, keyed by the credential
 * they were uploaded with and their content hash, so a link (and its deletehash) never crosses
 * credentials. An upload in flight is held as its promise. Bounded by entries, least recently
 * used forgotten first: forgetting only costs a second upload of the same bytes.
 */
import { LruMap } from '../lru.ts'

export class Uploads extends LruMap<string, string | Promise<string>> {
  /** Forgets `key` if it still holds `value` (a failed upload must not drop a later one's entry). */
  forget(key: string, value: string | Promise<string>): void {
    if (this.get(key) === value) this.delete(key)
  }
}
