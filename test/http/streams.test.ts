/**
 * Status streams under clients that do not read. These streams run over a Unix socket: its kernel
 * buffers hold about 200 KB and never grow, so a 2 MB status document is refused by the socket at
 * once, every time (on loopback TCP the kernel autotunes to ~4 MB, and Node cannot set SO_RCVBUF).
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import Fastify, { type FastifyRequest } from 'fastify'
import { Agent, request } from 'undici'
import { createEventStreams } from '../../src/http/events.ts'
import { createJob } from '../../src/jobs/model.ts'
import { MemoryJobStore } from '../../src/jobs/store.ts'
import { startService } from '../helpers/service.ts'
import {
  closed,
  dechunk,
  get,
  heldOrigin,
  longUrls,
  openUnread,
  readRest,
  serverSockets,
  statusData,
  text,
} from '../helpers/streams.ts'

/** The keep-alive ping's interval in src/http/events.ts. */
const PING_MS = 15_000

async function listenOnUnixSocket(t: TestContext, app: Awaited<ReturnType<typeof startService>>['app']) {
  const path = join(tmpdir(), `streams-${randomUUID().slice(0, 8)}.sock`)
  await app.listen({ path })
  const agent = new Agent({ connect: { socketPath: path } })
  t.after(() => agent.close())
  return { path, agent }
}

test('clients that never read hold one status document each, get only the newest when they read, and nothing is written after the end', async (t) => {
  const uncaught: unknown[] = []
  const record = (error: unknown) => uncaught.push(error)
  process.on('uncaughtException', record)
  t.after(() => process.off('uncaughtException', record))
  const held = await heldOrigin(t)
  const { app, service, submit, run, origin, status } = await startService(t, {
    env: { UPLOAD_CONCURRENCY: '16', PER_HOST_CONCURRENCY: '16' },
  })
  const { path, agent } = await listenOnUnixSocket(t, app)
  const server = serverSockets(app.server)
  const jobId = await submit(longUrls(held.url, 600))
  // The pings run on a mocked clock, so that the test can fire them whenever it wants.
  t.mock.timers.enable({ apis: ['setInterval'] })

  const unread: Array<Awaited<ReturnType<typeof openUnread>>> = []
  const streams: Socket[] = []
  for (let i = 0; i < 5; i++) {
    unread.push(await openUnread(path, jobId))
    streams.push(server.sockets.at(-1) as Socket)
  }
  for (const { head } of unread) assert.match(head, /^HTTP\/1\.1 200 /)
  let queuedMost = 0
  const sample = () => {
    for (const socket of streams) queuedMost = Math.max(queuedMost, socket.writableLength)
  }
  const unsubscribe = service.store.subscribe(jobId, sample)
  held.release()
  await service.queue.onIdle()
  t.mock.timers.tick(PING_MS * 4)
  sample()
  unsubscribe()

  const final = await app.inject({ method: 'GET', url: `/v1/images/upload/${jobId}` })
  assert.equal(final.json().status, 'complete')
  assert.equal(final.json().uploaded.failed.length, 600)
  const frame = Buffer.byteLength(`event: status\ndata: ${final.body}\n\n`)
  const bound = (streams[0] as Socket).writableHighWaterMark + frame + 64
  assert.ok(queuedMost <= bound, `a stream queued ${queuedMost} bytes; one status is ${frame}`)
  for (const socket of streams) {
    assert.ok(socket.writableLength > 0, 'the unread first status is still waiting')
    assert.ok(!socket.destroyed)
  }

  // The service keeps working: another job runs, and a reading client follows it to the end.
  const other = await run([`${origin.url}/img/1.png`])
  assert.equal(other.status, 'complete')
  const followed = await request(`http://service/v1/images/upload/${other.id}/events`, { dispatcher: agent })
  const events = statusData(await followed.body.text())
  assert.equal(events.at(-1), JSON.stringify(await status(other.id)))

  // Five more streams open on the finished job: each is ended with the final status unread.
  const late: Socket[] = []
  for (let i = 0; i < 5; i++) {
    unread.push(await openUnread(path, jobId))
    late.push(server.sockets.at(-1) as Socket)
  }
  for (const socket of late) {
    assert.ok(socket.writableLength > 0 && socket.writableLength <= bound)
    assert.ok(!socket.destroyed)
  }
  // Pings long after the end: a write after end() would raise ERR_STREAM_WRITE_AFTER_END here.
  t.mock.timers.tick(PING_MS * 4)
  await new Promise((resolve) => setImmediate(resolve))
  t.mock.timers.reset()

  // Clients that read again get the status they had started, then only the newest one.
  const received = await Promise.all(
    unread.map(async (client) => statusData(dechunk(await readRest(client)))),
  )
  for (const data of received.slice(0, 5)) {
    assert.equal(data.length, 2)
    assert.notEqual(JSON.parse(data[0] ?? '').status, 'complete')
  }
  for (const data of received.slice(5)) assert.equal(data.length, 1)
  for (const data of received) assert.equal(data.at(-1), final.body)
  assert.deepEqual(uncaught, [])
})

test('a stream whose client reads nothing for STREAM_IDLE_TIMEOUT_MS is closed, before its end or after, and frees its slot', async (t) => {
  const held = await heldOrigin(t)
  const { app, submit, run, origin, logs } = await startService(t, {
    env: { STREAM_IDLE_TIMEOUT_MS: '20', MAX_STREAMS_PER_CLIENT: '2' },
  })
  const { path, agent } = await listenOnUnixSocket(t, app)
  const server = serverSockets(app.server)
  const small = await run([`${origin.url}/img/2.png`])
  const finished = await run(longUrls(origin.url, 600))
  const running = await submit(longUrls(held.url, 600))

  // One stream ended with its final status unread, one of a job still in progress.
  await openUnread(path, finished.id)
  const ended = server.sockets.at(-1) as Socket
  await openUnread(path, running)
  const open = server.sockets.at(-1) as Socket
  await Promise.all([closed(ended), closed(open)])
  assert.equal(
    logs.filter((line) => line.includes('status stream closed: its client read nothing')).length,
    2,
  )

  // Both slots of this client are free again.
  const streams = await Promise.all(
    [1, 2].map(() => request(`http://service/v1/images/upload/${small.id}/events`, { dispatcher: agent })),
  )
  for (const stream of streams) {
    assert.equal(stream.statusCode, 200)
    assert.equal(JSON.parse(statusData(await stream.body.text()).at(-1) ?? '').status, 'complete')
  }
})

test('past MAX_STREAMS_PER_CLIENT or MAX_STREAMS a stream is refused with 429, Retry-After and a JSON error; a closed stream frees its slot', async (t) => {
  const held = await heldOrigin(t)
  const { app, submit } = await startService(t, { env: { MAX_STREAMS_PER_CLIENT: '2', MAX_STREAMS: '3' } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const server = serverSockets(app.server)
  const jobId = await submit([`${held.url}/a.png`, `${held.url}/b.png`])
  const path = `/v1/images/upload/${jobId}/events`
  const refusal = async (response: IncomingMessage) => {
    assert.equal(response.statusCode, 429)
    assert.equal(response.headers['retry-after'], '5')
    assert.match(String(response.headers['content-type']), /^application\/json/)
    const body = JSON.parse(await text(response))
    assert.equal(body.error, 'too_many_streams')
    return body.message as string
  }

  const first = await get(base, path, '127.0.0.1')
  const second = await get(base, path, '127.0.0.1')
  assert.deepEqual([first.statusCode, second.statusCode], [200, 200])
  assert.match(await refusal(await get(base, path, '127.0.0.1')), /^this client has 2 status streams open/)
  const third = await get(base, path, '127.0.0.2')
  assert.equal(third.statusCode, 200)
  assert.match(await refusal(await get(base, path, '127.0.0.3')), /^the service has 3 status streams open/)

  // A client that goes away frees its slot.
  const gone = server.of(first.socket as Socket)
  first.destroy()
  await closed(gone)
  const again = await get(base, path, '127.0.0.1')
  assert.equal(again.statusCode, 200)
  assert.match(await refusal(await get(base, path, '127.0.0.4')), /^the service has 3 status streams open/)

  // Streams that end with their job free theirs.
  held.release()
  for (const stream of [second, third, again]) {
    assert.equal(JSON.parse(statusData(await text(stream)).at(-1) ?? '').status, 'complete')
  }
  const after = await Promise.all([get(base, path, '127.0.0.1'), get(base, path, '127.0.0.1')])
  for (const stream of after) {
    assert.equal(stream.statusCode, 200)
    await text(stream)
  }

  const openapi = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
  const answers = openapi.paths['/v1/images/upload/{jobId}/events'].get.responses
  assert.match(answers['429'].description, /too_many_streams/)
  assert.ok(answers['429'].content['application/json'].schema)
})

test('stream options are checked at construction; clientOf decides whom a stream counts against', async (t) => {
  const store = new MemoryJobStore({ retentionCount: 10, retentionMs: 60_000 })
  t.after(() => store.close())
  const limits = { idleTimeoutMs: 60_000, maxStreams: 10, maxStreamsPerClient: 1 }
  assert.throws(() => createEventStreams(store, { ...limits, maxStreams: 0 }), {
    name: 'TypeError',
    message: 'Expected `maxStreams` to be an integer >= 1, got `0`',
  })
  assert.throws(() => createEventStreams(store, { ...limits, idleTimeoutMs: 1.5 }), {
    message: 'Expected `idleTimeoutMs` to be an integer >= 1, got `1.5`',
  })
  const events = createEventStreams(store, {
    ...limits,
    clientOf: (request) => String(request.headers['x-key']),
  })
  const job = createJob(['https://a.test/1.png'], ['https://a.test/1.png'])
  await store.add(job)
  const app = Fastify()
  app.addHook('preClose', async () => events.close())
  app.get('/events', async (request, reply) => events.stream(job, request, reply))
  // A client that is gone by the time its handler runs.
  const gone = async (request: FastifyRequest) => {
    request.raw.socket.destroy()
    await closed(request.raw.socket)
  }
  app.get('/gone', { preHandler: gone }, async (request, reply) => events.stream(job, request, reply))
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => app.close())
  const open = (key: string, path = '/events') => request(`${base}${path}`, { headers: { 'x-key': key } })
  await assert.rejects(open('c', '/gone'))
  const c = await open('c')
  assert.equal(c.statusCode, 200, 'the stream of a client gone early gave its slot back')
  const a = await open('a')
  assert.equal(a.statusCode, 200)
  const refused = await open('a')
  assert.equal(refused.statusCode, 429)
  assert.equal(((await refused.body.json()) as { code: string }).code, 'too_many_streams')
  const b = await open('b')
  assert.equal(b.statusCode, 200)
  await app.close()
  // Shutting down ends the open streams.
  assert.equal(statusData(await a.body.text()).length, 1)
  assert.equal(statusData(await b.body.text()).length, 1)
  assert.equal(statusData(await c.body.text()).length, 1)
})
