import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startService } from '../helpers/service.ts'

type Json = Record<string, unknown>
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']
const ROUTES = [
  ['post', '/v1/images/upload'],
  ['get', '/v1/images/upload/{jobId}'],
  ['get', '/v1/images/upload/{jobId}/events'],
  ['get', '/v1/images'],
  ['get', '/health'],
  ['get', '/ready'],
  ['get', '/metrics'],
] as const

/** Every `$ref` in the document points at something inside it. */
function assertRefsResolve(doc: Json): void {
  const walk = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return
    const ref = (node as Json).$ref
    if (typeof ref === 'string') {
      assert.match(ref, /^#\//, `external $ref ${ref}`)
      let target: unknown = doc
      for (const part of ref.slice(2).split('/')) target = (target as Json | undefined)?.[part]
      assert.ok(target !== undefined, `unresolved $ref ${ref}`)
    }
    for (const value of Object.values(node)) walk(value)
  }
  walk(doc)
}

test('GET /openapi.json is an OpenAPI 3.1 document of every route, its responses and errors', async (t) => {
  const { app } = await startService(t)
  const response = await app.inject({ method: 'GET', url: '/openapi.json' })
  assert.equal(response.statusCode, 200)
  assert.match(String(response.headers['content-type']), /^application\/json/)
  const doc = response.json<Json & { paths: Record<string, Record<string, Json>> }>()

  assert.match(String(doc.openapi), /^3\.1\.\d+$/)
  const info = doc.info as Json
  assert.equal(typeof info.title, 'string')
  assert.equal(typeof info.version, 'string')
  assert.equal(doc.swagger, undefined)
  // Relative: the document holds wherever the service is deployed.
  assert.deepEqual(
    (doc.servers as Json[]).map((s) => s.url),
    ['/'],
  )
  assert.deepEqual(info.license, { name: 'MIT', identifier: 'MIT' })
  assert.equal(typeof (info.contact as Json).name, 'string')
  assertRefsResolve(doc)
  const operationIds: unknown[] = []

  for (const [method, path] of ROUTES) {
    const operation = doc.paths[path]?.[method] as Json | undefined
    assert.ok(operation, `${method.toUpperCase()} ${path} is documented`)
    assert.equal(typeof operation.summary, 'string', `${path} has a summary`)
    assert.equal(typeof operation.description, 'string', `${path} has a description`)
    assert.match(String(operation.operationId), /^[a-z]+[A-Za-z]*$/, `${path} has an operationId`)
    operationIds.push(operation.operationId)
    assert.ok(Array.isArray(operation.tags) && operation.tags.length > 0, `${path} is tagged`)
    const responses = Object.entries(operation.responses as Record<string, Json>)
    assert.ok(
      responses.some(([code]) => code.startsWith('2')),
      `${path} documents a success`,
    )
    for (const [code, answer] of responses) {
      assert.match(code, /^([1-5]\d\d|[1-5]XX|default)$/)
      assert.equal(typeof answer.description, 'string', `${path} ${code} has a description`)
      const json = (answer.content as Record<string, { schema: Json }> | undefined)?.['application/json']
      // /ready answers its 503 with the same report as its 200: that is its point.
      if (Number(code) >= 400 && !(path === '/ready' && code === '503')) {
        assert.ok(json, `${path} ${code} answers JSON`)
        assert.deepEqual(json.schema.required, ['error', 'message'], `${path} ${code} is the error shape`)
      }
    }
    assert.ok(
      responses.some(([code]) => code === '500'),
      `${path} documents the 500 error`,
    )
    // Path templating: every {name} is declared as a required path parameter.
    for (const [, name] of path.matchAll(/\{(\w+)\}/g)) {
      const parameters = (operation.parameters ?? []) as Json[]
      assert.ok(
        parameters.some((p) => p.in === 'path' && p.name === name && p.required === true),
        `${path} declares {${name}}`,
      )
    }
  }
  assert.equal(new Set(operationIds).size, operationIds.length, 'operationIds are unique')
  for (const [path, item] of Object.entries(doc.paths)) {
    assert.match(path, /^\//)
    assert.ok(Object.keys(item).every((key) => METHODS.includes(key) || key === 'parameters'))
    assert.ok(!path.startsWith('/docs') && path !== '/openapi.json', `${path} is tooling, not API`)
  }
  const upload = doc.paths['/v1/images/upload']?.post as Json
  const body = (upload.requestBody as Json).content as Record<string, Json>
  assert.ok(
    body['application/json']?.example ?? body['application/json']?.examples,
    'the body has an example',
  )
  const tags = (doc.tags as Json[]).map((tag) => tag.name)
  assert.deepEqual(tags.sort(), ['images', 'operations'])
})

test('GET /docs serves the interactive page and its assets from this service, no CDN', async (t) => {
  const { app } = await startService(t)
  for (const url of ['/docs', '/docs/']) {
    const page = await app.inject({ method: 'GET', url })
    assert.equal(page.statusCode, 200, url)
    assert.match(String(page.headers['content-type']), /^text\/html/)
    assert.doesNotMatch(page.body, /(src|href)\s*=\s*["'](https?:)?\/\//i, 'no external asset')
    assert.doesNotMatch(String(page.headers['content-security-policy']), /https?:|upgrade-insecure/)
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string)
    assert.ok(assets.some((asset) => asset.endsWith('.js')) && assets.some((asset) => asset.endsWith('.css')))
    for (const asset of assets) {
      const resolved = new URL(asset, `http://service${url}`).pathname
      const served = await app.inject({ method: 'GET', url: resolved })
      assert.equal(served.statusCode, 200, resolved)
      assert.match(String(served.headers['content-type']), /javascript|css|image\//, resolved)
    }
  }
  const initializer = await app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' })
  assert.match(
    initializer.body,
    /url: resolveUrl\('\.\/json'\)/,
    'the page reads the document from this service',
  )
  assert.match(initializer.body, /"validatorUrl":null/, 'the page sends the document nowhere')
  const fromDocs = await app.inject({ method: 'GET', url: '/docs/json' })
  const served = await app.inject({ method: 'GET', url: '/openapi.json' })
  assert.deepEqual(fromDocs.json(), served.json())
})
