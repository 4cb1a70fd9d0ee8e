import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { copyFileSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { request } from 'undici'
import { stripSource, stripTree } from '../../scripts/strip-types.ts'
import { heicPhoto } from '../helpers/formats.ts'
import { startOrigin } from '../helpers/origin.ts'

const SOURCE = `import type { A } from './a.ts'
import { b } from '../b/b.ts'
import { readFileSync } from 'node:fs'
const c: number = 1
const d = await import('./d.ts')
const worker = new URL('./worker.ts', import.meta.url)
const text = 'a sentence about ./x.ts in a message'
export function f(x: A): string { return String(x) + b + c }
`

test('types become blanks, relative .ts specifiers become .js, lines stay where they were', () => {
  const named: string[] = []
  const out = stripSource(SOURCE, '/src/dir/file.ts', (path) => {
    named.push(path)
    return true
  })
  assert.equal(out.split('\n').length, SOURCE.split('\n').length)
  assert.match(out, /from '\.\.\/b\/b\.js'/)
  assert.match(out, /import\('\.\/d\.js'\)/)
  assert.match(out, /new URL\('\.\/worker\.js', import\.meta\.url\)/)
  assert.match(out, /from 'node:fs'/)
  assert.match(out, /'a sentence about \.\/x\.ts in a message'/)
  assert.match(out, /const c\s+= 1/)
  assert.match(out, /export function f\(x\s*\)\s*\{/)
  assert.doesNotMatch(out, /import type/)
  assert.deepEqual(named, ['/src/b/b.ts', '/src/dir/d.ts', '/src/dir/worker.ts'])
})

test('a specifier naming no source file stops the build', () => {
  assert.throws(
    () => stripSource(`import { b } from './gone.ts'\n`, '/src/file.ts', () => false),
    /\/src\/file\.ts: \.\/gone\.ts does not exist/,
  )
})

/** The layout of the Docker image: src/ as .js next to public/, package.json and node_modules. */
function imageLayout(): string {
  const dir = mkdtempSync(join(tmpdir(), 'strip-types-test-'))
  stripTree('src', join(dir, 'src'))
  copyFileSync('package.json', join(dir, 'package.json'))
  symlinkSync(resolve('public'), join(dir, 'public'))
  symlinkSync(resolve('node_modules'), join(dir, 'node_modules'))
  return dir
}

test('the stripped service runs as the image runs it: no .ts left, a HEIC converted in its worker thread', async (t) => {
  const dir = imageLayout()
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  // Only .js: a .ts file left behind would load Node's type stripper, which the image does without.
  const files = readdirSync(join(dir, 'src'), { recursive: true, withFileTypes: true }).filter((f) =>
    f.isFile(),
  )
  assert.ok(files.length > 50)
  assert.deepEqual(
    files.filter((f) => !f.name.endsWith('.js')).map((f) => f.name),
    [],
  )
  const origin = await startOrigin()
  t.after(() => origin.close())
  origin.put('/photo.heic', heicPhoto(), 'image/heic')

  const child = spawn(process.execPath, ['src/server.js'], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: '0',
      SANDBOX_PORT: '0',
      HOST: '127.0.0.1',
      FETCH_ALLOW_PRIVATE_NETWORKS: 'true',
      SHUTDOWN_TIMEOUT_MS: '1500',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.after(() => child.kill('SIGKILL'))
  const lines = createInterface({ input: child.stdout as NonNullable<ChildProcess['stdout']> })
  let base = ''
  for await (const text of lines) {
    const line = JSON.parse(text) as { msg?: string }
    base = /listening at (http:\/\/[\d.:]+)/.exec(String(line.msg))?.[1] ?? ''
    if (base !== '') break
  }
  assert.notEqual(base, '')

  const submitted = await request(`${base}/v1/images/upload`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ urls: [`${origin.url}/photo.heic`, `${origin.url}/img/1.png`] }),
  })
  assert.equal(submitted.statusCode, 202)
  const { jobId } = (await submitted.body.json()) as { jobId: string }
  const events = await (await request(`${base}/v1/images/upload/${jobId}/events`)).body.text()
  const final = JSON.parse(events.trim().split('\n').at(-1)?.slice('data: '.length) ?? '{}')
  assert.equal(final.status, 'complete')
  assert.deepEqual(final.uploaded.failed, [])
  assert.deepEqual(final.items[0].converted, { from: 'image/heic', to: 'image/jpeg' })

  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  assert.equal(code, 0)
})
