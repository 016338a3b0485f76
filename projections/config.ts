import type pg from 'pg'
import { narrow, type EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { unhandled, type Projection, type Queryable } from './projection.js'

type ConfigEvent = EventOf<'ConfigSet' | 'ConfigUnset' | 'AppDestroyed' | 'ReleaseCreated'>

const HANDLES = ['ConfigSet', 'ConfigUnset', 'AppDestroyed', 'ReleaseCreated'] as const satisfies readonly ConfigEvent['type'][]

/**
 * `config(app, key, value)`: an app's current config. Destroying an app drops its config, so a new
 * app of the same name starts empty. A rollback release (`rollbackOf`) brings back its config snapshot.
 */
export const configProjection: Projection = {
  name: 'config',
  version: 2,
  handles: HANDLES,
  tables: `
    CREATE TABLE config (
      app   text NOT NULL,
      key   text NOT NULL,
      value text NOT NULL,
      PRIMARY KEY (app, key)
    );
  `,
  async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
    const e = narrow<ConfigEvent>(event)
    switch (e.type) {
      case 'ConfigSet': {
        const keys = Object.keys(e.data.values)
        if (keys.length === 0) return
        await tx.query(
          `INSERT INTO config (app, key, value) SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)
           ON CONFLICT (app, key) DO UPDATE SET value = EXCLUDED.value`,
          [e.data.app, keys, keys.map((k) => e.data.values[k]!)],
        )
        return
      }
      case 'ConfigUnset':
        await tx.query('DELETE FROM config WHERE app = $1 AND key = ANY($2::text[])', [e.data.app, e.data.keys])
        return
      case 'AppDestroyed':
        await tx.query('DELETE FROM config WHERE app = $1', [e.data.app])
        return
      case 'ReleaseCreated': {
        if (e.data.rollbackOf === undefined) return
        const keys = Object.keys(e.data.config)
        await tx.query('DELETE FROM config WHERE app = $1', [e.data.app])
        await tx.query('INSERT INTO config (app, key, value) SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)', [
          e.data.app,
          keys,
          keys.map((k) => e.data.config[k]!),
        ])
        return
      }
      default:
        return unhandled('config', e)
    }
  },
}

/** An app's current config, by key. */
export async function getConfig(db: Queryable, app: string): Promise<Record<string, string>> {
  const { rows } = await db.query('SELECT key, value FROM rm_config.config WHERE app = $1 ORDER BY key', [app])
  return Object.fromEntries(rows.map((r) => [r.key, r.value]))
}
