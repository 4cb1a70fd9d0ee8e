/** Paging the links: GET /v1/images?limit=N&cursor=C against the whole service. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { apiKeys, bearer } from '../helpers/keys.ts'
import { startService } from '../helpers/service.ts'

type Page = { uploaded: string[]; next?: string | null }

test('pages follow each other by cursor, with next in the body and a Link header, until null', async (t) => {
  const { app, origin, run } = await startService(t)
  const job = await run([1, 2, 3, 4, 5].map((n) => `${origin.url}/img/${n}.png`))
  assert.equal(job.uploaded.complete.length, 5)

  const whole = await app.inject('/v1/images')
  assert.equal(whole.statusCode, 200)
  // The list is in upload order, which concurrent uploads may make any order of the job's links.
  const links = whole.json<Page>().uploaded
  assert.deepEqual([...links].sort(), [...job.uploaded.complete].sort())
  assert.equal(whole.body, JSON.stringify({ uploaded: links }), 'no parameters: the whole list, as before')
  assert.equal(whole.headers.link, undefined)

  const seen: string[] = []
  let url: string | undefined = '/v1/images?limit=2'
  const nexts: Array<string | null | undefined> = []
  while (url !== undefined) {
    const response: Awaited<ReturnType<typeof app.inject>> = await app.inject(url)
    assert.equal(response.statusCode, 200, url)
    const page = response.json<Page>()
    seen.push(...page.uploaded)
    nexts.push(page.next)
    if (page.next === null) {
      assert.equal(response.headers.link, undefined, 'no Link on the last page')
      url = undefined
    } else {
      assert.match(page.next ?? '', /^[A-Za-z0-9_-]+$/, 'the cursor needs no escaping')
      assert.equal(response.headers.link, `</v1/images?limit=2&cursor=${page.next}>; rel="next"`)
      url = `/v1/images?limit=2&cursor=${page.next}`
    }
  }
  assert.deepEqual(seen, links)
  assert.equal(nexts.length, 3)

  const exact = (await app.inject('/v1/images?limit=5')).json<Page>()
  assert.deepEqual(exact, { uploaded: links, next: null }, 'a page that ends the list has next null')
  const big = (await app.inject('/v1/images?limit=1000')).json<Page>()
  assert.deepEqual(big, { uploaded: links, next: null })
})

test('a cursor stays valid as links are added: the next page neither skips nor repeats', async (t) => {
  const { app, origin, run } = await startService(t)
  const first = await run([1, 2, 3].map((n) => `${origin.url}/img/${n}.png`))
  const page = (await app.inject('/v1/images?limit=2')).json<Page>()
  const later = await run([4, 5].map((n) => `${origin.url}/img/${n}.png`))
  // In upload order: each job's links in whichever order its concurrent uploads finished.
  const all = (await app.inject('/v1/images')).json<Page>().uploaded
  assert.deepEqual(new Set(all.slice(0, 3)), new Set(first.uploaded.complete))
  assert.deepEqual(new Set(all.slice(3)), new Set(later.uploaded.complete))
  assert.deepEqual(page.uploaded, all.slice(0, 2))
  const rest = (await app.inject(`/v1/images?limit=2&cursor=${page.next}`)).json<Page>()
  assert.deepEqual(rest.uploaded, all.slice(2, 4))
  const last = (await app.inject(`/v1/images?cursor=${rest.next}`)).json<Page>()
  assert.deepEqual(last, { uploaded: all.slice(4), next: null }, 'cursor alone: default limit')
})

test('a limit outside 1–1000 or a cursor the service never gave is a 400', async (t) => {
  const { app, origin, run } = await startService(t)
  await run([`${origin.url}/img/1.png`, `${origin.url}/img/2.png`])
  for (const limit of ['0', '1001', '-1', '1.5', 'abc', '', '99999', ' 5', '1e2']) {
    const response = await app.inject(`/v1/images?limit=${encodeURIComponent(limit)}`)
    assert.equal(response.statusCode, 400, limit)
    assert.equal(response.json().error, 'invalid_limit', limit)
  }
  const next = (await app.inject('/v1/images?limit=1')).json<Page>().next as string
  const [epoch] = Buffer.from(next, 'base64url').toString().split('.')
  const encode = (text: string) => Buffer.from(text).toString('base64url')
  for (const cursor of [
    'garbage!',
    '',
    'x'.repeat(100),
    encode('nothing'),
    encode('00000000.1'),
    encode(`${epoch}.3`),
    encode(`${epoch}.-1`),
    encode(`${epoch}.01`),
    encode(`${epoch}.1x`),
    `${next}=`,
  ]) {
    const response = await app.inject(`/v1/images?limit=1&cursor=${encodeURIComponent(cursor)}`)
    assert.equal(response.statusCode, 400, cursor)
    assert.equal(response.json().error, 'invalid_cursor', cursor)
  }
  const end = (await app.inject(`/v1/images?cursor=${encode(`${epoch}.2`)}`)).json<Page>()
  assert.deepEqual(end, { uploaded: [], next: null }, 'the end of the list is an empty last page')
})

test('with API keys each key pages its own links', async (t) => {
  const { keys, API_KEYS } = apiKeys('alice', 'bob')
  const { app, origin, service } = await startService(t, { env: { API_KEYS } })
  const submit = async (key: string, urls: string[]) => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/images/upload',
      headers: bearer(key),
      payload: { urls },
    })
    assert.equal(response.statusCode, 202)
  }
  await submit(
    keys.alice,
    [1, 2, 3].map((n) => `${origin.url}/img/${n}.png`),
  )
  await submit(
    keys.bob,
    [4].map((n) => `${origin.url}/img/${n}.png`),
  )
  await service.queue.onIdle()
  const get = (key: string, url: string) => app.inject({ url, headers: bearer(key) })

  const alice = (await get(keys.alice, '/v1/images?limit=2')).json<Page>()
  assert.equal(alice.uploaded.length, 2)
  const rest = (await get(keys.alice, `/v1/images?limit=2&cursor=${alice.next}`)).json<Page>()
  assert.equal(rest.uploaded.length, 1)
  assert.equal(rest.next, null)
  const all = (await get(keys.alice, '/v1/images')).json<Page>()
  assert.deepEqual([...alice.uploaded, ...rest.uploaded], all.uploaded)

  const bob = (await get(keys.bob, '/v1/images?limit=2')).json<Page>()
  assert.equal(bob.uploaded.length, 1)
  assert.equal(bob.next, null)
  assert.ok(!all.uploaded.includes(bob.uploaded[0] as string))
  // Alice's cursor points past the end of Bob's list.
  const foreign = await get(keys.bob, `/v1/images?limit=2&cursor=${alice.next}`)
  assert.equal(foreign.statusCode, 400)
  assert.equal(foreign.json().error, 'invalid_cursor')
  assert.equal((await app.inject('/v1/images?limit=2')).statusCode, 401)
})
