/**
 * The OpenAPI document the app serves at /openapi.json, built from the route schemas with
 * buildApp: nothing listens and nothing is dialled. With `apiKeys`, the document of a service that
 * requires API keys (its /v1 operations then name the bearer scheme and answer 401).
 * Usage: node scripts/openapi.ts [--api-keys] [out.json]   (without a file: standard output)
 */
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { createApiKey } from '../src/cli/keygen.ts'
import { loadConfig } from '../src/config.ts'
import { buildApp } from '../src/http/app.ts'
import { createLogger } from '../src/log.ts'
import { createService } from '../src/service.ts'

export async function openApiDocument({ apiKeys }: { apiKeys: boolean }): Promise<string> {
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    ...(apiKeys && { API_KEYS: createApiKey('openapi').entry }),
  })
  const log = createLogger(config.logLevel)
  const service = await createService(config, log)
  const app = buildApp({ config, log, ...service })
  try {
    await app.ready()
    return `${JSON.stringify(app.swagger(), null, 2)}\n`
  } finally {
    await app.close()
    await service.close(0)
  }
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    options: { 'api-keys': { type: 'boolean', default: false } },
    allowPositionals: true,
  })
  const document = await openApiDocument({ apiKeys: values['api-keys'] })
  const [out] = positionals
  if (out === undefined) process.stdout.write(document)
  else writeFileSync(out, document)
}
