import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { png, upload } from './fixtures.ts'

const MAIN = fileURLToPath(new URL('../../src/sandbox/main.ts', import.meta.url))

function run(args: string[]) {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', () => {
      if (stdout.includes('\n')) resolve(stdout.slice(0, stdout.indexOf('\n')))
    })
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${stderr}`)))
  })
  firstLine.catch(() => {})
  return { child, firstLine, output: () => ({ stdout, stderr }) }
}

test('the standalone sandbox prints its URL, serves uploads and stops on SIGTERM', async () => {
  const { child, firstLine, output } = run(['--port', '0', '--public-url', 'http://imgur.sandbox.test'])
  const line = await firstLine
  const url = /^Imgur sandbox listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line)?.[1]
  assert.ok(url, line)
  const response = await upload(url, png())
  assert.equal(response.status, 200)
  assert.match(JSON.parse(response.text).data.link, /^http:\/\/imgur\.sandbox\.test\/\w{7}\.png$/)
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  assert.equal(code, 0)
  assert.equal(output().stdout, `${line}\n`)
  assert.equal(output().stderr, '')
})

test('a SIGTERM sent as soon as the sandbox says it listens closes it (exit 0), never kills it', async () => {
  const { child, firstLine, output } = run(['--port', '0'])
  await firstLine
  child.kill('SIGTERM')
  const [code, signal] = await once(child, 'exit')
  assert.deepEqual([code, signal], [0, null], output().stderr)
})

test('the standalone sandbox refuses a bad option', async () => {
  const { child, output } = run(['--latency-ms', 'soon'])
  const [code] = await once(child, 'exit')
  assert.equal(code, 2)
  assert.equal(output().stderr, 'imgur sandbox: Expected `--latency-ms` to be an integer >= 0, got `soon`\n')
  assert.equal(output().stdout, '')
})

test('the standalone sandbox refuses an unknown flag', async () => {
  const { child, output } = run(['--verbose'])
  const [code] = await once(child, 'exit')
  assert.equal(code, 2)
  assert.match(output().stderr, /^imgur sandbox: Unknown option '--verbose'/)
})
