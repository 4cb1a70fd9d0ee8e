/**
 * The pipeline's thread, made to fail on cue (ThreadPipeline's `entry` in test/jobs/pipeline.test.ts):
 * an item whose URL ends in `/throw` throws an uncaught error in the thread, `/exit` ends it with code 3.
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
  }
})
