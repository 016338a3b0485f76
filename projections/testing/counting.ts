import type pg from 'pg'
import type { RecordedEvent } from '../../events/index.js'
import type { Projection } from '../projection.js'

/**
 * A projection for tests and the benchmark: one row per applied event, deliberately WITHOUT a unique
 * constraint, so an event applied twice shows up as a duplicate row. `applyBatch` is a set-based
 * insert (unnest).
 */
export function countingProjection(name: string, opts: { version?: number; batch?: boolean } = {}): Projection {
  return {
    name,
    version: opts.version ?? 1,
    handles: ['AppCreated', 'ConfigSet', 'ConfigUnset', 'AppDestroyed'],
    tables: `CREATE TABLE hits (seq bigint NOT NULL, stream text NOT NULL, type text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());`,
    async apply(e: RecordedEvent, tx: pg.PoolClient) {
      await tx.query('INSERT INTO hits (seq, stream, type) VALUES ($1, $2, $3)', [e.seq, e.stream, e.type])
    },
    ...(opts.batch === false
      ? {}
      : {
          async applyBatch(events: RecordedEvent[], tx: pg.PoolClient) {
            await tx.query('INSERT INTO hits (seq, stream, type) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])', [
              events.map((e) => e.seq),
              events.map((e) => e.stream),
              events.map((e) => e.type),
            ])
          },
        }),
  }
}
