/**
 * The events API through the real controller: what each user may see, secrets never shown, and the
 * live stream (server-sent events).
 */
import t from 'tap'
import { request } from 'undici'
import { waitFor } from '../../../projections/index.js'
import { registerAndLogin, startTestController } from '../testing.js'

interface Ev {
  seq: number
  type: string
  stream: string
  app: string | null
  data: Record<string, unknown>
}

t.test('GET /v1/events: admins see all, users their own; secrets redacted; bad filters refused', async (t) => {
  const c = await startTestController(t)
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')

  const all = await c.call<{ events: Ev[]; last: number }>('GET', '/v1/events', { token: alice })
  t.equal(all.status, 200)
  const streams = new Set(all.body.events.map((e) => e.stream))
  t.ok(streams.has('user.alice') && streams.has('user.bob'), 'the admin sees both users')
  t.equal(all.body.last, all.body.events.at(-1)!.seq)

  const mine = await c.call<{ events: Ev[] }>('GET', '/v1/events', { token: bob })
  t.ok(mine.body.events.length > 0)
  t.ok(
    mine.body.events.every((e) => e.stream === 'user.bob'),
    'bob sees only his own stream',
  )

  const registered = all.body.events.find((e) => e.type === 'UserRegistered')!
  t.equal(registered.data.passwordHash, '[redacted]', 'password hashes never leave')
  t.notMatch(JSON.stringify(all.body), /scrypt|[0-9a-f]{64}/, 'no hash of any kind in the answer')

  const onlyLogins = await c.call<{ events: Ev[] }>('GET', '/v1/events?type=TokenIssued', { token: alice })
  t.ok(onlyLogins.body.events.length >= 2 && onlyLogins.body.events.every((e) => e.type === 'TokenIssued'))
  const after = await c.call<{ events: Ev[] }>('GET', `/v1/events?after=${all.body.last - 1}`, { token: alice })
  t.same(
    after.body.events.map((e) => e.seq),
    [all.body.last],
    'after= pages',
  )

  const limited = await c.call<{ events: Ev[] }>('GET', '/v1/events?limit=1', { token: alice })
  t.equal(limited.body.events.length, 1)

  for (const q of ['after=-1', 'after=abc', 'limit=0', 'limit=5000', 'type=Bad%20Type', 'nope=1']) {
    const r = await c.call('GET', `/v1/events?${q}`, { token: alice })
    t.equal(r.status, 400, `${q} is refused`)
    t.equal(r.body.code, 'WHARF_INVALID')
  }
  t.equal((await c.call('GET', '/v1/events')).status, 401, 'no token, no events')
  const hidden = await c.call('GET', '/v1/events?app=not-mine', { token: bob })
  t.equal(hidden.status, 404, 'an app one may not see answers 404')
})

t.test('GET /v1/events/stream: live events as server-sent events', async (t) => {
  const c = await startTestController(t)
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')

  const res = await request(`${c.url}/v1/events/stream`, { headers: { authorization: `Bearer ${bob}` }, bodyTimeout: 0 })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/event-stream/)
  const frames: string[] = []
  let buf = ''
  const seen = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no event within 5 s')), 5000)
    res.body.on('data', (chunk: Buffer) => {
      buf += chunk.toString()
      let end
      while ((end = buf.indexOf('\n\n')) >= 0) {
        frames.push(buf.slice(0, end))
        buf = buf.slice(end + 2)
      }
      if (frames.some((f) => f.includes('event: TokenIssued'))) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  t.teardown(() => res.body.destroy())

  // Events bob may not see (alice signing in) must not reach him; his own must, at once.
  await c.call('POST', '/v1/auth/login', { body: { username: 'alice', password: 'correct horse' } })
  const started = Date.now()
  await c.call('POST', '/v1/auth/login', { body: { username: 'bob', password: 'correct horse' } })
  await seen
  t.ok(Date.now() - started < 2000, 'arrives within 2 s')
  const events = frames.filter((f) => f.includes('\ndata: ')).map((f) => JSON.parse(f.slice(f.indexOf('data: ') + 6)) as Ev)
  t.ok(events.length >= 1)
  t.ok(
    events.every((e) => e.stream === 'user.bob'),
    'only what bob may see',
  )
  t.match(
    frames.find((f) => f.startsWith('id: ')),
    /^id: \d+\nevent: TokenIssued\ndata: /,
  )
  t.ok(alice)
})

t.test('a commit (one append of several events) is never split: not across pages, not across SSE ids', async (t) => {
  const c = await startTestController(t)
  const alice = await registerAndLogin(c, 'alice')
  t.equal((await c.call('POST', '/v1/apps', { token: alice, body: { name: 'shop' } })).status, 201)
  const commit = await c.deps.store.append(
    'app.shop',
    ['A', 'B', 'C'].map((k) => ({ type: 'ConfigSet', data: { app: 'shop', values: { [k]: 'secret' } } })),
    { actor: 'user:alice', expectedVersion: 'any' },
  )
  const seq = commit.lastSeq
  t.same(commit.seqs, [seq, seq, seq])
  await waitFor(c.deps.pool, seq, { projections: ['eventlog'], timeoutMs: 10_000 })
  const page = await c.call<{ events: (Ev & { id: string })[]; last: number }>('GET', `/v1/events?app=shop&after=${seq - 1}&limit=1`, { token: alice })
  t.equal(page.status, 200)
  t.same(
    page.body.events.map((e) => [e.seq, e.type, Object.keys(e.data.values as object)]),
    [
      [seq, 'ConfigSet', ['A']],
      [seq, 'ConfigSet', ['B']],
      [seq, 'ConfigSet', ['C']],
    ],
    'a page of one that ends inside the commit goes on to its end',
  )
  t.equal(page.body.last, seq)
  const next = await c.call<{ events: Ev[] }>('GET', `/v1/events?app=shop&after=${page.body.last}`, { token: alice })
  t.notOk(
    next.body.events.some((e) => e.seq === seq),
    'the next page starts after the commit',
  )

  const res = await request(`${c.url}/v1/events/stream?app=shop&after=${seq - 1}`, { headers: { authorization: `Bearer ${alice}` }, bodyTimeout: 0 })
  t.teardown(() => res.body.destroy())
  const frames: string[] = []
  let buf = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`three ConfigSet frames within 5 s: ${JSON.stringify(frames)}`)), 5000)
    res.body.on('data', (chunk: Buffer) => {
      buf += chunk.toString()
      let end
      while ((end = buf.indexOf('\n\n')) >= 0) {
        frames.push(buf.slice(0, end))
        buf = buf.slice(end + 2)
      }
      if (frames.filter((f) => f.includes('event: ConfigSet')).length >= 3) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  const sets = frames.filter((f) => f.includes('event: ConfigSet'))
  t.same(
    sets.map((f) => (f.startsWith('id: ') ? f.slice(4, f.indexOf('\n')) : null)),
    [null, null, String(seq)],
    'only the last event of the commit carries the id (a reconnect inside it gets all of it again)',
  )
})
