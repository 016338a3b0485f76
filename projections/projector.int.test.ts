import { spawn } from 'node:child_process'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import t from 'tap'
import { ConsumerHealth } from '../core/health.js'
import { createLogger } from '../core/log.js'
import { wharfCatalogue } from '../domain/index.js'
import { EventSubjects, streamId, type NewEvent } from '../events/index.js'
import { JetStreamEventStore } from '../events/jetstream.js'
import { testNatsUrl, testPgUrl, uniqueName } from '../test/harness.js'
import {
  appsProjection,
  CheckpointWatcher,
  configProjection,
  migrateCore,
  Projector,
  readCheckpoints,
  type Projection,
  type ProjectorOptions,
} from './index.js'
import { nextSchemaOf, schemaOf } from './projection.js'
import { countingProjection } from './testing/counting.js'

type Test = { teardown(fn: () => Promise<void>): void }

interface Env {
  ns: string
  store: JetStreamEventStore
  pool: pg.Pool
  /** A projection name unique to this test. */
  name(prefix: string): string
  projector(opts: Omit<ProjectorOptions, 'store' | 'pool'>): Projector
  /** Appends `count` events round-robin over `streams` app streams; returns appended counts per stream and the last seq. */
  appendMany(count: number, streams: number, prefix?: string): Promise<{ perStream: Map<string, number>; lastSeq: number }>
  logLines: Record<string, unknown>[]
  log: ReturnType<typeof createLogger>
}

async function setup(t: Test): Promise<Env> {
  const ns = uniqueName('pj')
  const store = await JetStreamEventStore.connect({ servers: testNatsUrl(), catalogue: wharfCatalogue(), subjects: new EventSubjects(ns) })
  const pool = new pg.Pool({ connectionString: testPgUrl(), max: 20 })
  const names: string[] = []
  const projectors: Projector[] = []
  const logLines: Record<string, unknown>[] = []
  const log = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk, _enc, cb) {
        for (const line of String(chunk).split('\n')) if (line) logLines.push(JSON.parse(line))
        cb()
      },
    }),
  })
  t.teardown(async () => {
    for (const p of projectors) await p.stop()
    for (const n of names) {
      await pool.query(`DROP SCHEMA IF EXISTS ${schemaOf(n)} CASCADE`)
      await pool.query(`DROP SCHEMA IF EXISTS ${nextSchemaOf(n)} CASCADE`)
      await pool.query('DELETE FROM wharf.projection_checkpoints WHERE name = $1', [n])
    }
    await store.destroy()
    await store.close()
    await pool.end()
  })
  const versions = new Map<string, number>()
  return {
    ns,
    store,
    pool,
    logLines,
    log,
    name(prefix) {
      const n = uniqueName(prefix).slice(0, 50)
      names.push(n)
      return n
    },
    projector(opts) {
      const p = new Projector({ store, pool, log, standbyRetryMs: 100, ...opts })
      projectors.push(p)
      return p
    },
    async appendMany(count, streams, prefix = 'a') {
      const perStream = new Map<string, number>()
      let lastSeq = 0
      const workers = Array.from({ length: streams }, async (_, i) => {
        const app = `${prefix}${i}`
        const stream = streamId('app', app)
        for (let k = i; k < count; k += streams) {
          const ev: NewEvent = versions.has(stream)
            ? { type: 'ConfigSet', data: { app, values: { N: String(k) } } }
            : { type: 'AppCreated', data: { app, owner: 'alice' } }
          const r = await store.append(stream, [ev], { actor: 'user:alice', expectedVersion: versions.get(stream) ?? 0 })
          versions.set(stream, r.lastSeq)
          perStream.set(stream, (perStream.get(stream) ?? 0) + 1)
          lastSeq = Math.max(lastSeq, r.lastSeq)
        }
      })
      await Promise.all(workers)
      return { perStream, lastSeq }
    },
  }
}

async function hitsPerStream(pool: pg.Pool, name: string): Promise<{ perStream: Map<string, number>; total: number; distinct: number }> {
  const { rows } = await pool.query(`SELECT stream, count(*)::int AS n FROM ${schemaOf(name)}.hits GROUP BY stream`)
  const { rows: tot } = await pool.query(`SELECT count(*)::int AS total, count(DISTINCT seq)::int AS distinct FROM ${schemaOf(name)}.hits`)
  return { perStream: new Map(rows.map((r) => [r.stream as string, r.n as number])), total: tot[0].total, distinct: tot[0].distinct }
}

async function dump(pool: pg.Pool, schema: string, table: string, order: string): Promise<unknown[]> {
  return (await pool.query(`SELECT * FROM ${schema}.${table} ORDER BY ${order}`)).rows
}

const crashChild = fileURLToPath(new URL('./testing/crash-child.ts', import.meta.url))

function runChild(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', crashChild, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += String(d)))
    child.on('error', reject)
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }))
  })
}

for (const hook of ['afterCommit', 'beforeCommit'] as const) {
  t.test(`crash between ${hook === 'afterCommit' ? 'COMMIT and ack' : 'apply and COMMIT'}: no event applied twice or lost`, async (t) => {
    const env = await setup(t)
    const name = env.name('crash')
    const proj = countingProjection(name)
    // Create the read model on an empty log, so that the child works on the live path.
    const first = env.projector({ projections: [proj] })
    await first.start()
    await first.stop()

    const before = await env.appendMany(300, 7)
    const killAt = 120
    const child = await runChild([testNatsUrl(), testPgUrl(), env.ns, name, hook, String(killAt)])
    t.equal(child.signal, 'SIGKILL', `child died by its own hook (stderr: ${child.stderr.slice(0, 500)})`)

    const [cp] = await readCheckpoints(env.pool, [name])
    const mid = await hitsPerStream(env.pool, name)
    if (hook === 'afterCommit') {
      t.ok(cp!.seq >= killAt, `the batch holding seq ${killAt} was committed (checkpoint ${cp!.seq})`)
    } else {
      t.ok(cp!.seq < killAt, `the batch holding seq ${killAt} was not committed (checkpoint ${cp!.seq})`)
      t.ok(cp!.seq > 0, 'earlier batches were committed')
    }
    t.ok(cp!.seq < before.lastSeq, 'the child died mid-stream')
    t.equal(mid.total, cp!.seq, 'rows match the checkpoint: every committed event once, nothing beyond')

    // More events while nobody runs the projection, then a restart.
    const after = await env.appendMany(100, 5, 'b')
    const again = env.projector({ projections: [proj] })
    await again.start()
    await again.waitFor(after.lastSeq, { timeoutMs: 15_000 })
    const end = await hitsPerStream(env.pool, name)
    const expected = new Map([...before.perStream, ...after.perStream])
    t.equal(end.total, 400, 'every appended event has a row')
    t.equal(end.distinct, end.total, 'no event was applied twice')
    t.same(Object.fromEntries(end.perStream), Object.fromEntries(expected), 'per stream: exactly what was appended')
    const [cp2] = await readCheckpoints(env.pool, [name])
    t.equal(cp2!.seq, after.lastSeq)
  })
}

t.test('a throwing projection stops at the event, logs it, and the others keep running', async (t) => {
  const env = await setup(t)
  const badName = env.name('bad')
  const goodName = env.name('good')
  const bad: Projection = {
    name: badName,
    version: 1,
    handles: ['AppCreated', 'ConfigSet'],
    tables: 'CREATE TABLE seen (seq bigint NOT NULL)',
    async apply(e, tx) {
      await tx.query('INSERT INTO seen (seq) VALUES ($1)', [e.seq])
      if (e.type === 'ConfigSet' && 'BOOM' in (e.data as { values: Record<string, string> }).values) throw new Error('boom in projection')
    },
  }
  const projector = env.projector({ projections: [bad, countingProjection(goodName)] })
  await projector.start()

  const s = streamId('app', 'shop')
  const a = await env.store.append(s, [{ type: 'AppCreated', data: { app: 'shop', owner: 'alice' } }], { actor: 'user:alice', expectedVersion: 0 })
  const b = await env.store.append(s, [{ type: 'ConfigSet', data: { app: 'shop', values: { A: '1' } } }], { actor: 'user:alice', expectedVersion: a.lastSeq })
  const boom = await env.store.append(
    s,
    [
      { type: 'ConfigSet', data: { app: 'shop', values: { BOOM: '1' } } },
      { type: 'ConfigSet', data: { app: 'shop', values: { C: '3' } } },
    ],
    {
      actor: 'user:alice',
      expectedVersion: b.lastSeq,
      correlationId: 'corr-boom',
    },
  )
  const failedSeq = boom.seqs[0]!
  await projector.waitFor(boom.lastSeq, { projections: [goodName] })
  await t.rejects(
    projector.waitFor(boom.lastSeq, { projections: [badName], timeoutMs: 3000 }),
    { code: 'WHARF_UNAVAILABLE' },
    'waiting on a failed projection fails fast',
  )

  const later = await env.store.append(s, [{ type: 'ConfigSet', data: { app: 'shop', values: { D: '4' } } }], {
    actor: 'user:alice',
    expectedVersion: boom.lastSeq,
  })
  await projector.waitFor(later.lastSeq, { projections: [goodName] })

  const [cpBad] = await readCheckpoints(env.pool, [badName])
  t.equal(cpBad!.status, 'failed')
  t.equal(cpBad!.seq, failedSeq - 1, 'checkpoint stops just before the failing event')
  t.equal(cpBad!.errorSeq, failedSeq)
  t.match(cpBad!.error, /boom in projection/)
  t.equal(projector.states()[badName], 'failed')
  t.equal(projector.states()[goodName], 'live')
  const { rows } = await env.pool.query(`SELECT seq FROM ${schemaOf(badName)}.seen ORDER BY seq`)
  t.same(
    rows.map((r) => Number(r.seq)),
    [a.lastSeq, b.lastSeq],
    'the failing event had no effect and nothing after it was applied',
  )
  const [cpGood] = await readCheckpoints(env.pool, [goodName])
  t.equal(cpGood!.seq, later.lastSeq, 'the other projection went on')

  const line = env.logLines.find((l) => l.level === 'error' && l.projection === badName)
  t.ok(line, 'an error was logged')
  t.equal(line?.service, 'projector')
  t.equal(line?.seq, failedSeq)
  t.equal(line?.correlationId, 'corr-boom')
  t.match((line?.err as { message?: string })?.message, /boom in projection/)
})

t.test('a writes-only projection: its statements go with COMMIT as literals; one the database refuses stops it at that event', async (t) => {
  const env = await setup(t)
  const name = env.name('wo')
  const writesOnly: Projection = {
    name,
    version: 1,
    handles: ['AppCreated', 'ConfigSet'],
    writesOnly: true,
    tables: "CREATE TABLE seen (seq bigint NOT NULL, v text NOT NULL CHECK (v <> 'BOOM'), tags text[] NOT NULL)",
    async apply(e, tx) {
      const v = e.type === 'ConfigSet' ? Object.values((e.data as { values: Record<string, string> }).values)[0]! : "it's"
      await tx.query('INSERT INTO seen (seq, v, tags) VALUES ($1, $2, $3::text[])', [e.seq, v, [v, 'a"b\\c']])
    },
  }
  const projector = env.projector({ projections: [writesOnly] })
  await projector.start()
  const s = streamId('app', 'shop')
  const a = await env.store.append(s, [{ type: 'AppCreated', data: { app: 'shop', owner: 'alice' } }], { actor: 'user:alice', expectedVersion: 0 })
  const b = await env.store.append(s, [{ type: 'ConfigSet', data: { app: 'shop', values: { A: 'x\\y $1' } } }], {
    actor: 'user:alice',
    expectedVersion: a.lastSeq,
  })
  await projector.waitFor(b.lastSeq, { projections: [name] })
  const boom = await env.store.append(s, [{ type: 'ConfigSet', data: { app: 'shop', values: { B: 'BOOM' } } }], {
    actor: 'user:alice',
    expectedVersion: b.lastSeq,
  })
  await t.rejects(projector.waitFor(boom.lastSeq, { projections: [name], timeoutMs: 5000 }), { code: 'WHARF_UNAVAILABLE' }, 'the refused statement stops it')
  const { rows } = await env.pool.query(`SELECT seq, v, tags FROM ${schemaOf(name)}.seen ORDER BY seq`)
  t.same(
    rows.map((r) => [Number(r.seq), r.v, r.tags]),
    [
      [a.lastSeq, "it's", ["it's", 'a"b\\c']],
      [b.lastSeq, 'x\\y $1', ['x\\y $1', 'a"b\\c']],
    ],
    'values written as they were given',
  )
  const [cp] = await readCheckpoints(env.pool, [name])
  t.equal(cp!.status, 'failed')
  t.equal(cp!.seq, b.lastSeq, 'checkpoint stops just before the refused event')
  t.equal(cp!.errorSeq, boom.lastSeq)
})

t.test('a writes-only projection in one round trip: a checkpoint moved behind its back is read again, nothing applied twice', async (t) => {
  const env = await setup(t)
  const name = env.name('wo1')
  const writesOnly: Projection = {
    name,
    version: 1,
    handles: ['AppCreated', 'ConfigSet'],
    writesOnly: true,
    tables: 'CREATE TABLE seen (seq bigint PRIMARY KEY)',
    async apply(e, tx) {
      await tx.query('INSERT INTO seen (seq) VALUES ($1)', [e.seq])
    },
  }
  const projector = env.projector({ projections: [writesOnly] })
  await projector.start()
  const s = streamId('app', 'shop')
  const append = (version: number, k: string) =>
    env.store.append(s, [{ type: 'ConfigSet', data: { app: 'shop', values: { [k]: '1' } } }], { actor: 'user:alice', expectedVersion: version })
  const a = await env.store.append(s, [{ type: 'AppCreated', data: { app: 'shop', owner: 'alice' } }], { actor: 'user:alice', expectedVersion: 0 })
  await projector.waitFor(a.lastSeq, { projections: [name] })
  // As if the next event had been applied already (the row is the projector's own; only a restore moves it like this).
  await env.pool.query('UPDATE wharf.projection_checkpoints SET seq = $2 WHERE name = $1', [name, a.lastSeq + 1])
  const b = await append(a.lastSeq, 'B')
  t.equal(b.lastSeq, a.lastSeq + 1)
  const c = await append(b.lastSeq, 'C')
  await projector.waitFor(c.lastSeq, { projections: [name] })
  const { rows } = await env.pool.query(`SELECT seq FROM ${schemaOf(name)}.seen ORDER BY seq`)
  t.same(
    rows.map((r) => Number(r.seq)),
    [a.lastSeq, c.lastSeq],
    'the event the checkpoint covers is skipped, the next applied',
  )
  const [cp] = await readCheckpoints(env.pool, [name])
  t.equal(cp!.seq, c.lastSeq)
  t.equal(cp!.status, 'running')
})

t.test('rebuild from seq 1 gives the rows of the live read model', async (t) => {
  const env = await setup(t)
  const apps = { ...appsProjection, name: env.name('apps') }
  const config = { ...configProjection, name: env.name('config') }
  const counting = countingProjection(env.name('cnt'))
  const projector = env.projector({ projections: [apps, config, counting], replayBatch: 7 })
  await projector.start()

  const at = '2025-05-01T10:00:00.000Z'
  const c = (type: string, data: unknown): NewEvent => ({ type, data, occurredAt: at })
  let v = 0
  const put = async (app: string, events: NewEvent[]): Promise<void> => {
    const r = await env.store.append(streamId('app', app), events, { actor: 'user:alice', expectedVersion: 'any' })
    v = r.lastSeq
  }
  for (let i = 0; i < 12; i++) {
    const app = `app${i}`
    await put(app, [c('AppCreated', { app, owner: i % 2 ? 'alice' : 'bob' }), c('ConfigSet', { app, values: { A: `${i}`, B: 'x', C: 'y' } })])
    if (i % 3 === 0) await put(app, [c('ConfigUnset', { app, keys: ['B'] })])
    if (i % 4 === 0) await put(app, [c('AppDestroyed', { app })])
    if (i % 8 === 0) await put(app, [c('AppCreated', { app, owner: 'carol' }), c('ConfigSet', { app, values: { Z: 'again' } })])
  }
  await projector.waitFor(v)
  const live = {
    apps: await dump(env.pool, schemaOf(apps.name), 'apps', 'name'),
    config: await dump(env.pool, schemaOf(config.name), 'config', 'app, key'),
    hits: await dump(env.pool, schemaOf(counting.name), 'hits', 'seq'),
  }
  t.ok(live.apps.length === 12 && live.config.length > 12, 'the live models hold data')
  t.same(
    (live.config as { app: string; key: string }[]).filter((r) => r.app === 'app0').map((r) => r.key),
    ['Z'],
    'a destroyed and re-created app starts with empty config',
  )

  // A marker in the live schema proves the rebuild really replaced it.
  await env.pool.query(`CREATE TABLE ${schemaOf(apps.name)}.marker (x int)`)
  await projector.rebuild(apps.name)
  await projector.rebuild(config.name)
  await projector.rebuild(counting.name)
  const { rows: marker } = await env.pool.query(`SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'marker'`, [schemaOf(apps.name)])
  t.equal(marker.length, 0, 'the rebuilt schema was swapped in')
  t.same(await dump(env.pool, schemaOf(apps.name), 'apps', 'name'), live.apps, 'apps: same rows')
  t.same(await dump(env.pool, schemaOf(config.name), 'config', 'app, key'), live.config, 'config: same rows')
  t.same(
    (await dump(env.pool, schemaOf(counting.name), 'hits', 'seq')).map((r) => ({ ...(r as object), at: null })),
    live.hits.map((r) => ({ ...(r as object), at: null })),
    'counting: same rows',
  )

  // Live again after the swap.
  await put('late', [c('AppCreated', { app: 'late', owner: 'alice' })])
  await projector.waitFor(v)
  const { rows: late } = await env.pool.query(`SELECT owner FROM ${schemaOf(apps.name)}.apps WHERE name = 'late'`)
  t.same(late, [{ owner: 'alice' }], 'events after the rebuild are applied live')

  // A new version of a projection is rebuilt on start.
  await projector.stop()
  const apps2 = { ...apps, version: 2 }
  const p2 = env.projector({ projections: [apps2] })
  await p2.start()
  const [cp] = await readCheckpoints(env.pool, [apps.name])
  t.equal(cp!.version, 2)
  t.equal(cp!.seq, v)
  t.same(
    await dump(env.pool, schemaOf(apps.name), 'apps', 'name'),
    [...live.apps, { name: 'late', owner: 'alice', created_at: new Date(at), destroyed_at: null }].sort((x, y) =>
      (x as { name: string }).name < (y as { name: string }).name ? -1 : 1,
    ),
  )
})

t.test('waitFor resolves after append and times out with WHARF_TIMEOUT', async (t) => {
  const env = await setup(t)
  const name = env.name('wait')
  const projector = env.projector({ projections: [countingProjection(name)] })
  await projector.start()
  const r = await env.store.append(streamId('app', 'w'), [{ type: 'AppCreated', data: { app: 'w', owner: 'alice' } }], {
    actor: 'user:alice',
    expectedVersion: 0,
  })
  await projector.waitFor(r.lastSeq)
  const { rows } = await env.pool.query(`SELECT seq FROM ${schemaOf(name)}.hits`)
  t.same(
    rows.map((x) => Number(x.seq)),
    [r.lastSeq],
    'the row is there once waitFor resolves',
  )

  // From "another process": a watcher over its own pool, waiting before the event exists.
  const otherPool = new pg.Pool({ connectionString: testPgUrl(), max: 2 })
  const watcher = new CheckpointWatcher({ pool: otherPool, projections: [name] })
  t.teardown(async () => {
    await watcher.close()
    await otherPool.end()
  })
  const waiting = watcher.waitFor(r.lastSeq + 1, { timeoutMs: 5000 })
  const r2 = await env.store.append(streamId('app', 'w'), [{ type: 'ConfigSet', data: { app: 'w', values: { K: 'v' } } }], {
    actor: 'user:alice',
    expectedVersion: r.lastSeq,
  })
  t.equal(r2.lastSeq, r.lastSeq + 1)
  await waiting
  t.pass('a watcher in another pool saw the checkpoint through NOTIFY')

  const started = Date.now()
  await t.rejects(projector.waitFor(r2.lastSeq + 1, { timeoutMs: 300 }), { code: 'WHARF_TIMEOUT' })
  const took = Date.now() - started
  t.ok(took >= 290 && took < 2000, `the bound held (${took} ms)`)
})

t.test('migrations are idempotent: starting twice changes nothing', async (t) => {
  const env = await setup(t)
  const name = env.name('mig')
  await Promise.all([1, 2, 3, 4].map(() => migrateCore(env.pool)))
  const p1 = env.projector({ projections: [countingProjection(name)] })
  await p1.start()
  const r = await env.store.append(streamId('app', 'm'), [{ type: 'AppCreated', data: { app: 'm', owner: 'alice' } }], {
    actor: 'user:alice',
    expectedVersion: 0,
  })
  await p1.waitFor(r.lastSeq)
  const oid = async (): Promise<unknown> => (await env.pool.query('SELECT oid FROM pg_namespace WHERE nspname = $1', [schemaOf(name)])).rows[0]?.oid
  const schemaBefore = await oid()
  await p1.stop()

  const p2 = env.projector({ projections: [countingProjection(name)] })
  await p2.start()
  await p2.waitFor(r.lastSeq)
  t.equal(await oid(), schemaBefore, 'the read model was kept, not rebuilt')
  const hits = await hitsPerStream(env.pool, name)
  t.equal(hits.total, 1, 'no event applied again')
  const [cp] = await readCheckpoints(env.pool, [name])
  t.equal(cp!.seq, r.lastSeq)
  t.equal(cp!.status, 'running')
})

t.test('a second projector stands by and takes over when the first stops', async (t) => {
  const env = await setup(t)
  const name = env.name('ha')
  const p1 = env.projector({ projections: [countingProjection(name)] })
  await p1.start()
  const p2 = env.projector({ projections: [countingProjection(name)] })
  await p2.start()
  t.equal(p2.states()[name], 'standby')
  const r1 = await env.appendMany(50, 3)
  await p1.waitFor(r1.lastSeq)
  await p1.stop()
  const r2 = await env.appendMany(50, 3, 'z')
  await p2.waitFor(r2.lastSeq, { timeoutMs: 10_000 })
  t.equal(p2.states()[name], 'live')
  const hits = await hitsPerStream(env.pool, name)
  t.equal(hits.total, 100)
  t.equal(hits.distinct, 100)
})

t.test('Postgres drops every session (idle, the lock session, mid-transaction): the projector reconnects and resumes, nothing lost or twice', async (t) => {
  const env = await setup(t)
  const name = env.name('drop')
  const proj = countingProjection(name)
  const app = uniqueName('pjdrop').slice(0, 40)
  // A pool of its own, so that only the projector's sessions are cut.
  const pool = new pg.Pool({ connectionString: testPgUrl(), max: 10, application_name: app })
  pool.on('error', () => {})
  pool.on('connect', (client) => client.on('error', () => {}))
  t.teardown(() => pool.end())
  const health = new ConsumerHealth()
  const kill = () => env.pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()', [app])
  let cut = false
  const p = new Projector({
    store: env.store,
    pool,
    log: env.log,
    projections: [proj],
    retryMs: 50,
    health,
    batch: { maxBatch: 20 },
    hooks: {
      // Once, inside a transaction that has applied its batch: every session of the pool dies.
      async beforeCommit(info) {
        if (cut || info.phase !== 'live' || info.lastSeq < 100) return
        cut = true
        await kill()
      },
    },
  })
  t.teardown(() => p.stop())
  await p.start()
  const first = await env.appendMany(300, 5)
  await until('the cut', async () => cut, 20_000)
  await until('reconnected', async () => health.report().some((c) => c.reconnects > 0) || undefined, 20_000)
  // And once more while idle, after it caught up.
  await p.waitFor(first.lastSeq, { timeoutMs: 30_000 })
  await kill()
  const second = await env.appendMany(50, 5, 'b')
  await p.waitFor(second.lastSeq, { timeoutMs: 30_000 })
  const end = await hitsPerStream(env.pool, name)
  t.equal(end.total, 350, 'every appended event has a row')
  t.equal(end.distinct, end.total, 'no event was applied twice')
  const [c] = health.report(second.lastSeq)
  t.match(c, { name: `projection ${name}`, state: 'running', lag: 0 })
  t.ok(c!.reconnects >= 1, `it reconnected (${c!.reconnects} times)`)
  t.ok(
    env.logLines.some((l) => l.msg === 'projection lock connection back; resuming every projection from its checkpoint'),
    'says it resumed',
  )
})

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms: number): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
