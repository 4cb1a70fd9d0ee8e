import { type AlbumStore, albumImages } from './albums.ts'
import type { ImageStore } from './images.ts'
import { html, notFound, type Reply } from './replies.ts'

/** The pages outside the API: a home page, album pages and the image links (what i.imgur.com serves). */
export function sitePage(path: string, images: ImageStore, albums: AlbumStore): Reply {
  if (path === '/') {
    return html(
      200,
      'Imgur sandbox',
      'This is the Imgur sandbox: an emulator of the Imgur upload API for tests.',
    )
  }
  const album = /^\/a\/([A-Za-z0-9]+)\/?$/.exec(path)?.[1]
  if (album !== undefined) return albumPage(album, albums, images)
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

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)

/** The album's page (imgur.com/a/{id}): its title, description and every image, in order. */
export function albumPage(id: string, albums: AlbumStore, images: ImageStore): Reply {
  const album = albums.get(id)
  if (album === undefined) return notFound()
  const title = escapeHtml(album.title ?? 'Album')
  const figures = albumImages(album, images).map((image) => {
    const link = escapeHtml(String(image.link))
    const media =
      typeof image.mp4 === 'string' && image.mp4 !== ''
        ? `<video src="${escapeHtml(image.mp4)}" autoplay loop muted controls></video>`
        : `<img src="${link}" alt="" width="${Number(image.width)}" height="${Number(image.height)}">`
    return `<figure id="${escapeHtml(String(image.id))}">${media}</figure>`
  })
  const description = album.description === undefined ? '' : `<p>${escapeHtml(album.description)}</p>\n`
  const body =
    `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${title} - Album on Imgur</title>` +
    `<meta property="og:url" content="${escapeHtml(album.link)}"></head>\n` +
    `<body><h1>${title}</h1>\n${description}${figures.join('\n')}\n</body></html>\n`
  return {
    status: 200,
    headers: { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' },
    body,
  }
}
