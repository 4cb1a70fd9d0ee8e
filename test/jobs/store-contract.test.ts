import { MemoryJobStore } from '../../src/jobs/store.ts'
import { storeContract } from '../contract/store.ts'

storeContract('memory', async (options) => {
  const store = new MemoryJobStore(options)
  return {
    store,
    close: async () => {
      await store.close()
    },
  }
})
