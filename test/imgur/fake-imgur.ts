/**
 * A canned Imgur on 127.0.0.1:0: records every request and answers what the scenario says —
 * exact bytes, a destroyed socket, or nothing at all. Not the sandbox: the client's tests must
 * not agree with an emulator by construction.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Response } from 'undici'

export type Seen = { method: string; path: string; headers: IncomingHttpHeaders; body: Buffer }
export type Reply = { status: number; headers?: Record<string, string>; body?: string } | 'reset' | 'hang'
export type FakeImgur = { url: string; seen: Seen[]; close(): Promise<void> }

export async function startFakeImgur(respond: (request: Seen) => Reply | Promise<Reply>): Promise<FakeImgur> {
  const seen: Seen[] = []
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const request = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body: Buffer.concat(chunks),
    }
    seen.push(request)
    const reply = await respond(request)
    if (reply === 'hang') return
    if (reply === 'reset') {
      req.socket.destroy()
      return
    }
    res.writeHead(reply.status, reply.headers).end(reply.body ?? '')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

/** Parses a recorded multipart body the way a server would. */
export function formOf(request: Seen) {
  return new Response(request.body, {
    headers: { 'content-type': String(request.headers['content-type']) },
  }).formData()
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }
}

export function success(id = 'AbC1234'): Reply {
  return json(200, {
    status: 200,
    success: true,
    data: {
      id,
      deletehash: 'dEl3t3h4sh12345',
      link: `https://i.imgur.com/${id}.png`,
      type: 'image/png',
      size: 4,
    },
  })
}

export function classic(status: number, error: string, headers: Record<string, string> = {}): Reply {
  return json(
    status,
    { data: { error, request: '/3/image', method: 'POST' }, success: false, status },
    headers,
  )
}
