/**
 * Writes the sources as plain JavaScript for the Docker image, which then runs `node src/server.js`
 * and never loads Node's TypeScript stripper: that costs about 17 MB of resident memory for the
 * life of the process (idle RSS of `node empty.ts` against `node empty.js`; see the README's
 * Performance section). `npm start` still runs the .ts sources as they are.
 *
 *   node scripts/strip-types.ts <from> <to>      (the Dockerfile: src → a folder copied as src/)
 *
 * Node's own stripper does the work (module.stripTypeScriptTypes, mode `strip`): types become
 * blanks, so every line and column, and with them stack traces, stay where they were. Relative
 * specifiers are then renamed from `./x.ts` to `./x.js` (imports, dynamic imports and the HEIC
 * worker's `new URL`); each renamed one must name a source file that exists, or nothing is written.
 * https://nodejs.org/api/module.html#modulestriptypescripttypescode-options
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { stripTypeScriptTypes } from 'node:module'
import { dirname, join, relative } from 'node:path'

/** A quoted relative path ending in `.ts`: the only strings in src/ that name a source file. */
const SPECIFIER = /(['"])(\.{1,2}\/[^'"\s]*?)\.ts\1/g

export function stripSource(source: string, file: string, exists: (path: string) => boolean): string {
  return stripTypeScriptTypes(source, { mode: 'strip' }).replace(SPECIFIER, (_, quote, path) => {
    const target = join(dirname(file), `${path}.ts`)
    if (!exists(target)) throw new Error(`${file}: ${path}.ts does not exist`)
    return `${quote}${path}.js${quote}`
  })
}

function* sources(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield* sources(path)
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield path
  }
}

export function stripTree(from: string, to: string): number {
  const exists = (path: string) => statSync(path, { throwIfNoEntry: false })?.isFile() === true
  const out = [...sources(from)].map((file) => ({
    path: join(to, relative(from, file)).replace(/\.ts$/, '.js'),
    code: stripSource(readFileSync(file, 'utf8'), file, exists),
  }))
  for (const { path, code } of out) {
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, code)
  }
  return out.length
}

if (import.meta.main) {
  const [from, to] = process.argv.slice(2)
  if (from === undefined || to === undefined) {
    process.stderr.write('usage: node scripts/strip-types.ts <from> <to>\n')
    process.exit(2)
  }
  process.stdout.write(`${stripTree(from, to)} files stripped from ${from} into ${to}\n`)
}
