import type pg from 'pg'
import { narrow, type EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { unhandled, type Projection, type Queryable } from './projection.js'

type FormationEvent = EventOf<'FormationScaled' | 'AppCreated' | 'AppDestroyed'>

const HANDLES = ['FormationScaled', 'AppCreated', 'AppDestroyed'] as const satisfies readonly FormationEvent['type'][]

/** `formation(app, type, quantity)`: how many processes of each type an app should run. */
export const formationProjection: Projection = {
  name: 'formation',
  version: 1,
  handles: HANDLES,
  tables: `
    CREATE TABLE formation (
      app      text NOT NULL,
      type     text NOT NULL,
      quantity integer NOT NULL,
      PRIMARY KEY (app, type)
    );
  `,
  async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
    const e = narrow<FormationEvent>(event)
    switch (e.type) {
      case 'FormationScaled': {
        const types = Object.keys(e.data.formation)
        await tx.query(
          `INSERT INTO formation (app, type, quantity) SELECT $1, t, q FROM unnest($2::text[], $3::int[]) AS x(t, q)
           ON CONFLICT (app, type) DO UPDATE SET quantity = EXCLUDED.quantity`,
          [e.data.app, types, types.map((t) => e.data.formation[t]!)],
        )
        return
      }
      case 'AppCreated':
      case 'AppDestroyed':
        await tx.query('DELETE FROM formation WHERE app = $1', [e.data.app])
        return
      default:
        return unhandled('formation', e)
    }
  },
  /** The same effect as `apply` on each event: per app, whether the batch cleared it and the last quantity of each type after that. */
  async applyBatch(events: RecordedEvent[], tx: pg.PoolClient): Promise<void> {
    const apps = new Map<string, { cleared: boolean; types: Map<string, number> }>()
    for (const event of events) {
      const e = narrow<FormationEvent>(event)
      let a = apps.get(e.data.app)
      if (!a) apps.set(e.data.app, (a = { cleared: false, types: new Map() }))
      switch (e.type) {
        case 'FormationScaled':
          for (const [t, q] of Object.entries(e.data.formation)) a.types.set(t, q)
          break
        case 'AppCreated':
        case 'AppDestroyed':
          a.cleared = true
          a.types.clear()
          break
        default:
          return unhandled('formation', e)
      }
    }
    const cleared = [...apps].filter(([, a]) => a.cleared).map(([app]) => app)
    if (cleared.length > 0) await tx.query('DELETE FROM formation WHERE app = ANY($1::text[])', [cleared])
    const set = [...apps].flatMap(([app, a]) => [...a.types].map(([t, q]) => [app, t, q] as const))
    if (set.length === 0) return
    await tx.query(
      `INSERT INTO formation (app, type, quantity) SELECT * FROM unnest($1::text[], $2::text[], $3::int[])
       ON CONFLICT (app, type) DO UPDATE SET quantity = EXCLUDED.quantity`,
      [set.map((x) => x[0]), set.map((x) => x[1]), set.map((x) => x[2])],
    )
  },
}

/** How many processes of each type an app should run, by type (a type never scaled is absent). */
export async function getFormation(db: Queryable, app: string): Promise<Record<string, number>> {
  const { rows } = await db.query('SELECT type, quantity FROM rm_formation.formation WHERE app = $1 ORDER BY type', [app])
  return Object.fromEntries(rows.map((r) => [r.type, r.quantity]))
}

/** The formation of each of `apps` (the dashboard's apps list), by app. */
export async function formations(db: Queryable, apps: readonly string[]): Promise<Map<string, Record<string, number>>> {
  const { rows } = await db.query('SELECT app, type, quantity FROM rm_formation.formation WHERE app = ANY($1::text[]) ORDER BY app, type', [apps])
  const out = new Map<string, Record<string, number>>()
  for (const r of rows) out.set(r.app, { ...out.get(r.app), [r.type]: r.quantity })
  return out
}

/** How many processes the apps `apps` should run together (every type), by app. */
export async function replicasOf(db: Queryable, apps: readonly string[]): Promise<Map<string, number>> {
  const { rows } = await db.query<{ app: string; n: number }>(
    'SELECT app, sum(quantity)::int AS n FROM rm_formation.formation WHERE app = ANY($1::text[]) GROUP BY app',
    [apps],
  )
  return new Map(rows.map((r) => [r.app, Number(r.n)]))
}
