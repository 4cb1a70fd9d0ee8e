import type { IncomingMessage } from 'node:http'
import type { AlbumRecord } from './albums.ts'
import { pathOf } from './http.ts'
import type { UploadRecord } from './images.ts'
import type { Fault } from './replies.ts'

export type RequestRecord = Readonly<{
  method: string
  path: string
  /** The answered status; 0 when the connection was reset instead. */
  status: number
  /**
   * The Authorization header without its credential: the scheme and a keyed hash of the credential
   * (see `Sandbox.authTag`), so records can be kept, logged or printed; undefined without a header.
   */
  authTag: string | undefined
  fault?: Fault
}>

/**
 * What the sandbox remembers for tests: the newest `maxRecords` requests, uploads and albums, each
 * list (10,000 by default: a few MB, albums' image lists aside), and a count of every upload.
 */
export function createRecords(maxRecords: number, tag: (header: string | undefined) => string | undefined) {
  const requests: RequestRecord[] = []
  const uploads: UploadRecord[] = []
  const albums: AlbumRecord[] = []
  let uploadCount = 0

  function keep<T>(list: T[], entry: T): void {
    list.push(entry)
    if (list.length > maxRecords) list.shift()
  }

  return {
    requests: requests as ReadonlyArray<RequestRecord>,
    uploads: uploads as ReadonlyArray<UploadRecord>,
    albums: albums as ReadonlyArray<AlbumRecord>,
    get uploadCount(): number {
      return uploadCount
    },
    request(req: IncomingMessage, status: number, fault?: Fault): void {
      const entry = {
        method: req.method ?? 'GET',
        path: pathOf(req),
        status,
        authTag: tag(req.headers.authorization),
      }
      keep(requests, Object.freeze(fault === undefined ? entry : { ...entry, fault }))
    },
    upload(record: UploadRecord): void {
      keep(uploads, record)
      uploadCount += 1
    },
    album(record: AlbumRecord): void {
      keep(albums, record)
    },
    clear(): void {
      requests.length = 0
      uploads.length = 0
      albums.length = 0
      uploadCount = 0
    },
  }
}
