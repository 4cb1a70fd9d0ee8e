/**
 * The store's Redis layout, every key under `${prefix}:` (the scripts in scripts.ts build the
 * same names in Lua):
 *   job:<id>          hash: created, finished, clientId, owner, started, pending, version,
 *                     album and webhook (JSON), pendingBytes (its items'), cancelled (a reason)
 *   job:<id>:items    list: one compact JSON per item, by position (codec.ts)
 *   counters          hash: pending, in-progress (jobs held by status), pendingItems, pendingBytes
 *   finished          sorted set: complete jobs by finish time (retention, and their count)
 *   links, linkset    list and set: every link once, in upload order
 *   owner:<owner>:links, owner:<owner>:linkset   the same for one API key's jobs
 *   epoch             names the list of links (cursors)
 *   changed           pub/sub channel: "<id> <version>" after each change of a job
 *   owed              sorted set: jobs whose album is owed (every item settled), by when it was
 *                     owed or last taken up
 * No image bytes, ever. A complete job's two keys expire after the retention age; pending jobs
 * never expire.
 */
export function keys(prefix: string) {
  return {
    job: (id: string) => `${prefix}:job:${id}`,
    items: (id: string) => `${prefix}:job:${id}:items`,
    counters: `${prefix}:counters`,
    finished: `${prefix}:finished`,
    links: (owner?: string) => (owner === undefined ? `${prefix}:links` : `${prefix}:owner:${owner}:links`),
    epoch: `${prefix}:epoch`,
    changed: `${prefix}:changed`,
    owed: `${prefix}:owed`,
  }
}
