/**
 * The pipeline's thread, made to fail on cue (ThreadPipeline's `entry` in test/jobs/pipeline.test.ts):
 * an item whose URL ends in `/throw` throws an uncaught error in the thread, `/exit` ends it with code 3,
 * `/hoard` holds up to 512 MB of the thread's heap (more than a heap limit under test allows).
 */
import { parentPort } from 'node:worker_threads'
import type { ToThread } from '../../src/jobs/pipeline.ts'
import '../../src/jobs/pipeline-thread.ts'

parentPort?.on('message', (batch: ToThread[]) => {
  for (const message of batch) {
    if (message.type !== 'start') continue
    if (message.item.target.endsWith('/throw')) {
      setImmediate(() => {
        throw new Error('an uncaught error in the thread')
      })
    }
    if (message.item.target.endsWith('/exit')) process.exit(3)
    if (message.item.target.endsWith('/hoard')) {
      // 1 MB arrays (8-byte elements), all held until the last: without a limit, it ends.
      let hoard: number[][] | undefined = []
      for (let mb = 0; mb < 512; mb += 1) hoard.push(new Array<number>(128 * 1024).fill(mb))
      hoard = undefined
    }
  }
})
