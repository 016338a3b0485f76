import pg from 'pg'
import type { Test } from 'tap'
import { createLogger } from '../../core/log.js'
import { wharfCatalogue } from '../../domain/index.js'
import { EventSubjects, JetStreamEventStore, streamId } from '../../events/index.js'
import { freshDatabase, testNatsUrl, uniqueName } from '../../test/harness.js'
import { Projector, type ProjectorOptions } from '../projector.js'
import { schemaOf } from '../projection.js'
import { countingProjection } from './counting.js'

/**
 * A running projector of one counting projection (`counting`) over a log and a database of the test's
 * own, torn down with the test, and `append(n)`: n more events on the stream `app.a` (the first one
 * `AppCreated`), answering the stream's version. `hits()` is the seqs the projection applied, in order.
 */
export async function countedLog(t: Test, prefix: string, opts: Partial<Pick<ProjectorOptions, 'standbyRetryMs'>> = {}) {
  const store = await JetStreamEventStore.connect({
    servers: testNatsUrl(),
    catalogue: wharfCatalogue(),
    subjects: new EventSubjects(uniqueName(prefix).toLowerCase()),
  })
  const pool = new pg.Pool({ connectionString: await freshDatabase(t, prefix), max: 10 })
  pool.on('error', () => {})
  const name = 'counting'
  const projector = new Projector({
    store,
    pool,
    projections: [countingProjection(name)],
    log: createLogger({ level: 'silent' }),
    batch: { maxWaitMs: 1 },
    ...opts,
  })
  await projector.start()
  t.teardown(async () => {
    await projector.stop()
    await store.destroy()
    await store.close()
    await pool.end()
  })
  let version = 0
  const append = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const ev =
        version === 0 ? { type: 'AppCreated', data: { app: 'a', owner: 'alice' } } : { type: 'ConfigSet', data: { app: 'a', values: { N: String(i) } } }
      version = (await store.append(streamId('app', 'a'), [ev], { actor: 'user:alice', expectedVersion: version })).lastSeq
    }
    return version
  }
  const hits = async () => (await pool.query<{ seq: string }>(`SELECT seq FROM ${schemaOf(name)}.hits ORDER BY seq`)).rows.map((r) => Number(r.seq))
  return { store, pool, projector, name, append, hits }
}
