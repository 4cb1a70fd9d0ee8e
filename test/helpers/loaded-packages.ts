/**
 * Preloaded with `--import` into a service under test: records which npm packages its main thread
 * loads, and whether it loaded Node's own undici, and writes them, one per line, to
 * `$LOADED_PACKAGES_FILE` when the process exits.
 * https://nodejs.org/api/module.html#moduleregisterhooksoptions
 */
import { writeFileSync } from 'node:fs'
import { registerHooks } from 'node:module'
import { isMainThread } from 'node:worker_threads'

const out = process.env.LOADED_PACKAGES_FILE
if (isMainThread && out) {
  const packages = new Set<string>()
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const resolved = nextResolve(specifier, context)
      const name = resolved.url.match(/\/node_modules\/((?:@[^/]+\/)?[^/]+)\//)?.[1]
      if (name) packages.add(name)
      return resolved
    },
  })
  // Node's own undici (fetch, WebSocket), which only an ES import of `node:http` would load.
  // `process.moduleLoadList` (undocumented, untyped) lists the built-in modules loaded so far.
  const { moduleLoadList } = process as unknown as { moduleLoadList: string[] }
  const builtins = () => moduleLoadList.filter((name) => name.includes('internal/deps/undici'))
  process.on('exit', () => writeFileSync(out, [...packages, ...builtins()].join('\n')))
}
