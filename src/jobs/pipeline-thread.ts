/**
 * The pipeline's thread (pipeline.ts explains why it exists): runs each item the main thread
 * starts, answering with its outcome or its error and telling when its download has ended.
 * Imgur's rate-limit readings go to the main thread's ledger as each answer arrives, so they are
 * recorded before the item's outcome is; the fleet's de-duplication table is asked through the
 * main thread, which holds the Redis connection.
 */
import { parentPort, workerData } from 'node:worker_threads'
import type { BudgetLedger } from '../budgets.ts'
import type { SharedUploads } from '../fleet/uploads.ts'
import type { Away } from './contract.ts'
import {
  type FromThread,
  fromWire,
  outbox,
  type PipelineSettings,
  type ToThread,
  toWire,
} from './pipeline.ts'
import { inlinePipeline } from './pipeline-inline.ts'
import type { Known } from './uploads.ts'

if (!parentPort) throw new Error('pipeline-thread.ts runs as a worker thread (see ThreadPipeline)')
const port = parentPort
const out = outbox<FromThread>((batch) => port.postMessage(batch))
const post = out.send

const budgets: BudgetLedger = {
  update: (key, parsed) => post({ type: 'update', key, parsed }),
  on429: (key, retryAfterMs, now) => post({ type: 'on429', key, retryAfterMs, now }),
}

/** Lookups in the fleet's table waiting for the main thread's answer, by call number. */
const calls = new Map<number, { resolve(known: Known | undefined): void; reject(error: Error): void }>()
let callIds = 0
/**
 * The item whose lookup is being asked, told to the main thread with it, which lends that item's
 * transfer slot while Redis answers: worker.ts asks the table only as `away(() => shared.get(hash))`,
 * and each item's `away` here sets this while it calls `get`, which asks at once.
 */
let asking: number | undefined
const shared: Pick<SharedUploads, 'get' | 'set'> = {
  get: (hash) =>
    new Promise((resolve, reject) => {
      const call = ++callIds
      calls.set(call, { resolve, reject })
      post({ type: 'sharedGet', call, hash, id: asking })
    }),
  set: async (hash, known) => post({ type: 'sharedSet', hash, known }),
}

const settings = workerData as PipelineSettings & { fleet: boolean }
const pipeline = inlinePipeline(settings, {
  budgets,
  ...(settings.fleet && { shared }),
  observe: (transfer) => post({ type: 'transfer', transfer }),
  onLibvips: () => post({ type: 'libvips' }),
})

/** The items running, by the main thread's id: aborted through their controller. */
const running = new Map<number, { controller: AbortController; done: Promise<void> }>()

async function run(id: number, item: Extract<ToThread, { type: 'start' }>['item']): Promise<void> {
  const controller = new AbortController()
  const away: Away = (fn) => {
    asking = id
    try {
      return fn()
    } finally {
      asking = undefined
    }
  }
  const done = pipeline
    .work(item, controller.signal, () => post({ type: 'downloaded', id }), away)
    .then(
      (outcome) => post({ type: 'settled', id, outcome }),
      (error: unknown) => post({ type: 'failed', id, error: toWire(error) }),
    )
  running.set(id, { controller, done })
  await done
  running.delete(id)
}

/** Ends the thread once every item and any conversion still winding down have stopped. */
async function close(): Promise<void> {
  await Promise.all([...running.values()].map(({ done }) => done))
  await pipeline.close()
  out.flush()
  process.exit(0)
}

port.on('message', (batch: ToThread[]) => {
  for (const message of batch) receive(message)
})

function receive(message: ToThread): void {
  switch (message.type) {
    case 'start':
      void run(message.id, message.item)
      return
    case 'abort':
      running.get(message.id)?.controller.abort(fromWire(message.reason))
      return
    case 'shared': {
      const call = calls.get(message.call)
      calls.delete(message.call)
      if (message.error) call?.reject(fromWire(message.error))
      else call?.resolve(message.known)
      return
    }
    case 'close':
      void close()
      return
  }
}
