import type pg from 'pg'
import { narrow, type EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { unhandled, type Projection, type Queryable } from './projection.js'

type AppsEvent = EventOf<'AppCreated' | 'AppDestroyed' | 'AppTransferred'>

// AppTransferred joined without a version bump: the tables are unchanged and no such event predates it.
const HANDLES = ['AppCreated', 'AppDestroyed', 'AppTransferred'] as const satisfies readonly AppsEvent['type'][]

/**
 * `apps(name, owner, created_at, destroyed_at)`: every app ever created, one row per name. A destroyed
 * app keeps its row with `destroyed_at` set (the name stays known for audit); creating it again
 * resets the row. Collaborators and maintenance are in the `access` read model.
 */
export const appsProjection: Projection = {
  name: 'apps',
  version: 1,
  handles: HANDLES,
  tables: `
    CREATE TABLE apps (
      name         text PRIMARY KEY,
      owner        text NOT NULL,
      created_at   timestamptz NOT NULL,
      destroyed_at timestamptz
    );
    CREATE INDEX apps_owner ON apps (owner) WHERE destroyed_at IS NULL;
  `,
  async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
    const e = narrow<AppsEvent>(event)
    switch (e.type) {
      case 'AppCreated':
        await tx.query(
          `INSERT INTO apps (name, owner, created_at, destroyed_at) VALUES ($1, $2, $3, NULL)
           ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, created_at = EXCLUDED.created_at, destroyed_at = NULL`,
          [e.data.app, e.data.owner, e.occurredAt],
        )
        return
      case 'AppDestroyed':
        await tx.query('UPDATE apps SET destroyed_at = $2 WHERE name = $1', [e.data.app, e.occurredAt])
        return
      case 'AppTransferred':
        await tx.query('UPDATE apps SET owner = $2 WHERE name = $1', [e.data.app, e.data.to])
        return
      default:
        return unhandled('apps', e)
    }
  },
}

/** The live apps (without `destroyed_at`), in no particular order. */
export async function liveApps(db: Queryable): Promise<{ name: string; created: string }[]> {
  const { rows } = await db.query<{ name: string; created_at: Date }>(`SELECT name, created_at FROM rm_apps.apps WHERE destroyed_at IS NULL`)
  return rows.map((r) => ({ name: r.name, created: r.created_at.toISOString() }))
}

/** How many apps are live. */
export async function countLiveApps(db: Queryable): Promise<number> {
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM rm_apps.apps WHERE destroyed_at IS NULL`)
  return Number(rows[0].n)
}

/** The live apps `owner` owns, by name. */
export async function appsOwnedBy(db: Queryable, owner: string): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(`SELECT name FROM rm_apps.apps WHERE owner = $1 AND destroyed_at IS NULL ORDER BY name`, [owner])
  return rows.map((r) => r.name)
}
