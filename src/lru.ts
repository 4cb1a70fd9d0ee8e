/**
 * A Map bounded by entries that forgets the least recently used first (a Map iterates in
 * insertion order, so re-inserting an entry makes it the most recent). `keep(value)` may protect
 * entries still in use: the map then exceeds `maxEntries` by at most those, until they are idle.
 */
export class LruMap<K, V> {
  readonly #entries = new Map<K, V>()
  readonly #maxEntries: number
  readonly #keep: ((value: V) => boolean) | undefined

  constructor(maxEntries: number, keep?: (value: V) => boolean) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new TypeError(`Expected \`maxEntries\` to be an integer >= 1, got \`${maxEntries}\``)
    }
    this.#maxEntries = maxEntries
    this.#keep = keep
  }

  get size(): number {
    return this.#entries.size
  }

  /** The value, made the most recently used. */
  get(key: K): V | undefined {
    const value = this.#entries.get(key)
    if (value !== undefined) {
      this.#entries.delete(key)
      this.#entries.set(key, value)
    }
    return value
  }

  /** The value, leaving its recency as it is. */
  peek(key: K): V | undefined {
    return this.#entries.get(key)
  }

  /** Stores `value` as the most recently used, then forgets the oldest entries over the bound. */
  set(key: K, value: V): void {
    this.#entries.delete(key)
    this.#entries.set(key, value)
    this.trim(key)
  }

  /** Forgets the least recently used entries over the bound, except kept ones and `spare`. */
  trim(spare?: K): void {
    let excess = this.#entries.size - this.#maxEntries
    if (excess <= 0) return
    for (const [old, held] of this.#entries) {
      if (old === spare || this.#keep?.(held)) continue
      this.#entries.delete(old)
      if (--excess === 0) return
    }
  }

  delete(key: K): void {
    this.#entries.delete(key)
  }

  /** Entries from the least to the most recently used. */
  entries(): IterableIterator<[K, V]> {
    return this.#entries.entries()
  }
}
