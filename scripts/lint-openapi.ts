/**
 * Lints the OpenAPI document as the app serves it, with API keys off and on, using Redocly CLI
 * (.redocly.yaml) and Spectral (.spectral.yaml). Any error or warning fails. Offline: the documents
 * come from buildApp (scripts/openapi.ts), and Redocly sends no telemetry and checks no version.
 * Usage: node scripts/lint-openapi.ts   (npm run lint:openapi)
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openApiDocument } from './openapi.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = (name: string) => join(root, 'node_modules', '.bin', name)
const dir = mkdtempSync(join(tmpdir(), 'openapi-lint-'))
try {
  const files = []
  for (const apiKeys of [false, true]) {
    const file = join(dir, apiKeys ? 'openapi-api-keys.json' : 'openapi.json')
    writeFileSync(file, await openApiDocument({ apiKeys }))
    files.push(file)
  }
  // Each CLI runs on this Node (24), whatever `node` the PATH finds first.
  const run = (cli: string, args: string[]) => {
    process.stdout.write(`\n${cli} ${args.join(' ')}\n`)
    return (
      spawnSync(process.execPath, [bin(cli), ...args], {
        cwd: root,
        stdio: 'inherit',
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      }).status === 0
    )
  }
  const redocly = run('redocly', ['lint', '--config', '.redocly.yaml', '--format', 'stylish', ...files])
  const spectral = run('spectral', [
    'lint',
    '--ruleset',
    '.spectral.yaml',
    '--fail-severity',
    'warn',
    ...files,
  ])
  if (!(redocly && spectral)) process.exitCode = 1
} finally {
  rmSync(dir, { recursive: true, force: true })
}
