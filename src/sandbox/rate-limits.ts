/**
 * Imgur's three budgets: credits per client id, credits per user (the Bearer account) and POSTs
 * (global here: the sandbox sees one IP). Each refills when its window ends; windows start at first
 * use. Anonymous (Client-ID) uploads spend no user credits: a real 2024 capture shows
 * UserRemaining still full after several Client-ID posts (ShareX issue #7289).
 */
export type Budgets = {
  clientCredits: number
  userCredits: number
  posts: number
  resetSeconds: number
}

/** Who is paying: the keys of the client and user buckets (no user for anonymous calls). */
export type Payer = { client: string; user: string | undefined }

export type Snapshot = {
  client: { limit: number; remaining: number; resetSeconds: number; resetAt: number }
  user: { limit: number; remaining: number; resetSeconds: number; resetAt: number }
  posts: { limit: number; remaining: number; resetSeconds: number; resetAt: number }
}

type Bucket = { remaining: number; resetAt: number }

export const UPLOAD_CREDITS = 10
/** Buckets kept per kind (clients, users): past it the least recently spent is forgotten (reads full). */
export const MAX_BUCKETS = 10_000

export function createRateLimits(budgets: Budgets, now: () => number) {
  const clients = new Map<string, Bucket>()
  const users = new Map<string, Bucket>()
  let posts: Bucket | undefined
  const windowMs = budgets.resetSeconds * 1000

  // A missing or expired bucket reads as a full one; it is stored only when something is spent.
  function current(bucket: Bucket | undefined, limit: number): Bucket {
    const at = now()
    if (bucket === undefined || bucket.resetAt <= at) return { remaining: limit, resetAt: at + windowMs }
    return bucket
  }

  // Re-inserted on every spend, so the map's first key is the least recently spent.
  function keep(buckets: Map<string, Bucket>, key: string, bucket: Bucket): void {
    buckets.delete(key)
    if (buckets.size >= MAX_BUCKETS) {
      const oldest = buckets.keys().next()
      if (oldest.done !== true) buckets.delete(oldest.value)
    }
    buckets.set(key, bucket)
  }

  function view(bucket: Bucket, limit: number) {
    const resetSeconds = Math.max(0, Math.ceil((bucket.resetAt - now()) / 1000))
    return { limit, remaining: bucket.remaining, resetSeconds, resetAt: Math.ceil(bucket.resetAt / 1000) }
  }

  function userBucket(payer: Payer): Bucket {
    return current(payer.user === undefined ? undefined : users.get(payer.user), budgets.userCredits)
  }

  function canPay(payer: Payer, client: Bucket, user: Bucket, post: Bucket): boolean {
    const userPays = payer.user === undefined || user.remaining >= UPLOAD_CREDITS
    return client.remaining >= UPLOAD_CREDITS && userPays && post.remaining >= 1
  }

  function snapshot(payer: Payer): Snapshot {
    return {
      client: view(current(clients.get(payer.client), budgets.clientCredits), budgets.clientCredits),
      user: view(userBucket(payer), budgets.userCredits),
      posts: view(current(posts, budgets.posts), budgets.posts),
    }
  }

  return {
    snapshot,

    canAffordUpload(payer: Payer): boolean {
      return canPay(
        payer,
        current(clients.get(payer.client), budgets.clientCredits),
        userBucket(payer),
        current(posts, budgets.posts),
      )
    },

    /** Pays for one upload if every budget still can (a concurrent upload may have spent it). */
    spendUpload(payer: Payer): boolean {
      const client = current(clients.get(payer.client), budgets.clientCredits)
      const user = userBucket(payer)
      const post = current(posts, budgets.posts)
      if (!canPay(payer, client, user, post)) return false
      client.remaining -= UPLOAD_CREDITS
      post.remaining -= 1
      keep(clients, payer.client, client)
      posts = post
      if (payer.user !== undefined) {
        user.remaining -= UPLOAD_CREDITS
        keep(users, payer.user, user)
      }
      return true
    },

    clear(): void {
      clients.clear()
      users.clear()
      posts = undefined
    },
  }
}

export type RateLimits = ReturnType<typeof createRateLimits>

/** The headers Imgur puts on every /3 response; POSTs also carry the post budget. */
export function rateLimitHeaders(
  snapshot: Snapshot,
  post: boolean,
  override?: { remaining?: number; resetSeconds?: number },
): Record<string, string> {
  const remaining = (value: number) => String(override?.remaining ?? value)
  const reset = (value: number) => String(override?.resetSeconds ?? value)
  const headers: Record<string, string> = {
    'X-RateLimit-UserLimit': String(snapshot.user.limit),
    'X-RateLimit-UserRemaining': remaining(snapshot.user.remaining),
    'X-RateLimit-UserReset': reset(snapshot.user.resetSeconds),
    'X-RateLimit-ClientLimit': String(snapshot.client.limit),
    'X-RateLimit-ClientRemaining': remaining(snapshot.client.remaining),
    'X-RateLimit-ClientReset': reset(snapshot.client.resetSeconds),
  }
  if (post) {
    headers['X-Post-Rate-Limit-Limit'] = String(snapshot.posts.limit)
    headers['X-Post-Rate-Limit-Remaining'] = remaining(snapshot.posts.remaining)
    headers['X-Post-Rate-Limit-Reset'] = reset(snapshot.posts.resetSeconds)
  }
  return headers
}
