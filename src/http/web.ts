/**
 * The page for people at `/` and its assets, read once at registration from `public/`.
 * No build step and no static-file plugin: four files do not need one.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { FastifyPluginAsync } from 'fastify'

export type WebOptions = { imgurMode: 'live' | 'sandbox' }

const PUBLIC = new URL('../../public/', import.meta.url)

const ASSETS = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/checks.js': ['checks.js', 'text/javascript; charset=utf-8'],
  '/app.css': ['app.css', 'text/css; charset=utf-8'],
} as const

// Thumbnails come from Imgur (or the sandbox, on another port), so images may load from anywhere;
// everything else stays on this origin.
const CSP = [
  "default-src 'self'",
  'img-src * data:',
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

export const web: FastifyPluginAsync<WebOptions> = async (app, { imgurMode }) => {
  for (const [path, [file, type]] of Object.entries(ASSETS)) {
    let body = readFileSync(new URL(file, PUBLIC), 'utf8')
    // The banner is pure CSS keyed on this attribute, so the page needs no API route to learn the mode.
    if (file === 'index.html')
      body = body.replace('<html lang="en"', `<html lang="en" data-imgur-mode="${imgurMode}"`)
    // No hashed file names without a build step: browsers revalidate each time and get a 304 while unchanged.
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`
    app.get(path, { schema: { hide: true } }, async (request, reply) => {
      reply
        .header('content-type', type)
        .header('cache-control', 'no-cache')
        .header('etag', etag)
        .header('x-content-type-options', 'nosniff')
      if (file === 'index.html') reply.header('content-security-policy', CSP)
      if (request.headers['if-none-match'] === etag) return reply.code(304).send()
      return body
    })
  }
}
