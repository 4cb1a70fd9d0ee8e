/**
 * Slow clients against REQUEST_TIMEOUT_MS, over real connections: a request must arrive whole in
 * time, a connection on which nothing moves is closed, and neither bound cuts a status stream or
 * an answer that is being read, however slowly.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { request } from 'undici'
import { startService } from '../helpers/service.ts'
import { closed, heldOrigin, longUrls, serverSockets, statusData } from '../helpers/streams.ts'

const BOUND_MS = 1000
const env = { REQUEST_TIMEOUT_MS: String(BOUND_MS) }
/** Far past the bound: without it, these tests would wait forever instead of failing. */
const SAFETY = { timeout: 30_000 }

/** A raw connection; `answer` resolves with every byte the service sent once the connection closes. */
async function rawClient(options: { host: string; port: number } | { path: string }) {
  const socket = connect(options)
  await once(socket, 'connect')
  const received: Buffer[] = []
  socket.on('data', (chunk: Buffer) => received.push(chunk))
  // The service may end the connection with a reset, or before a write of ours (EPIPE).
  socket.on('error', () => {})
  const answer = new Promise<string>((resolve) => {
    socket.on('close', () => resolve(Buffer.concat(received).toString('latin1')))
  })
  return { socket, answer }
}

function tcp(base: string) {
  const url = new URL(base)
  return { host: url.hostname, port: Number(url.port) }
}

/** A status stream read as it arrives; `done` settles when it ends, rejecting if it was cut. */
async function follow(url: string) {
  const response = await request(url)
  assert.equal(response.statusCode, 200)
  let text = ''
  let ended = false
  let wake = () => {}
  const done = (async () => {
    try {
      for await (const chunk of response.body) {
        text += chunk
        wake()
      }
    } finally {
      ended = true
      wake()
    }
  })()
  done.catch(() => {})
  return {
    get text() {
      return text
    },
    done,
    /** Resolves once the text so far satisfies `predicate`. */
    async until(predicate: (text: string) => boolean): Promise<void> {
      while (!predicate(text)) {
        if (ended) throw new Error(`the stream ended first: ${text}`)
        await new Promise<void>((resolve) => {
          wake = resolve
        })
      }
    },
  }
}

test('by default a request has 30 s to arrive, and so has a connection on which nothing moves', async (t) => {
  const { app } = await startService(t)
  assert.equal(app.server.requestTimeout, 30_000)
  assert.equal(app.server.headersTimeout, 30_000)
  assert.equal(app.server.timeout, 30_000)
})

test(
  'a body sent a byte at a time is cut off at REQUEST_TIMEOUT_MS with 408, and makes no job',
  SAFETY,
  async (t) => {
    const { app, run, origin } = await startService(t, { env })
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    const { socket, answer } = await rawClient(tcp(base))
    socket.write(
      'POST /v1/images/upload HTTP/1.1\r\nHost: service\r\nContent-Type: application/json\r\n' +
        'Content-Length: 1048000\r\n\r\n{"urls": [',
    )
    // A byte every 50 ms keeps the connection busy: only the bound on the whole request can end it.
    const drip = setInterval(() => socket.destroyed || socket.write(' '), 50)
    t.after(() => clearInterval(drip))
    const sent = await answer
    clearInterval(drip)
    // 408 and closed; a machine stalled past the bound may have the connection closed for inactivity first.
    assert.ok(sent === '' || sent.startsWith('HTTP/1.1 408 '), `answered: ${sent.slice(0, 200)}`)
    if (sent !== '') {
      assert.deepEqual(JSON.parse(sent.slice(sent.indexOf('\r\n\r\n') + 4)), {
        error: 'request_timeout',
        message: 'the request did not arrive whole within 1 s',
      })
    }
    // The service goes on: a prompt request is answered, and the first job it makes is the only one.
    const done = await run([`${origin.url}/img/1.png`])
    const health = await request(`${base}/health`)
    assert.equal(health.statusCode, 200)
    assert.equal(((await health.body.json()) as { queue: { jobs: number } }).queue.jobs, 1)
    assert.equal(done.status, 'complete')
  },
)

test(
  'a request after another on a kept-alive connection has the same bound: a dribbled body, or headers stopped halfway',
  SAFETY,
  async (t) => {
    const { app } = await startService(t, { env })
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    for (const second of ['dribbling', 'halfway'] as const) {
      const { socket, answer } = await rawClient(tcp(base))
      let first = ''
      const answered = new Promise<void>((resolve) => {
        socket.on('data', (chunk: Buffer) => {
          first += chunk.toString('latin1')
          if (first.includes('"status"')) resolve()
        })
      })
      socket.write('GET /health HTTP/1.1\r\nHost: service\r\n\r\n')
      await answered
      assert.ok(first.startsWith('HTTP/1.1 200 '), first.slice(0, 100))
      if (second === 'halfway') {
        socket.write('GET /health HTTP/1.1\r\nHost: service\r\n')
      } else {
        socket.write(
          'POST /v1/images/upload HTTP/1.1\r\nHost: service\r\nContent-Type: application/json\r\n' +
            'Content-Length: 1048000\r\n\r\n{"urls": [',
        )
        const drip = setInterval(() => socket.destroyed || socket.write(' '), 50)
        t.after(() => clearInterval(drip))
        socket.on('close', () => clearInterval(drip))
      }
      const sent = (await answer).slice(first.length)
      assert.ok(sent === '' || sent.startsWith('HTTP/1.1 408 '), `${second} answered: ${sent.slice(0, 200)}`)
    }
  },
)

test(
  'a connection that sends nothing, or stops halfway through its headers, is closed',
  SAFETY,
  async (t) => {
    const { app } = await startService(t, { env })
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    const silent = await rawClient(tcp(base))
    const halfway = await rawClient(tcp(base))
    halfway.socket.write('GET /health HTTP/1.1\r\nHost: service\r\n')
    for (const sent of await Promise.all([silent.answer, halfway.answer])) {
      assert.ok(sent === '' || sent.startsWith('HTTP/1.1 408 '), `answered: ${sent.slice(0, 200)}`)
    }
  },
)

test('requests Node refuses before any route are answered in our error format, then closed', async (t) => {
  const { app } = await startService(t)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const cases = [
    [
      `GET /health HTTP/1.1\r\nHost: service\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      '431 Request Header Fields Too Large',
      'headers_too_large',
    ],
    ['GET /health HTTP/9\r\n\r\n', '400 Bad Request', 'bad_request'],
  ] as const
  for (const [raw, status, error] of cases) {
    const { socket, answer } = await rawClient(tcp(base))
    socket.write(raw)
    const sent = await answer
    assert.ok(sent.startsWith(`HTTP/1.1 ${status}\r\n`), `answered: ${sent.slice(0, 200)}`)
    assert.match(sent, /content-type: application\/json/i)
    assert.equal(JSON.parse(sent.slice(sent.indexOf('\r\n\r\n') + 4)).error, error)
  }
})

test('a status stream outlives the bound while its job waits, and ends normally after complete', async (t) => {
  const held = await heldOrigin(t)
  const { app, submit } = await startService(t, { env })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const jobId = await submit([`${held.url}/a.png`])
  const stream = await follow(`${base}/v1/images/upload/${jobId}/events`)
  // Once its URL is being downloaded, the job does not change until the origin answers.
  const started = (text: string) => statusData(text).some((data) => JSON.parse(data).items[0].attempts === 1)
  await stream.until(started)
  const before = stream.text

  // A connection made after the stream's last write is closed by the bound: the stream has been
  // silent at least as long (its next ping is 15 s away), and is still open.
  const control = await rawClient(tcp(base))
  await control.answer
  assert.equal(stream.text, before, 'nothing was sent on the stream meanwhile')

  held.release()
  await stream.until((text) => statusData(text).some((data) => JSON.parse(data).status === 'complete'))
  await stream.done
})

test(
  'an answer read slowly, for longer than the bound, arrives whole; one never read is dropped',
  SAFETY,
  async (t) => {
    const { app, run, origin, status } = await startService(t, { env })
    // A Unix socket's buffers hold ~200 KB and never grow, so a 1.7 MB answer waits on its reader.
    const path = join(tmpdir(), `timeouts-${randomUUID().slice(0, 8)}.sock`)
    await app.listen({ path })
    const server = serverSockets(app.server)
    const job = await run(longUrls(origin.url, 600))
    const expected = JSON.stringify(await status(job.id))
    const ask = `GET /v1/images/upload/${job.id} HTTP/1.1\r\nHost: service\r\n\r\n`

    const unread = await rawClient({ path })
    unread.socket.pause()
    unread.socket.write(ask)
    await closed(server.of(unread.socket))
    unread.socket.destroy()

    const PAUSE_MS = 100
    const slow = connect({ path })
    await once(slow, 'connect')
    slow.write(ask)
    const chunks: Buffer[] = []
    let reads = 0
    let size = Number.POSITIVE_INFINITY
    for await (const chunk of slow as AsyncIterable<Buffer>) {
      chunks.push(chunk)
      reads++
      const raw = Buffer.concat(chunks)
      const headEnd = raw.indexOf('\r\n\r\n')
      const length = /\r\ncontent-length: (\d+)/i.exec(raw.toString('latin1', 0, headEnd))?.[1]
      if (headEnd >= 0 && length !== undefined) size = headEnd + 4 + Number(length)
      if (raw.length >= size) break
      await new Promise((resolve) => setTimeout(resolve, PAUSE_MS))
    }
    slow.destroy()
    const raw = Buffer.concat(chunks)
    assert.match(raw.toString('latin1', 0, 20), /^HTTP\/1\.1 200 /)
    assert.equal(raw.subarray(raw.indexOf('\r\n\r\n') + 4).toString('utf8'), expected)
    assert.ok(reads * PAUSE_MS > 2 * BOUND_MS, `read in ${reads} reads only`)
  },
)
