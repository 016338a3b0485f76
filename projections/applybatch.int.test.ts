/**
 * Every read model's batch path against its reference, in Postgres: a history with the awkward
 * cases (crashes and restarts of a slot, scaling a crashed slot away, failed builds, rollbacks,
 * unsets, apps destroyed and created again under the same name, a release named twice) applied
 * event by event with `apply` into one schema, and with `applyBatch` (or the pipelined `apply` of the
 * replay, or the in-memory `bulk` fold of a rebuild) in batches of many sizes into another, must leave
 * the same rows.
 */
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import type { RecordedEvent } from '../events/index.js'
import { freshDatabase } from '../test/harness.js'
import { transaction } from './checkpoints.js'
import { wharfProjections } from './index.js'
import { pipelinedApply } from './pipeline.js'
import type { Projection } from './projection.js'
import { compareSchemas, createShadow } from './replay.js'

/**
 * The time of the n-th event: as `toISOString` writes it, and now and then in another form Postgres
 * reads (microseconds, an offset, no fraction, a space), which the event log's binary rows either
 * convert exactly or leave to Postgres.
 */
function timeOf(t0: number, n: number): string {
  const iso = new Date(t0 + n).toISOString()
  switch (n % 11) {
    case 3:
      return iso.replace('Z', '123Z')
    case 5:
      return iso.replace('T00:', 'T05:').replace('Z', '+05:00')
    case 7:
      return iso.replace(/\.\d+Z$/, 'Z')
    case 9:
      return iso.replace('T', ' ')
    default:
      return iso
  }
}

/** A history over a few apps, as recorded events (seq from 1, a millisecond apart). */
function history(): RecordedEvent[] {
  const out: RecordedEvent[] = []
  const t0 = Date.parse('2026-12-01T00:00:00.000Z')
  const push = (stream: string, type: string, data: Record<string, unknown>) =>
    out.push({
      id: randomUUID(),
      seq: out.length + 1,
      type,
      version: 1,
      stream,
      occurredAt: timeOf(t0, out.length),
      actor: out.length % 13 === 4 ? 'user:zoë 🚢' : 'user:alice',
      causationId: null,
      correlationId: `c${out.length}`,
      data,
    })
  const container = (app: string, n: number) => `${app}-${n}-${'c'.repeat(40)}`
  for (const app of ['shop', 'blog', 'wiki']) {
    for (let life = 0; life < 2; life++) {
      push(`app.${app}`, 'AppCreated', { app, owner: 'alice' })
      let c = 0
      for (let v = 1; v <= 6; v++) {
        push(`app.${app}`, 'ConfigSet', { app, values: { [`K${v % 3}`]: `v${v}`, QUOTE: `it's "${v}"\\` } })
        if (v === 4) push(`app.${app}`, 'ConfigUnset', { app, keys: ['K1'] })
        const build = randomUUID()
        push(`build.${build}`, 'PushReceived', { app, sha: `${v}`.padStart(40, 'a'), user: 'alice', fingerprint: 'SHA256:x' })
        push(`build.${build}`, 'BuildStarted', { app, user: 'alice', kind: 'git', sha: `${v}`.padStart(40, 'a'), stack: 'node', builder: 'h:1' })
        if (v === 3) {
          push(`build.${build}`, 'BuildFailed', { app, reason: 'npm ci failed', lastLines: ['a', 'b "c"'] })
          continue
        }
        push(`build.${build}`, 'BuildSucceeded', { app, image: `img/${app}:${v}`, procfile: { web: 'node s.js' }, port: 5000 })
        const release = {
          app,
          version: v,
          image: `img/${app}:${v}`,
          procfile: { web: 'node s.js' },
          port: 5000,
          config: { K0: 'snap' },
          limits: { memory: {}, cpu: {} },
          by: 'alice',
          summary: `v${v}`,
          build,
          ...(v === 5 ? { rollbackOf: 2 } : {}),
        }
        push(`app.${app}`, 'ReleaseCreated', release)
        if (v === 2) push(`app.${app}`, 'ReleaseCreated', { ...release, summary: 'the same version again' })
        push(`app.${app}`, 'FormationScaled', { app, formation: { web: v % 3 === 0 ? 1 : 2, worker: 1 } })
        push(`runtime.${app}`, 'DeployStarted', { app, release: v, formation: { web: 2 } })
        const started = [1, 2].map((n) => ({ id: container(app, ++c), n }))
        for (const s of started)
          push(`runtime.${app}`, 'ContainerStarted', { app, type: 'web', release: v, container: s.id, host: 'h', port: 30000 + c, number: s.n })
        if (v % 2 === 0) push(`runtime.${app}`, 'ContainerCrashed', { app, type: 'web', container: started[1]!.id, exitCode: 137, reason: 'OOM' })
        if (v === 4) push(`app.${app}`, 'FormationScaled', { app, formation: { web: 1 } })
        push(`runtime.${app}`, 'ContainerStopping', { app, type: 'web', container: started[0]!.id })
        if (v % 3 !== 0) push(`runtime.${app}`, 'ContainerStopped', { app, type: 'web', container: started[0]!.id })
        push(`runtime.${app}`, 'ContainerStarted', { app, type: 'web', release: v, container: container(app, ++c), host: 'h', number: 2 })
        push(`runtime.${app}`, 'DeployCompleted', { app, release: v })
        if (v === 5) push(`app.${app}`, 'CollaboratorAdded', { app, username: 'bob' })
        if (v === 1) push(`app.${app}`, 'DomainAdded', { app, domain: `${app}.example.com` })
        // Collaborators, maintenance and domains coming and going (a domain moving to another app, then that app destroyed).
        if (v === 2) push(`app.${app}`, 'CollaboratorAdded', { app, username: 'carol' })
        if (v === 3) push(`app.${app}`, 'CollaboratorRemoved', { app, username: 'carol' })
        if (v === 2 || v === 4) push(`app.${app}`, 'MaintenanceSet', { app, enabled: true })
        if (v === 3) push(`app.${app}`, 'MaintenanceSet', { app, enabled: false })
        if (v === 6) push(`app.${app}`, 'AppTransferred', { app, from: 'alice', to: 'bob' })
        if (v === 2) push(`app.${app}`, 'DomainAdded', { app, domain: 'shared.example.com' })
        if (v === 3) push(`app.${app}`, 'DomainAdded', { app, domain: `www.${app}.example.com` })
        if (v === 4) push(`app.${app}`, 'DomainRemoved', { app, domain: `www.${app}.example.com` })
        if (v === 4) push(`app.${app}`, 'DomainRemoved', { app, domain: 'shared.example.com' })
      }
      if (life === 0 && app !== 'wiki') push(`app.${app}`, 'AppDestroyed', { app })
    }
  }
  return out
}

t.test('applyBatch (and the pipelined apply) has the effect of apply, event by event, for every read model', async (t) => {
  const pool = new pg.Pool({ connectionString: await freshDatabase(t, 'ab'), max: 4 })
  t.teardown(() => pool.end())
  const events = history()
  t.ok(events.length > 300, `${events.length} events`)
  for (const p of wharfProjections()) {
    const handles = new Set(p.handles)
    const mine = events.filter((e) => handles.has(e.type))
    if (mine.length === 0) continue
    await createShadow(pool, p, 'ref')
    await transaction(pool, async (tx) => {
      await tx.query('SET LOCAL search_path TO ref')
      for (const e of mine) await p.apply(e, tx)
    })
    let counted = 0
    const { rows: tables } = await pool.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = 'ref'`)
    for (const { tablename } of tables) counted += Number((await pool.query(`SELECT count(*) AS n FROM ref."${tablename}"`)).rows[0].n)
    if (p.applyBatch) t.ok(counted > 0, `${p.name}: the reference holds ${counted} rows`)
    const ways: [string, (p: Projection, es: RecordedEvent[], tx: pg.PoolClient) => Promise<void>][] = [['pipelined apply', pipelinedApply]]
    if (p.applyBatch) ways.unshift(['applyBatch', (p, es, tx) => p.applyBatch!(es, tx)])
    for (const [way, run] of ways) {
      for (const size of [1, 3, 17, 64, mine.length]) {
        await createShadow(pool, p, 'batched')
        for (let i = 0; i < mine.length; i += size) {
          await transaction(pool, async (tx) => {
            await tx.query('SET LOCAL search_path TO batched')
            await run(p, mine.slice(i, i + size), tx)
          })
        }
        const diff = await compareSchemas(pool, 'ref', 'batched', 5)
        t.same(diff, { differing: 0, rows: [] }, `${p.name}: ${way} in batches of ${size} = apply`)
      }
    }
    // A rebuild into empty tables: folded in memory batch after batch, written once.
    for (const size of p.bulk ? [1, 17, 64, mine.length] : []) {
      await createShadow(pool, p, 'batched')
      const fold = p.bulk!()
      for (let i = 0; i < mine.length; i += size) {
        fold.apply(mine.slice(i, i + size))
        // A fold that writes as it goes (the event log's) writes what it gathered after each batch.
        if (fold.flush)
          await transaction(pool, async (tx) => {
            await tx.query('SET LOCAL search_path TO batched')
            await fold.flush!(tx)
          })
      }
      await transaction(pool, async (tx) => {
        await tx.query('SET LOCAL search_path TO batched')
        await fold.write(tx)
      })
      const diff = await compareSchemas(pool, 'ref', 'batched', 5)
      t.same(diff, { differing: 0, rows: [] }, `${p.name}: bulk fold in batches of ${size} = apply`)
    }
  }
  await pool.query('DROP SCHEMA IF EXISTS ref CASCADE; DROP SCHEMA IF EXISTS batched CASCADE')
})

t.test('compareSchemas names what differs: only live, only rebuilt, changed', async (t) => {
  const pool = new pg.Pool({ connectionString: await freshDatabase(t, 'cmp'), max: 2 })
  t.teardown(() => pool.end())
  await pool.query(`
    CREATE SCHEMA a; CREATE SCHEMA b;
    CREATE TABLE a.kv (app text, key text, value text, PRIMARY KEY (app, key)); CREATE TABLE b.kv (app text, key text, value text, PRIMARY KEY (app, key));
    CREATE TABLE a.bag (x int); CREATE TABLE b.bag (x int);
    INSERT INTO a.kv VALUES ('s', 'A', '1'), ('s', 'B', '2'), ('s', 'C', '3');
    INSERT INTO b.kv VALUES ('s', 'A', '1'), ('s', 'B', 'two'), ('s', 'D', '4');
    INSERT INTO a.bag VALUES (1), (1), (2); INSERT INTO b.bag VALUES (1), (2);
  `)
  const diff = await compareSchemas(pool, 'a', 'b', 10)
  t.equal(diff.differing, 4)
  t.same(
    diff.rows.map((r) => [r.table, r.kind, r.key]),
    [
      ['bag', 'only-live', {}],
      ['kv', 'differs', { app: 's', key: 'B' }],
      ['kv', 'only-live', { app: 's', key: 'C' }],
      ['kv', 'only-rebuilt', { app: 's', key: 'D' }],
    ],
  )
  t.match(diff.rows[1], { live: { value: '2' }, rebuilt: { value: 'two' } })
  const limited = await compareSchemas(pool, 'a', 'b', 2)
  t.equal(limited.differing, 4, 'the count is of every differing row')
  t.equal(limited.rows.length, 2, 'the rows at most the limit')
})
