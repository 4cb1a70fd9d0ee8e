import type { ImageStore } from './images.ts'
import { html, notFound, type Reply } from './replies.ts'

/** The pages outside the API: a home page and the image links (what i.imgur.com serves). */
export function sitePage(path: string, images: ImageStore): Reply {
  if (path === '/') {
    return html(
      200,
      'Imgur sandbox',
      'This is the Imgur sandbox: an emulator of the Imgur upload API for tests.',
    )
  }
  const link = /^\/([A-Za-z0-9]{7})\.([a-z0-9]+)$/.exec(path)
  const [id, ext] = [link?.[1] ?? '', link?.[2] ?? '']
  if (ext === 'gifv' && images.file(id, 'mp4') !== undefined) {
    return {
      status: 200,
      headers: { 'Content-Type': 'text/html; charset=utf-8' },
      body: `<!DOCTYPE html>\n<video src="${id}.mp4" autoplay loop muted controls></video>\n`,
    }
  }
  const file = images.file(id, ext)
  if (file === undefined) return notFound()
  return {
    status: 200,
    headers: { 'Content-Type': file.type, 'Cache-Control': 'no-store' },
    body: file.bytes,
  }
}
