/**
 * What de-duplication remembers: the link of image bytes already uploaded, keyed by the credential
 * they were uploaded with and their content hash, so a link (and its deletehash) never crosses
 * credentials. An upload in flight is held as its promise. Bounded by entries, least recently
 * used forgotten first: forgetting only costs a second upload of the same bytes.
 */
export class Uploads {
  readonly #entries = new Map<string, string | Promise<string>>()
  readonly #maxEntries: number

  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new TypeError(`Expected \`maxEntries\` to be an integer >= 1, got \`${maxEntries}\``)
    }
    this.#maxEntries = maxEntries
  }

  get size(): number {
    return this.#entries.size
  }

  get(key: string): string | Promise<string> | undefined {
    const value = this.#entries.get(key)
    if (value !== undefined) {
      this.#entries.delete(key)
      this.#entries.set(key, value)
    }
    return value
  }

  set(key: string, value: string | Promise<string>): void {
    this.#entries.delete(key)
    this.#entries.set(key, value)
    if (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string
      this.#entries.delete(oldest)
    }
  }

  /** Forgets `key` if it still holds `value` (a failed upload must not drop a later one's entry). */
  forget(key: string, value: string | Promise<string>): void {
    if (this.#entries.get(key) === value) this.#entries.delete(key)
  }
}
