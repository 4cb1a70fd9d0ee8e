#!/usr/bin/env node
// Needs Node 24 or later, which runs TypeScript as-is; from a clone, `npx imgur-upload` uses the
// project's own Node 24 (node_modules/.bin/node). See `imgur-upload --help`.
import { text } from 'node:stream/consumers'
import { main } from '../src/cli/main.ts'

try {
  process.exitCode = await main({
    argv: process.argv.slice(2),
    env: process.env,
    stdin: () => text(process.stdin),
    stdout: process.stdout,
    stderr: process.stderr,
  })
} catch (error) {
  // Exit status 1 means "some images failed"; a bug in the tool must not look like that.
  process.stderr.write(`imgur-upload: unexpected error: ${(error as Error).stack ?? error}\n`)
  process.exitCode = 2
}
