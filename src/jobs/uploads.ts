/**
 * What de-duplication remembers: the link of image bytes already uploaded, keyed by the credential
 * they were uploaded with and their content hash, so a link (and its deletehash) never crosses
 * credentials. An upload in flight is held as its promise. Bounded by entries, least recently
 * used forgotten first: forgetting only costs a second upload of the same bytes.
 */
import { LruMap } from '../lru.ts'

/** An upload's link, and what an album needs of it (its image id and deletehash). */
export type Known = { link: string; imageId: string; deletehash: string }

export class Uploads extends LruMap<string, Known | Promise<Known>> {
  /** Forgets `key` if it still holds `value` (a failed upload must not drop a later one's entry). */
  forget(key: string, value: Known | Promise<Known>): void {
    if (this.get(key) === value) this.delete(key)
  }
}
