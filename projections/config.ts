import type pg from 'pg'
import { isEvent, narrow, type EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { copyLine, copyRows } from './copy.js'
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
  writesOnly: true,
  /** Only a rollback's release changes the config (the others follow a `ConfigSet`, `ConfigUnset` or none). */
  ignores: (e) => isEvent(e, 'ReleaseCreated') && e.data.rollbackOf === undefined,
  /**
   * The same effect as `apply` on each event, in at most three statements: per app, whether the
   * batch cleared its config (destroyed, or a rollback's snapshot) and the last value (or unset) of
   * each key after that.
   */
  async applyBatch(events: RecordedEvent[], tx: pg.PoolClient): Promise<void> {
    const apps = new Map<string, { cleared: boolean; keys: Map<string, string | null> }>()
    const of = (app: string) => {
      let a = apps.get(app)
      if (!a) apps.set(app, (a = { cleared: false, keys: new Map() }))
      return a
    }
    for (const event of events) {
      const e = narrow<ConfigEvent>(event)
      switch (e.type) {
        case 'ConfigSet':
          for (const [k, v] of Object.entries(e.data.values)) of(e.data.app).keys.set(k, v)
          break
        case 'ConfigUnset':
          for (const k of e.data.keys) of(e.data.app).keys.set(k, null)
          break
        case 'AppDestroyed': {
          const a = of(e.data.app)
          a.cleared = true
          a.keys.clear()
          break
        }
        case 'ReleaseCreated': {
          if (e.data.rollbackOf === undefined) break
          const a = of(e.data.app)
          a.cleared = true
          a.keys = new Map(Object.entries(e.data.config))
          break
        }
        default:
          return unhandled('config', e)
      }
    }
    const cleared = [...apps].filter(([, a]) => a.cleared).map(([app]) => app)
    const unset: [string, string][] = []
    const set: [string, string, string][] = []
    for (const [app, a] of apps) for (const [k, v] of a.keys) v === null ? unset.push([app, k]) : set.push([app, k, v])
    if (cleared.length > 0) await tx.query('DELETE FROM config WHERE app = ANY($1::text[])', [cleared])
    if (unset.length > 0) {
      await tx.query('DELETE FROM config c USING unnest($1::text[], $2::text[]) AS u(app, key) WHERE c.app = u.app AND c.key = u.key', [
        unset.map((u) => u[0]),
        unset.map((u) => u[1]),
      ])
    }
    if (set.length > 0) {
      await tx.query(
        `INSERT INTO config (app, key, value) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
         ON CONFLICT (app, key) DO UPDATE SET value = EXCLUDED.value`,
        [set.map((x) => x[0]), set.map((x) => x[1]), set.map((x) => x[2])],
      )
    }
  },
  /** Every app's config in memory, written with one COPY at the end (each case as in `apply`). */
  bulk() {
    const apps = new Map<string, Map<string, string>>()
    const of = (app: string) => {
      let a = apps.get(app)
      if (!a) apps.set(app, (a = new Map()))
      return a
    }
    return {
      apply(events) {
        for (const event of events) {
          const e = narrow<ConfigEvent>(event)
          switch (e.type) {
            case 'ConfigSet': {
              const a = of(e.data.app)
              for (const k of Object.keys(e.data.values)) a.set(k, e.data.values[k]!)
              break
            }
            case 'ConfigUnset': {
              const a = apps.get(e.data.app)
              if (a) for (const k of e.data.keys) a.delete(k)
              break
            }
            case 'AppDestroyed':
              apps.delete(e.data.app)
              break
            case 'ReleaseCreated':
              if (e.data.rollbackOf !== undefined) apps.set(e.data.app, new Map(Object.entries(e.data.config)))
              break
            default:
              return unhandled('config', e)
          }
        }
      },
      async write(tx) {
        const lines = function* () {
          for (const [app, a] of apps) for (const [k, v] of a) yield copyLine([app, k, v])
        }
        await copyRows(tx, 'config', ['app', 'key', 'value'], lines())
      },
    }
  },
}

/** An app's current config, by key. */
export async function getConfig(db: Queryable, app: string): Promise<Record<string, string>> {
  const { rows } = await db.query('SELECT key, value FROM rm_config.config WHERE app = $1 ORDER BY key', [app])
  return Object.fromEntries(rows.map((r) => [r.key, r.value]))
}
