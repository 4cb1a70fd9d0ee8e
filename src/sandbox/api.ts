import type { IncomingMessage } from 'node:http'
import { type AlbumStore, readAlbumReply } from './albums.ts'
import { type Auth, type Caller, isFailure } from './auth.ts'
import type { ImageStore } from './images.ts'
import type { Payer, RateLimits } from './rate-limits.ts'
import { type Call, classicError, json, notFound, type Reply } from './replies.ts'
import { parseFields } from './upload-body.ts'

type Deps = {
  auth: Auth
  limits: RateLimits
  images: ImageStore
  albums: AlbumStore
  payerOf: (req: IncomingMessage, caller: Caller) => Payer
}

/** The /3 routes other than uploads and album creation: credits, read and delete an image, read an album. */
export function apiReply(req: IncomingMessage, call: Call, deps: Deps): Reply {
  const route = /^\/3\/(credits|image\/([A-Za-z0-9]+)|album\/([A-Za-z0-9]+))\/?$/.exec(call.path)
  if (route === null || (call.method !== 'GET' && call.method !== 'DELETE')) return notFound()
  const caller = deps.auth.authenticate(req.headers.authorization)
  if (isFailure(caller)) return classicError(caller.status, caller.message, call)
  const album = route[3]
  if (album !== undefined) return call.method === 'GET' ? readAlbumReply(album, call, deps) : notFound()
  const key = route[2]
  if (key === undefined) {
    if (call.method !== 'GET') return notFound()
    const { user, client } = deps.limits.snapshot(deps.payerOf(req, caller))
    // The docs give UserReset here as an epoch timestamp (the headers count seconds).
    const data = {
      UserLimit: user.limit,
      UserRemaining: user.remaining,
      UserReset: user.resetAt,
      ClientLimit: client.limit,
      ClientRemaining: client.remaining,
    }
    return json(200, { data, success: true, status: 200 })
  }
  if (call.method === 'DELETE') {
    // Unknown or already deleted: Imgur answers its HTML 404 page here, not JSON.
    return deps.images.remove(key) ? json(200, { data: true, success: true, status: 200 }) : notFound()
  }
  const data = deps.images.data(key)
  if (data === undefined) return classicError(404, `Unable to find an image with the id, ${key}`, call)
  return json(200, { data, success: true, status: 200 })
}

/** POST /oauth2/token: the success body is bare (no `data` wrapper), errors are classic. */
export async function tokenReply(req: IncomingMessage, body: Buffer, auth: Auth): Promise<Reply> {
  const fields = (await parseFields(req.headers['content-type'], body)) ?? new Map()
  const result = auth.refresh(fields)
  if (result.ok) return json(200, result.body)
  return classicError(400, result.message, { path: '/oauth2/token', method: 'POST' })
}
