import type pg from 'pg'
import { narrow, type EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { unhandled, type Projection, type Queryable } from './projection.js'

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

/** A log drain as the API shows it (`created`: ISO 8601). */
export interface DrainView {
  id: string
  url: string
  created: string
}

/** The drains of an app, oldest first. */
export async function getDrains(db: Queryable, app: string): Promise<DrainView[]> {
  const { rows } = await db.query('SELECT id, url, created_at FROM rm_drains.drains WHERE app = $1 ORDER BY created_at, id', [app])
  return rows.map((r) => ({ id: r.id as string, url: r.url as string, created: (r.created_at as Date).toISOString() }))
}

/** Every drain of every app, in no particular order: what the logger delivers to. */
export async function allDrains(db: Queryable): Promise<{ app: string; id: string; url: string }[]> {
  const { rows } = await db.query<{ app: string; id: string; url: string }>('SELECT app, id, url FROM rm_drains.drains')
  return rows
}
