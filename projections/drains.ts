import type pg from 'pg'
import type { EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { narrow, unhandled, type Projection } from './projection.js'

type DrainsEvent = EventOf<'DrainAdded' | 'DrainRemoved' | 'AppCreated' | 'AppDestroyed'>

const HANDLES = ['DrainAdded', 'DrainRemoved', 'AppCreated', 'AppDestroyed'] as const satisfies readonly DrainsEvent['type'][]

/** `drains(app, id, url, created_at)`: the log drains of live apps; the logger delivers to them. */
export const drainsProjection: Projection = {
  name: 'drains',
  version: 1,
  handles: HANDLES,
  tables: `
    CREATE TABLE drains (
      app        text NOT NULL,
      id         text NOT NULL,
      url        text NOT NULL,
      created_at timestamptz NOT NULL,
      PRIMARY KEY (app, id)
    );
  `,
  async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
    const e = narrow<DrainsEvent>(event)
    switch (e.type) {
      case 'DrainAdded':
        await tx.query(
          `INSERT INTO drains (app, id, url, created_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (app, id) DO UPDATE SET url = EXCLUDED.url, created_at = EXCLUDED.created_at`,
          [e.data.app, e.data.id, e.data.url, e.occurredAt],
        )
        return
      case 'DrainRemoved':
        await tx.query('DELETE FROM drains WHERE app = $1 AND id = $2', [e.data.app, e.data.id])
        return
      case 'AppCreated':
      case 'AppDestroyed':
        await tx.query('DELETE FROM drains WHERE app = $1', [e.data.app])
        return
      default:
        return unhandled('drains', e)
    }
  },
}
