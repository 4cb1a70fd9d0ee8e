/**
 * A typed client generated at test time from the live /openapi.json (swagger-typescript-api, into a
 * temp folder) drives the API over HTTP: a small program written against the client is type-checked
 * with tsc and then run. A route whose schema drifts from what it answers, or an operation renamed
 * or dropped, fails here.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { generateApi } from 'swagger-typescript-api'
import { apiKeys } from '../helpers/keys.ts'
import { startService } from '../helpers/service.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/**
 * What a client of the API writes. tsc checks it against the generated types: the operations'
 * names, parameters, bodies and answers. Errors come back as values (`disableThrowOnError`).
 */
const PROGRAM = `
import { Api } from './api.ts'

export function client(baseUrl: string, key?: string) {
  const api = new Api<string>({
    baseUrl,
    securityWorker: (token) => (token ? { headers: { authorization: \`Bearer \${token}\` } } : {}),
  })
  if (key !== undefined) api.setSecurityData(key)
  return {
    operations: { images: Object.keys(api.images).sort(), operations: Object.keys(api.operations).sort() },
    async submit(urls: string[]) {
      const answer = await api.images.submitJob({ urls })
      const jobId: string = answer.data?.jobId
      return { status: answer.status, location: answer.headers.get('location'), jobId, error: answer.error?.error }
    },
    async status(jobId: string) {
      const { data } = await api.images.getJobStatus(jobId)
      const status: 'pending' | 'in-progress' | 'complete' = data.status
      const states: Array<'pending' | 'complete' | 'failed'> = data.items.map((item) => item.state)
      return { status, states, links: data.items.map((item) => item.link), complete: data.uploaded.complete, finished: data.finished }
    },
    async links(): Promise<string[]> {
      return (await api.images.listLinks()).data.uploaded
    },
    async page(limit: string, cursor?: string) {
      const { data } = await api.images.listLinks({ limit, ...(cursor === undefined ? {} : { cursor }) })
      const next: string | null | undefined = data.next
      return { uploaded: data.uploaded, next }
    },
    async cancel(jobId: string) {
      const { status, data } = await api.images.cancelJob(jobId)
      const finished: string | null = data.finished
      return { status, job: data.status, finished }
    },
    async unknownJob(jobId: string) {
      const answer = await api.images.getJobStatus(jobId)
      const error: string = answer.error.error
      return { status: answer.status, error, message: answer.error.message }
    },
    async ready(): Promise<boolean> {
      return (await api.operations.getReadiness()).data.accepting
    },
  }
}
`

type Client = {
  operations: { images: string[]; operations: string[] }
  submit(urls: string[]): Promise<{ status: number; location: string | null; jobId: string; error?: string }>
  status(jobId: string): Promise<{
    status: string
    states: string[]
    links: unknown[]
    complete: string[]
    finished: string | null
  }>
  links(): Promise<string[]>
  page(limit: string, cursor?: string): Promise<{ uploaded: string[]; next: string | null | undefined }>
  cancel(jobId: string): Promise<{ status: number; job: string; finished: string | null }>
  unknownJob(jobId: string): Promise<{ status: number; error: string; message: string }>
  ready(): Promise<boolean>
}

/** Generates the client from the document at `base`, writes it and the program to a temp folder. */
async function generateClient(t: TestContext, base: string) {
  const document = await fetch(`${base}/openapi.json`)
  assert.equal(document.status, 200)
  const { files } = await generateApi({
    spec: await document.json(),
    output: false,
    fileName: 'api',
    httpClientType: 'fetch',
    moduleNameFirstTag: true,
    enumStyle: 'union',
    disableThrowOnError: true,
    silent: true,
  })
  assert.deepEqual(
    files.map((file) => `${file.fileName}${file.fileExtension}`),
    ['api.ts'],
  )
  const dir = await mkdtemp(join(tmpdir(), 'openapi-client-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n')
  await writeFile(join(dir, 'api.ts'), files[0]?.fileContent ?? '')
  await writeFile(join(dir, 'program.ts'), PROGRAM)
  return dir
}

test('a client generated from /openapi.json type-checks and drives the API: submit, status, links, 404', async (t) => {
  const { app, origin, service } = await startService(t)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const dir = await generateClient(t, base)

  // The generated client is written for fetch's DOM types (`Body`), hence lib dom.
  const tsc = join(ROOT, 'node_modules', '.bin', 'tsc')
  const flags = ['--noEmit', '--strict', '--target', 'es2024', '--module', 'nodenext']
  flags.push('--allowImportingTsExtensions', '--lib', 'es2024,dom', '--types', 'node')
  flags.push('--typeRoots', join(ROOT, 'node_modules', '@types'))
  await promisify(execFile)(tsc, [...flags, 'program.ts'], { cwd: dir }).catch((error) => {
    assert.fail(
      `the program does not type-check against the generated client:\n${error.stdout}${error.stderr}`,
    )
  })

  const { client } = (await import(join(dir, 'program.ts'))) as { client: (base: string) => Client }
  const api = client(base)
  assert.deepEqual(api.operations, {
    images: ['cancelJob', 'getJobStatus', 'listLinks', 'streamJobStatus', 'submitJob'],
    operations: ['getHealth', 'getMetrics', 'getReadiness'],
  })
  assert.equal(await api.ready(), true)

  const urls = [`${origin.url}/img/1.png`, `${origin.url}/img/2.jpg`]
  const submitted = await api.submit(urls)
  assert.equal(submitted.status, 202)
  assert.equal(submitted.location, `/v1/images/upload/${submitted.jobId}`)
  await service.queue.onIdle()

  const status = await api.status(submitted.jobId)
  assert.equal(status.status, 'complete')
  assert.deepEqual(status.states, ['complete', 'complete'])
  assert.deepEqual(status.links, status.complete)
  assert.deepEqual(await api.links(), status.complete)
  const first = await api.page('1')
  assert.deepEqual(first.uploaded, status.complete.slice(0, 1))
  assert.ok(first.next)
  assert.deepEqual(await api.page('1', first.next), { uploaded: status.complete.slice(1), next: null })
  // Cancelling a complete job changes nothing and answers its status.
  assert.deepEqual(await api.cancel(submitted.jobId), {
    status: 200,
    job: 'complete',
    finished: status.finished,
  })

  const unknown = await api.unknownJob('00000000-0000-4000-8000-000000000000')
  assert.equal(unknown.status, 404)
  assert.equal(unknown.error, 'job_not_found')
  assert.match(unknown.message, /no job with id/)
})

test('with API keys, the generated client sends its key as the bearer token the document declares', async (t) => {
  const { keys, API_KEYS } = apiKeys('alice')
  const { app, origin, service } = await startService(t, { env: { API_KEYS } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const dir = await generateClient(t, base)
  const { client } = (await import(join(dir, 'program.ts'))) as {
    client: (base: string, key?: string) => Client
  }

  const refused = await client(base).submit([`${origin.url}/img/1.png`])
  assert.equal(refused.status, 401)
  assert.equal(refused.error, 'unauthorized')
  assert.equal(await client(base).ready(), true, 'the operations routes stay open')

  const alice = client(base, keys.alice)
  const submitted = await alice.submit([`${origin.url}/img/1.png`])
  assert.equal(submitted.status, 202)
  await service.queue.onIdle()
  assert.equal((await alice.status(submitted.jobId)).status, 'complete')
  assert.equal((await alice.links()).length, 1)
})
