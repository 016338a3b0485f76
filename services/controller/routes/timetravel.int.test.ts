/**
 * Time travel (`?at=<seq|time>`) on the six read routes, against the real servers: an app changes
 * over time (config, scale, domains, collaborators, containers); at every step the live answers are
 * kept; later, each earlier point, by seq and by time, answers exactly what the live routes answered
 * then. Bad points are refused with stable codes; who may not read the app now learns nothing, and a
 * reused app name shows nothing of its previous incarnation.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { request } from 'undici'
import { streamId } from '../../../events/index.js'
import { waitFor } from '../../../projections/index.js'
import { refused, registerAndLogin, startTestController, type TestController } from '../testing.js'

const C = (n: number) => n.toString(16).padEnd(64, 'c')
const PATHS = { info: '', config: '/config', releases: '/releases', ps: '/ps', domains: '/domains', perms: '/perms' } as const
type Answers = Record<keyof typeof PATHS, unknown>

/** GET with the answer's `wharf-at-*` headers (the test controller's `call` has no headers). */
async function get(c: TestController, path: string, token: string): Promise<{ status: number; body: any; seq?: number; time?: string }> {
  const res = await request(`${c.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
  const body = JSON.parse(await res.body.text())
  const seq = res.headers['wharf-at-seq']
  const time = res.headers['wharf-at-time']
  return { status: res.statusCode, body, ...(seq === undefined ? {} : { seq: Number(seq) }), ...(typeof time === 'string' ? { time } : {}) }
}

/** The six answers about `app`, now or as of `at`. */
async function answers(c: TestController, app: string, token: string, at?: string): Promise<{ body: Answers; seqs: Set<number | undefined> }> {
  const q = at === undefined ? '' : `?at=${encodeURIComponent(at)}`
  const body = {} as Answers
  const seqs = new Set<number | undefined>()
  for (const [k, p] of Object.entries(PATHS) as [keyof typeof PATHS, string][]) {
    const r = await get(c, `/v1/apps/${app}${p}${q}`, token)
    if (r.status !== 200) throw new Error(`GET ${p}${q}: ${r.status} ${JSON.stringify(r.body)}`)
    body[k] = r.body
    seqs.add(r.seq)
  }
  return { body, seqs }
}

async function runtime(c: TestController, app: string, type: string, data: Record<string, unknown>): Promise<void> {
  await c.deps.store.append(streamId('runtime', app), [{ type, data: { app, ...data } }], { expectedVersion: 'any', actor: 'system:publisher' })
}

async function ok(c: TestController, method: string, path: string, token: string, body?: unknown): Promise<void> {
  const r = await c.call(method, path, { token, ...(body === undefined ? {} : { body }) })
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
}

interface Step {
  what: string
  /** The log's head right after the step. */
  seq: number
  /** A moment after the step's events and before the next step's. */
  time: string
  live: Answers
}

t.test('the six read routes as of earlier seqs and times answer what they answered then', async (t) => {
  const c = await startTestController(t)
  await registerAndLogin(c, 'root') // the first user is an admin: the others are not
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  const carol = await registerAndLogin(c, 'carol')
  const dave = await registerAndLogin(c, 'dave')
  const steps: Step[] = []
  const step = async (what: string, change: () => Promise<void>) => {
    await change()
    const seq = await c.deps.store.lastSeq()
    await waitFor(c.deps.pool, seq)
    const live = (await answers(c, 'shop', alice)).body
    const time = new Date().toISOString()
    steps.push({ what, seq, time, live })
    // The next step's events occur strictly after `time` (occurredAt has millisecond precision).
    await sleep(5)
  }

  await step('created', () => ok(c, 'POST', '/v1/apps', alice, { name: 'shop' }))
  await step('config set', () => ok(c, 'POST', '/v1/apps/shop/config', alice, { values: { A: '1', B: 'x' } }))
  await step('scaled to 2', () => ok(c, 'POST', '/v1/apps/shop/formation', alice, { web: 2, worker: 1 }))
  await step('domain added', () => ok(c, 'POST', '/v1/apps/shop/domains', alice, { domain: 'shop.example.com' }))
  await step('bob shares', () => ok(c, 'POST', '/v1/apps/shop/perms', alice, { username: 'bob' }))
  await step('containers up', async () => {
    await runtime(c, 'shop', 'ContainerStarted', { type: 'web', release: 2, container: C(1), host: '127.0.0.1', port: 32000, number: 1 })
    await runtime(c, 'shop', 'ContainerStarted', { type: 'web', release: 2, container: C(2), host: '127.0.0.1', port: 32001, number: 2 })
    await runtime(c, 'shop', 'ContainerStarted', { type: 'worker', release: 2, container: C(3), host: '127.0.0.1', number: 1 })
  })
  await step('maintenance on', () => ok(c, 'POST', '/v1/apps/shop/maintenance', alice, { enabled: true }))
  await step('config changed', async () => {
    await ok(c, 'POST', '/v1/apps/shop/config', alice, { values: { A: '2' } })
    await ok(c, 'POST', '/v1/apps/shop/config/unset', alice, { keys: ['B'] })
  })
  await step('domains swapped', async () => {
    await ok(c, 'DELETE', '/v1/apps/shop/domains/shop.example.com', alice)
    await ok(c, 'POST', '/v1/apps/shop/domains', alice, { domain: 'www.example.com' })
  })
  await step('a crash, a stop, scaled down', async () => {
    await runtime(c, 'shop', 'ContainerCrashed', { type: 'worker', container: C(3), exitCode: 137, reason: 'killed' })
    await runtime(c, 'shop', 'ContainerStopped', { type: 'web', container: C(2) })
    await ok(c, 'POST', '/v1/apps/shop/formation', alice, { web: 1 })
  })
  await step('rolled back to v2', () => ok(c, 'POST', '/v1/apps/shop/releases/rollback', alice, { version: 2 }))
  await step('bob unshared, maintenance off', async () => {
    await ok(c, 'DELETE', '/v1/apps/shop/perms/bob', alice)
    await ok(c, 'POST', '/v1/apps/shop/maintenance', alice, { enabled: false })
  })

  // The history really changed each time (else the comparisons below prove little).
  for (let i = 1; i < steps.length; i++) t.notSame(steps[i]!.live, steps[i - 1]!.live, `${steps[i]!.what}: the answers changed`)

  for (const s of steps) {
    const bySeq = await answers(c, 'shop', alice, String(s.seq))
    t.same(bySeq.body, s.live, `at seq ${s.seq} (${s.what}): the answers of then`)
    t.same([...bySeq.seqs], [s.seq], '... as of that seq (header)')
    const byTime = await answers(c, 'shop', alice, s.time)
    t.same(byTime.body, s.live, `at ${s.time} (${s.what}): the answers of then`)
    t.same([...byTime.seqs], [s.seq], '... as of the log position of that time (header)')
  }
  // Between two events: the state after the earlier one; a time with an offset is the same moment.
  const mid = steps[3]!
  t.same(
    (await answers(c, 'shop', alice, String(mid.seq + 1))).body.domains,
    mid.live.domains,
    'a seq inside the next step: at least the domains were as before',
  )
  const offset = new Date(Date.parse(mid.time) + 2 * 3_600_000).toISOString().replace('Z', '+02:00')
  t.same((await answers(c, 'shop', alice, offset)).body, mid.live, 'a time with +02:00')
  // A seq of another app's event, after the last step: the state at the end.
  await ok(c, 'POST', '/v1/apps', dave, { name: 'other' })
  const later = await c.deps.store.lastSeq()
  t.same((await answers(c, 'shop', alice, String(later))).body, steps.at(-1)!.live, "a later seq of another app's event: shop as it is")

  // Concurrent time-travel queries each get their own past.
  const all = await Promise.all(steps.map((s) => get(c, `/v1/apps/shop/config?at=${s.seq}`, alice)))
  t.same(
    all.map((r) => r.body),
    steps.map((s) => s.live.config),
    'concurrent queries: each its own point',
  )
  // The live read models are untouched, and no scratch schema is left.
  t.same((await answers(c, 'shop', alice)).body, steps.at(-1)!.live, 'the live answers are as they were')
  const { rows } = await c.deps.pool.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tt\\_%' OR nspname LIKE 'rm\\_%' ORDER BY nspname`)
  t.notOk(
    rows.some((r) => r.nspname.startsWith('tt_')),
    'no scratch schema left behind',
  )
  t.ok(
    ['rm_access', 'rm_apps', 'rm_config', 'rm_containers', 'rm_domains', 'rm_formation', 'rm_releases'].every((s) => rows.some((r) => r.nspname === s)),
    'the live schemas are all there',
  )

  // Bad points: a stable code, nothing appended.
  const head = await c.deps.store.lastSeq()
  const birth = (await c.deps.store.readStream(streamId('app', 'shop'))).events[0]!
  t.equal(birth.type, 'AppCreated')
  const createdAt = birth.occurredAt
  for (const path of Object.values(PATHS)) {
    const p = `/v1/apps/shop${path}`
    await refused(t, c, 400, 'WHARF_INVALID', 'GET', `${p}?at=yesterday`, { token: alice })
    await refused(t, c, 400, 'WHARF_INVALID', 'GET', `${p}?at=0`, { token: alice })
    await refused(t, c, 422, 'WHARF_OUT_OF_RANGE', 'GET', `${p}?at=${head + 1000}`, { token: alice })
    await refused(t, c, 422, 'WHARF_OUT_OF_RANGE', 'GET', `${p}?at=${new Date(Date.now() + 3_600_000).toISOString()}`, { token: alice })
    // Seq 1 is root's registration: shop did not exist yet.
    await refused(t, c, 422, 'WHARF_OUT_OF_RANGE', 'GET', `${p}?at=1`, { token: alice })
    await refused(t, c, 422, 'WHARF_OUT_OF_RANGE', 'GET', `${p}?at=${new Date(Date.parse(createdAt) - 1).toISOString()}`, { token: alice })
  }
  const invalidDate = await refused(t, c, 400, 'WHARF_INVALID', 'GET', '/v1/apps/shop/config?at=2026-13-45T05:00:00Z', { token: alice })
  t.match(invalidDate.body.message, /not a valid date/)
  const before = await refused(t, c, 422, 'WHARF_OUT_OF_RANGE', 'GET', `/v1/apps/shop/config?at=${birth.seq - 1}`, { token: alice })
  t.match(before.body.message, new RegExp(`shop did not exist at seq ${birth.seq - 1}: it was created at seq ${birth.seq} `))
  const atBirth = await get(c, `/v1/apps/shop/config?at=${birth.seq}`, alice)
  t.same([atBirth.status, atBirth.body, atBirth.seq], [200, { values: {} }, birth.seq], 'the seq of its creation: an empty config')

  // Who may not read the app now: the same WHARF_NOT_FOUND as without --at, whatever the point.
  for (const path of Object.values(PATHS)) {
    const p = `/v1/apps/shop${path}`
    await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', `${p}?at=${steps[4]!.seq}`, { token: carol })
    await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', `${p}?at=${head + 1000}`, { token: carol })
    await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', `${p}?at=1`, { token: carol })
    // Bob was a collaborator then, not now.
    await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', `${p}?at=${steps[5]!.seq}`, { token: bob })
    await refused(t, c, 401, 'WHARF_UNAUTHORIZED', 'GET', `${p}?at=${steps[5]!.seq}`)
  }

  // The name reused: the new owner sees nothing of the previous incarnation.
  await ok(c, 'DELETE', '/v1/apps/shop', alice, { confirm: 'shop' })
  await ok(c, 'POST', '/v1/apps', dave, { name: 'shop' })
  await ok(c, 'POST', '/v1/apps/shop/config', dave, { values: { MINE: 'dave' } })
  await waitFor(c.deps.pool, await c.deps.store.lastSeq())
  for (const s of [steps[1]!, steps.at(-1)!]) {
    await refused(t, c, 422, 'WHARF_OUT_OF_RANGE', 'GET', `/v1/apps/shop/config?at=${s.seq}`, { token: dave })
    await refused(t, c, 422, 'WHARF_OUT_OF_RANGE', 'GET', `/v1/apps/shop/releases?at=${encodeURIComponent(s.time)}`, { token: dave })
    await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', `/v1/apps/shop/config?at=${s.seq}`, { token: alice })
  }
  const now = await answers(c, 'shop', dave, String(await c.deps.store.lastSeq()))
  t.same(now.body.config, { values: { MINE: 'dave' } }, "dave's config only")
  t.same(
    (now.body.releases as { releases: { version: number; by: string }[] }).releases.map((r) => [r.version, r.by]),
    [
      [2, 'dave'],
      [1, 'dave'],
    ],
    "dave's releases only",
  )
  t.same(now.body.perms, { owner: 'dave', collaborators: [] })
  t.same(now.body.domains, { domains: [] })
  t.same(now.body.ps, { formation: {}, processes: [] }, 'no container of the previous shop')
  t.same(now.body, (await answers(c, 'shop', dave)).body, 'as of the head: the live answers')
})

t.test('time of one --at query: an app with ~200 and ~2,000 events', async (t) => {
  const c = await startTestController(t)
  await registerAndLogin(c, 'root')
  const alice = await registerAndLogin(c, 'alice')
  for (const [app, n] of [
    ['small', 200],
    ['big', 2_000],
  ] as const) {
    const before = await c.deps.store.lastSeq()
    await ok(c, 'POST', '/v1/apps', alice, { name: app })
    // A third on the runtime stream (containers starting and stopping), the rest config and scale on the app stream.
    for (let i = 1; i < n; i++) {
      if (i % 3 === 0) {
        const container = C(Math.floor((i - 3) / 6))
        if (i % 6 === 0) await runtime(c, app, 'ContainerStopped', { type: 'web', container })
        else await runtime(c, app, 'ContainerStarted', { type: 'web', release: 1, container, host: '127.0.0.1', port: 30000 + (i % 1000), number: 1 })
      } else if (i % 3 === 1) {
        await c.deps.store.append(streamId('app', app), [{ type: 'ConfigSet', data: { app, values: { [`K${i % 50}`]: String(i) } } }], {
          expectedVersion: 'any',
          actor: 'user:alice',
        })
      } else {
        await c.deps.store.append(streamId('app', app), [{ type: 'FormationScaled', data: { app, formation: { web: (i % 5) + 1 } } }], {
          expectedVersion: 'any',
          actor: 'user:alice',
        })
      }
    }
    const head = await c.deps.store.lastSeq()
    await waitFor(c.deps.pool, head, { timeoutMs: 60_000 })
    const live = await answers(c, app, alice)
    for (const [name, path] of [
      ['config:list', '/config'],
      ['ps:list', '/ps'],
      ['apps:info', ''],
    ] as const) {
      const times: number[] = []
      for (let k = 0; k < 3; k++) {
        const started = performance.now()
        const r = await get(c, `/v1/apps/${app}${path}?at=${head}`, alice)
        times.push(performance.now() - started)
        t.equal(r.status, 200)
        t.same(r.body, live.body[name === 'config:list' ? 'config' : name === 'ps:list' ? 'ps' : 'info'], `${app} ${name} at the head: the live answer`)
      }
      times.sort((a, b) => a - b)
      const figure = `timetravel: ${name} --at on an app with ${head - before} events: median ${times[1]!.toFixed(0)} ms (min ${times[0]!.toFixed(0)}, max ${times[2]!.toFixed(0)})`
      t.comment(figure)
      // make test shows a test's stderr, not its TAP comments: the figures are for the report.
      process.stderr.write(`${figure}\n`)
    }
  }
})
