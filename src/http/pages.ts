/**
 * Pages of an append-only list (the links): a cursor is the opaque position of a page's first
 * entry. Positions never shift because the list only grows, so paging neither skips nor repeats
 * entries however many are added meanwhile. A cursor also carries the list's epoch, the store's
 * (random per process in memory, shared by a fleet): after a restart the list starts again empty, and an old cursor is `invalid_cursor` rather
 * than a page of something else.
 */
import { createHash, randomBytes } from 'node:crypto'
import { ServiceError } from '../errors.ts'

export const MAX_PAGE = 1_000

const LIMIT = /^[0-9]{1,4}$/
const CURSOR = /^([0-9a-f]{8})\.(0|[1-9][0-9]{0,14})$/

export type Page<T> = { entries: T[]; limit: number; next: string | null }

const once = (value: string) => () => value

export class Pager {
  readonly #name: () => string

  /**
   * `epoch` names the list now (the store's, read at each page: a fleet's Redis that lost its
   * data names its new list anew; default: this pager's own); cursors carry 8 hex digits of its hash.
   */
  constructor(epoch: () => string = once(randomBytes(4).toString('hex'))) {
    this.#name = epoch
  }

  get #epoch(): string {
    return createHash('sha256').update(this.#name()).digest('hex').slice(0, 8)
  }

  /** The page of `list` that `cursor` (default: the start) points at, of at most `limit` (default MAX_PAGE) entries. */
  page<T>(list: readonly T[], limit: string | undefined, cursor: string | undefined): Page<T> {
    const size = limit === undefined ? MAX_PAGE : parseLimit(limit)
    const start = cursor === undefined ? 0 : this.#position(cursor, list.length)
    const end = start + size
    return {
      entries: list.slice(start, end),
      limit: size,
      next: end < list.length ? Buffer.from(`${this.#epoch}.${end}`).toString('base64url') : null,
    }
  }

  #position(cursor: string, length: number): number {
    const decoded = /^[A-Za-z0-9_-]{1,64}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString() : ''
    const match = CURSOR.exec(decoded)
    const position = Number(match?.[2])
    if (match?.[1] !== this.#epoch || !(position <= length)) {
      throw new ServiceError(
        'invalid_cursor',
        'the cursor is not one this service gave (it may have restarted since): start again without a cursor',
      )
    }
    return position
  }
}

function parseLimit(limit: string): number {
  const size = LIMIT.test(limit) ? Number(limit) : 0
  if (size < 1 || size > MAX_PAGE) {
    throw new ServiceError(
      'invalid_limit',
      `limit must be an integer from 1 to ${MAX_PAGE}, got ${JSON.stringify(limit.slice(0, 32))}`,
    )
  }
  return size
}
