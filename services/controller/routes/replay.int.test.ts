/**
 * `POST /v1/admin/replays` through the real controller, NATS and Postgres: --verify finds rows
 * tampered with directly in Postgres and changes nothing; a replay mends them; events appended while
 * one runs are neither lost nor applied twice; non-admins and a second replay at once are refused.
 */
import t, { type Test } from 'tap'
import { streamId } from '../../../events/index.js'
import { populate } from '../../store/testing.js'
import { startTestController, type TestController } from '../testing.js'

interface Job {
  id: string
  status: 'running' | 'done' | 'failed'
  phase: string
  progress: { seq: number; total: number; eventsPerSec: number } | null
  error: string | null
  result: {
    seq: number
    events: number
    tookMs: number
    eventsPerSec: number
    swapped?: string[]
    models?: {
      projection: string
      identical: boolean
      differing: number
      seq: number
      problem?: string
      rows: { table: string; kind: string; key: Record<string, unknown>; live?: any; rebuilt?: any }[]
    }[]
  } | null
}

async function finish(t: Test, c: TestController, token: string, job: Job): Promise<Job> {
  const deadline = Date.now() + 90_000
  while (job.status === 'running') {
    if (Date.now() > deadline) throw new Error(`replay ${job.id} still running after 90 s`)
    await new Promise((r) => setTimeout(r, 100))
    const res = await c.call<Job>('GET', `/v1/admin/replays/${job.id}`, { token })
    t.equal(res.status, 200, 'GET /v1/admin/replays/:id', { diagnostic: res.status !== 200 })
    job = res.body
  }
  t.equal(job.status, 'done', `replay ${job.id} done ${job.error ?? ''}`)
  return job
}

async function replay(t: Test, c: TestController, token: string, body: Record<string, unknown>): Promise<Job> {
  const res = await c.call<Job>('POST', '/v1/admin/replays', { token, body })
  t.equal(res.status, 202, `POST /v1/admin/replays ${JSON.stringify(body)} -> 202 ${JSON.stringify(res.body)}`)
  return finish(t, c, token, res.body)
}

/** `n` ConfigSet events on app `app`'s stream, appended straight to the log in commits of 100. */
async function appendMany(c: TestController, app: string, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i += 100) {
    const events = Array.from({ length: Math.min(100, n - i) }, (_, k) => ({ type: 'ConfigSet', data: { app, values: { [tag]: String(i + k) } } }))
    await c.deps.store.append(streamId('app', app), events, { actor: 'system:test', expectedVersion: 'any' })
  }
}

t.test('admin replay: --verify finds tampered rows, a replay mends them, appends during it are applied once', async (t) => {
  const c = await startTestController(t)
  const { root, alice } = await populate(c)
  const pool = c.deps.pool

  const clean = await replay(t, c, root, { verify: true })
  const models = clean.result!.models!
  t.ok(models.length >= 10, 'every read model is compared')
  t.same(
    models.filter((m) => !m.identical),
    [],
    'an untouched platform: every read model identical',
  )
  t.equal(clean.result!.seq, await c.deps.store.lastSeq(), 'compared at the end of the log')
  t.notOk(clean.result!.swapped, 'verify swaps nothing in')

  // Tamper with three read models: a changed row, a lost row, a row no event made.
  await pool.query(`UPDATE rm_config.config SET value = 'tampered' WHERE app = 'shop' AND key = 'WORKERS'`)
  await pool.query(`DELETE FROM rm_apps.apps WHERE name = 'other'`)
  await pool.query(`INSERT INTO rm_domains.domains (domain, app, created_at) VALUES ('evil.example.com', 'shop', now())`)

  const found = await replay(t, c, root, { verify: true })
  const byName = Object.fromEntries(found.result!.models!.map((m) => [m.projection, m]))
  t.match(byName.config, {
    identical: false,
    differing: 1,
    rows: [{ table: 'config', kind: 'differs', key: { app: 'shop', key: 'WORKERS' }, live: { value: 'tampered' }, rebuilt: { value: '4' } }],
  })
  t.match(byName.apps, { identical: false, differing: 1, rows: [{ table: 'apps', kind: 'only-rebuilt', key: { name: 'other' }, rebuilt: { name: 'other' } }] })
  t.match(byName.domains, { identical: false, differing: 1, rows: [{ table: 'domains', kind: 'only-live', key: { domain: 'evil.example.com' } }] })
  t.notOk(byName.domains?.rows[0]?.rebuilt, 'a row only live has no rebuilt side')
  for (const m of found.result!.models!) if (!['config', 'apps', 'domains'].includes(m.projection)) t.ok(m.identical, `${m.projection} identical`)
  const { rows: still } = await pool.query(`SELECT value FROM rm_config.config WHERE app = 'shop' AND key = 'WORKERS'`)
  t.equal(still[0].value, 'tampered', '--verify changed nothing')
  const { rows: shadows } = await pool.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE '%replay%'`)
  t.same(shadows, [], 'the shadow schemas are gone')

  // More than a batch of history (5,000 events), so that a replay takes a while: 16 streams at once.
  await Promise.all(Array.from({ length: 16 }, (_, i) => appendMany(c, `bulk${i}`, 500, 'N')))

  // Refusals: a non-admin, an unknown read model, a second replay while one runs.
  const denied = await c.call('POST', '/v1/admin/replays', { token: alice, body: {} })
  t.match(denied, { status: 403, body: { code: 'WHARF_FORBIDDEN' } }, 'a non-admin may not replay')
  t.match(await c.call('POST', '/v1/admin/replays', { token: root, body: { projection: 'nope' } }), { status: 404, body: { code: 'WHARF_NOT_FOUND' } })
  t.match(await c.call('POST', '/v1/admin/replays', { token: root, body: { verify: 'yes' } }), { status: 400, body: { code: 'WHARF_INVALID' } })

  const before = await c.deps.store.lastSeq()
  const first = await c.call<Job>('POST', '/v1/admin/replays', { token: root, body: {} })
  t.equal(first.status, 202)
  t.match(first.body, { status: 'running', phase: 'replaying' })
  const second = await c.call('POST', '/v1/admin/replays', { token: root, body: { verify: true } })
  t.match(second, { status: 409, body: { code: 'WHARF_BUSY', details: { replay: first.body.id } } }, 'a second replay at once is refused')
  t.match(await c.call('GET', `/v1/admin/replays/${first.body.id}`, { token: alice }), { status: 403, body: { code: 'WHARF_FORBIDDEN' } })

  // While it runs: the live read models answer, and new events keep coming, through the API and straight to the log.
  const during = await c.call('GET', '/v1/apps/shop/config', { token: alice })
  t.equal(during.status, 200, 'the live read models keep serving')
  const appender = (async () => {
    for (let i = 0; i < 20; i++) {
      await appendMany(c, 'other', 50, `D${i}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  })()
  const mended = await finish(t, c, root, first.body)
  await appender
  const set = await c.call('POST', '/v1/apps/shop/config', { token: alice, body: { values: { AFTER: 'yes' } } })
  t.equal(set.status, 200, 'commands work after the swap')
  t.ok(mended.result!.swapped!.includes('config') && mended.result!.swapped!.includes('eventlog'), 'every read model swapped in')
  t.ok(mended.result!.seq > before, `events appended during the replay are in the rebuilt read models (${before} -> ${mended.result!.seq})`)
  t.ok(mended.result!.eventsPerSec > 0 && mended.result!.tookMs > 0, `the figure: ${mended.result!.eventsPerSec} events/s`)

  // Mended, and nothing lost or applied twice: the event log holds each seq once, every checkpoint runs.
  const last = await c.deps.store.lastSeq()
  // A commit (one append) of several events shares one seq: count the events, not the seqs.
  let events = 0
  for await (const e of c.deps.store.readAll(1)) if (e.seq <= last) events++
  const { rows: cps } = await pool.query<{ name: string; seq: string; status: string }>('SELECT name, seq, status FROM wharf.projection_checkpoints')
  const deadline = Date.now() + 20_000
  for (;;) {
    const { rows } = await pool.query<{ n: string; max: string }>('SELECT count(*) AS n, max(seq) AS max FROM rm_eventlog.events')
    if (Number(rows[0]!.max) === last || Date.now() > deadline) {
      t.equal(Number(rows[0]!.n), events, 'the event log read model holds every event once')
      t.equal(Number(rows[0]!.max), last)
      break
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  t.ok(
    cps.every((r) => r.status === 'running'),
    'every read model runs',
  )
  const { rows: cfg } = await pool.query<{ key: string; value: string }>(
    `SELECT key, value FROM rm_config.config WHERE app = 'other' AND key LIKE 'D%' ORDER BY key`,
  )
  t.equal(cfg.length, 20, 'every key appended during the replay is there')
  t.ok(
    cfg.every((r) => r.value === '49'),
    'with its last value',
  )
  const { rows: worker } = await pool.query(`SELECT value FROM rm_config.config WHERE app = 'shop' AND key = 'WORKERS'`)
  t.equal(worker[0].value, '4', 'the tampered value is mended')
  t.equal((await pool.query(`SELECT 1 FROM rm_apps.apps WHERE name = 'other'`)).rowCount, 1, 'the deleted row is back')
  t.equal((await pool.query(`SELECT 1 FROM rm_domains.domains WHERE domain = 'evil.example.com'`)).rowCount, 0, 'the forged row is gone')
  const { rows: options } = await pool.query(
    `SELECT n.nspname, c.relname, c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname LIKE 'rm\\_%' AND c.relkind = 'r' AND c.reloptions IS NOT NULL`,
  )
  t.same(options, [], 'the swapped-in tables are vacuumed as any other (autovacuum was off only while they loaded)')
  const { rows: keyed } = await pool.query(`SELECT conname FROM pg_constraint WHERE conrelid = 'rm_eventlog.events'::regclass AND contype = 'p'`)
  t.same(keyed, [{ conname: 'events_pkey' }], "the event log's key, built as a unique index during the replay, is its primary key")

  const after = await replay(t, c, root, { verify: true })
  t.same(
    after.result!.models!.filter((m) => !m.identical),
    [],
    'a verify after the replay: every read model identical',
  )

  // One read model only.
  const one = await replay(t, c, root, { projection: 'domains', verify: true })
  t.same(
    one.result!.models!.map((m) => [m.projection, m.identical]),
    [['domains', true]],
  )
})
