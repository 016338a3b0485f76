/**
 * The projector against the real NATS and Postgres with deliveries lost on the wire (a proxy between
 * it and nats-server drops chosen MSG frames of its durable): every event is applied exactly once, in
 * log order, and a commit (one append of several events) is applied in one transaction.
 */
import pg from 'pg'
import t from 'tap'
import { createLogger } from '../core/log.js'
import { EventSubjects, JetStreamEventStore, newEventId, type RecordedEvent } from '../events/index.js'
import { firstDeliveryOf, NatsProxy } from '../events/testing/nats-proxy.js'
import { thingCatalogue } from '../events/testing/things.js'
import { freshDatabase, testNatsUrl, uniqueName, until } from '../test/harness.js'
import { durableOf, schemaOf, type Projection } from './projection.js'
import { Projector } from './projector.js'

const servers = testNatsUrl()

/** One row per applied event, in the order applied, WITHOUT a unique key (a second application shows), and the transaction it was applied in. */
function recording(name: string): Projection {
  return {
    name,
    version: 1,
    handles: ['ThingAdded'],
    tables: 'CREATE TABLE seen (n serial PRIMARY KEY, seq bigint NOT NULL, idx int NOT NULL, id text NOT NULL, tx bigint NOT NULL);',
    async apply(e: RecordedEvent, tx: pg.PoolClient) {
      await tx.query('INSERT INTO seen (seq, idx, id, tx) VALUES ($1, $2, $3, txid_current())', [e.seq, e.index ?? 0, e.id])
    },
  }
}

t.test('deliveries lost on the wire: the projector applies every event exactly once, in order, each commit in one transaction', async (t) => {
  const subjects = new EventSubjects(uniqueName('pgap').toLowerCase())
  const writer = await JetStreamEventStore.connect({ servers, catalogue: thingCatalogue(), subjects, name: 'wharf-pgap-writer' })
  const proxy = await NatsProxy.start(servers)
  const reader = await JetStreamEventStore.connect({ servers: proxy.url, catalogue: thingCatalogue(), subjects, name: 'wharf-pgap-reader' })
  const pool = new pg.Pool({ connectionString: await freshDatabase(t, 'pgap'), max: 5 })
  pool.on('error', () => {})
  const p = recording('gaps')
  const projector = new Projector({ store: reader, pool, projections: [p], log: createLogger({ level: 'silent' }), batch: { maxWaitMs: 1 } })
  let again: Projector | undefined
  t.teardown(async () => {
    await again?.stop()
    await projector.stop().catch(() => {})
    await reader.close()
    await proxy.close()
    await writer.destroy()
    await writer.close()
    await pool.end()
  })
  const durable = durableOf(p)
  const ids: string[] = []
  let version = 0
  const appendCommits = async (commits: number) => {
    for (let i = 0; i < commits; i++) {
      const size = version % 3 === 1 ? 4 : 1
      const events = Array.from({ length: size }, (_, n) => ({ id: newEventId(), type: 'ThingAdded', data: { n } }))
      version = (await writer.append('app.a', events, { actor: 'user:test', expectedVersion: version })).lastSeq
      ids.push(...events.map((e) => e.id))
    }
    return version
  }
  await projector.start()
  // The live subscription starts after the (empty) rebuild: every commit below comes through the durable.
  const lose = new Set([2, 3, 8, 14, 15, 16, 25])
  const lost: number[] = []
  proxy.toClient = (f) => {
    const seq = firstDeliveryOf(f, subjects.stream, durable)
    if (seq === undefined || !lose.delete(seq)) return 'pass'
    lost.push(seq)
    return 'drop'
  }
  await appendCommits(12)
  for (let i = 0; i < 14; i++) {
    await appendCommits(1)
    await new Promise((r) => setTimeout(r, 3))
  }
  const last = await appendCommits(1)
  await projector.waitFor(last, { timeoutMs: 20_000 })
  t.same(lost, [2, 3, 8, 14, 15, 16, 25], 'the proxy really dropped those deliveries')
  const { rows } = await pool.query(`SELECT seq, idx, id, tx FROM ${schemaOf(p.name)}.seen ORDER BY n`)
  t.same(
    rows.map((r) => r.id),
    ids,
    'every event applied once, in log order',
  )
  const txOf = new Map<string, Set<string>>()
  for (const r of rows) txOf.set(String(r.seq), (txOf.get(String(r.seq)) ?? new Set()).add(String(r.tx)))
  t.ok(
    [...txOf.values()].every((s) => s.size === 1),
    'the events of a commit were applied in one transaction',
  )
  const [cp] = await projector.checkpoints()
  t.equal(cp?.seq, last)

  // Restarted, it applies nothing again.
  await projector.stop()
  again = new Projector({ store: reader, pool, projections: [p], log: createLogger({ level: 'silent' }), batch: { maxWaitMs: 1 } })
  await again.start()
  const next = await appendCommits(1)
  await again.waitFor(next, { timeoutMs: 20_000 })
  const count = await until('rows', async () => (await pool.query(`SELECT count(*)::int AS n FROM ${schemaOf(p.name)}.seen`)).rows[0].n as number)
  t.equal(count, ids.length, 'one more event, applied once')
})
