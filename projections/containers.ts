import type pg from 'pg'
import { narrow, type EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { unhandled, type Projection, type Queryable } from './projection.js'

type ContainersEvent = EventOf<'ContainerStarted' | 'ContainerStopping' | 'ContainerStopped' | 'ContainerCrashed' | 'FormationScaled' | 'AppDestroyed'>

const HANDLES = [
  'ContainerStarted',
  'ContainerStopping',
  'ContainerStopped',
  'ContainerCrashed',
  'FormationScaled',
  'AppDestroyed',
] as const satisfies readonly ContainersEvent['type'][]

/** A row of `containers`, timestamps as text (exact through a round trip). */
interface ContainerRow {
  container: string
  app: string
  type: string
  number: number | null
  release: number
  host: string
  port: number | null
  state: 'up' | 'stopping' | 'crashed'
  since: string
  started_at: string
  exit_code: number | null
  reason: string | null
}

/**
 * `containers(container, app, type, number, release, host, port, state, since, started_at, exit_code, reason)`:
 * the processes of apps as the publishers announced them. `state` is `up` (serving), `stopping`
 * (draining: routers send it nothing new) or `crashed`; `since` is when it got that state.
 *
 * A stopped container is deleted. A crashed one stays, as `crashed` with its exit code and reason,
 * until its slot runs again (the next `ContainerStarted` of the same app, type and number), its slot
 * is scaled away, or the app is destroyed: so `ps:list` shows `web.1 crashed 4s ago` while Swarm waits
 * to restart it, instead of a process that silently went missing, and never shows it once it is back.
 */
/**
 * `$1` / `$2`, a JSON array of strings, as a set for `IN (...)`: cheaper to send than a text[] parameter,
 * and looked up in a hash (`= ANY(ARRAY(SELECT ...))` would compare each row with every element).
 */
const TEXTS_OF_1 = 'SELECT json_array_elements_text($1::json)'
const TEXTS_OF_2 = 'SELECT json_array_elements_text($2::json)'

export const containersProjection: Projection = {
  name: 'containers',
  version: 2,
  handles: HANDLES,
  tables: `
    CREATE TABLE containers (
      container  text PRIMARY KEY,
      app        text NOT NULL,
      type       text NOT NULL,
      number     integer,
      release    integer NOT NULL,
      host       text NOT NULL,
      port       integer,
      state      text NOT NULL CHECK (state IN ('up', 'stopping', 'crashed')),
      since      timestamptz NOT NULL,
      started_at timestamptz NOT NULL,
      exit_code  integer,
      reason     text
    );
    CREATE INDEX containers_app ON containers (app, type, number);
  `,
  async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
    const e = narrow<ContainersEvent>(event)
    switch (e.type) {
      case 'ContainerStarted': {
        const d = e.data
        // The slot runs again: its crashed predecessor is history.
        await tx.query(`DELETE FROM containers WHERE app = $1 AND type = $2 AND number IS NOT DISTINCT FROM $3 AND state = 'crashed'`, [
          d.app,
          d.type,
          d.number ?? null,
        ])
        await tx.query(
          `INSERT INTO containers (container, app, type, number, release, host, port, state, since, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'up', $8, $8)
           ON CONFLICT (container) DO UPDATE SET app = EXCLUDED.app, type = EXCLUDED.type, number = EXCLUDED.number, release = EXCLUDED.release,
             host = EXCLUDED.host, port = EXCLUDED.port, state = 'up', since = EXCLUDED.since, started_at = EXCLUDED.started_at, exit_code = NULL, reason = NULL`,
          [d.container, d.app, d.type, d.number ?? null, d.release, d.host, d.port ?? null, e.occurredAt],
        )
        return
      }
      case 'ContainerStopping':
        await tx.query(`UPDATE containers SET state = 'stopping', since = $2 WHERE container = $1 AND state = 'up'`, [e.data.container, e.occurredAt])
        return
      case 'ContainerStopped':
        await tx.query('DELETE FROM containers WHERE container = $1', [e.data.container])
        return
      case 'ContainerCrashed':
        await tx.query(`UPDATE containers SET state = 'crashed', since = $2, exit_code = $3, reason = $4 WHERE container = $1`, [
          e.data.container,
          e.occurredAt,
          e.data.exitCode,
          e.data.reason ?? null,
        ])
        return
      case 'FormationScaled': {
        // A crashed slot beyond the new quantity will not run again.
        const types = Object.keys(e.data.formation)
        await tx.query(
          `DELETE FROM containers c USING unnest($2::text[], $3::int[]) AS f(t, q)
            WHERE c.app = $1 AND c.type = f.t AND c.state = 'crashed' AND (c.number IS NULL OR c.number > f.q)`,
          [e.data.app, types, types.map((t) => e.data.formation[t]!)],
        )
        return
      }
      case 'AppDestroyed':
        await tx.query('DELETE FROM containers WHERE app = $1', [e.data.app])
        return
      default:
        return unhandled('containers', e)
    }
  },
  /**
   * The same effect as `apply` on each event, in a few statements: the rows of the apps and
   * containers the batch touches are read, the events are applied to them in memory (each case
   * mirrors its statement above), and they are written back.
   */
  async applyBatch(events: RecordedEvent[], tx: pg.PoolClient): Promise<void> {
    const apps = new Set<string>()
    const ids = new Set<string>()
    for (const event of events) {
      const e = narrow<ContainersEvent>(event)
      apps.add(e.data.app)
      if ('container' in e.data) ids.add(e.data.container)
    }
    const appsJson = JSON.stringify([...apps])
    const idsJson = JSON.stringify([...ids])
    const { rows: loaded } = await tx.query<ContainerRow>(
      `SELECT container, app, type, number, release, host, port, state, since::text AS since, started_at::text AS started_at, exit_code, reason
         FROM containers WHERE app IN (${TEXTS_OF_1}) OR container IN (${TEXTS_OF_2})`,
      [appsJson, idsJson],
    )
    const rows = new ContainerRows(loaded)
    rows.apply(events)
    // Only what the batch changed is written: a row is replaced by a new object when an event changes it,
    // so a loaded row still in `rows` as the same object is as it was (most of an app's rows, in a replay).
    const before = new Map(loaded.map((r) => [r.container, r]))
    const gone: string[] = []
    for (const [id, r] of before) if (rows.get(id) !== r) gone.push(id)
    const out: ContainerRow[] = []
    for (const r of rows.values()) if (before.get(r.container) !== r) out.push(r)
    if (gone.length > 0) await tx.query(`DELETE FROM containers WHERE container IN (${TEXTS_OF_1})`, [JSON.stringify(gone)])
    await insertRows(tx, out)
  },
  bulk() {
    const rows = new ContainerRows([])
    return { apply: (events) => rows.apply(events), write: (tx) => insertRows(tx, [...rows.values()]) }
  },
}

/** Inserts `rows` into `containers`. */
async function insertRows(tx: pg.PoolClient, rows: ContainerRow[]): Promise<void> {
  if (rows.length === 0) return
  // The rows as one JSON document: JSON.stringify is native, where array parameters are built in JavaScript element by element.
  await tx.query(
    `INSERT INTO containers (container, app, type, number, release, host, port, state, since, started_at, exit_code, reason)
     SELECT * FROM json_to_recordset($1::json) AS r(container text, app text, type text, number int, release int, host text, port int,
       state text, since timestamptz, started_at timestamptz, exit_code int, reason text)`,
    [JSON.stringify(rows)],
  )
}

/**
 * Rows of `containers` in memory, by container and by app, and the events applied to them: each case
 * mirrors its statement in `apply`. A change replaces a row by a new object (a row still the same
 * object is unchanged).
 */
class ContainerRows {
  readonly #rows = new Map<string, ContainerRow>()
  /** The containers of each app, so that a slot's or an app's rows are found without a scan of all. */
  readonly #byApp = new Map<string, Set<string>>()

  constructor(rows: readonly ContainerRow[]) {
    for (const r of rows) this.#set(r)
  }

  get(id: string): ContainerRow | undefined {
    return this.#rows.get(id)
  }

  values(): IterableIterator<ContainerRow> {
    return this.#rows.values()
  }

  #set(r: ContainerRow): void {
    const old = this.#rows.get(r.container)
    if (old && old.app !== r.app) this.#byApp.get(old.app)?.delete(r.container)
    this.#rows.set(r.container, r)
    let ids = this.#byApp.get(r.app)
    if (!ids) this.#byApp.set(r.app, (ids = new Set()))
    ids.add(r.container)
  }

  #delete(id: string): void {
    const r = this.#rows.get(id)
    if (!r) return
    this.#rows.delete(id)
    this.#byApp.get(r.app)?.delete(id)
  }

  #drop(app: string, gone: (r: ContainerRow) => boolean): void {
    const ids = this.#byApp.get(app)
    if (!ids) return
    for (const id of [...ids]) {
      const r = this.#rows.get(id)
      if (r && gone(r)) this.#delete(id)
    }
  }

  apply(events: readonly RecordedEvent[]): void {
    for (const event of events) {
      const e = narrow<ContainersEvent>(event)
      switch (e.type) {
        case 'ContainerStarted': {
          const d = e.data
          const number = d.number ?? null
          this.#drop(d.app, (r) => r.type === d.type && r.number === number && r.state === 'crashed')
          this.#set({
            container: d.container,
            app: d.app,
            type: d.type,
            number,
            release: d.release,
            host: d.host,
            port: d.port ?? null,
            state: 'up',
            since: e.occurredAt,
            started_at: e.occurredAt,
            exit_code: null,
            reason: null,
          })
          break
        }
        case 'ContainerStopping': {
          const r = this.#rows.get(e.data.container)
          if (r?.state === 'up') this.#set({ ...r, state: 'stopping', since: e.occurredAt })
          break
        }
        case 'ContainerStopped':
          this.#delete(e.data.container)
          break
        case 'ContainerCrashed': {
          const r = this.#rows.get(e.data.container)
          if (r) this.#set({ ...r, state: 'crashed', since: e.occurredAt, exit_code: e.data.exitCode, reason: e.data.reason ?? null })
          break
        }
        case 'FormationScaled': {
          const f = e.data.formation
          this.#drop(e.data.app, (r) => Object.hasOwn(f, r.type) && r.state === 'crashed' && (r.number === null || r.number > f[r.type]!))
          break
        }
        case 'AppDestroyed':
          this.#drop(e.data.app, () => true)
          break
        default:
          unhandled('containers', e)
      }
    }
  }
}

/** One process as `GET /apps/:app/ps` answers it (the CLI reads the same type). */
export interface PsView {
  type: string
  number: number | null
  release: number
  state: 'up' | 'stopping' | 'crashed'
  since: string
  host: string
  port: number | null
  container: string
  exitCode: number | null
  reason: string | null
}

/** The processes of an app, by type, then slot, then age (`container`: its first 12 characters). */
export async function listProcesses(db: Queryable, app: string): Promise<PsView[]> {
  const { rows } = await db.query(
    `SELECT container, type, number, release, state, since, host, port, exit_code, reason FROM rm_containers.containers
      WHERE app = $1 ORDER BY type, number NULLS LAST, started_at, container`,
    [app],
  )
  return rows.map((r) => ({
    type: r.type,
    number: r.number,
    release: r.release,
    state: r.state,
    since: (r.since as Date).toISOString(),
    host: r.host,
    port: r.port,
    container: (r.container as string).slice(0, 12),
    exitCode: r.exit_code,
    reason: r.reason,
  }))
}

/** The containers of an app, by type, then age (`started`: ISO 8601). */
export async function getProcesses(db: Queryable, app: string) {
  const { rows } = await db.query(
    'SELECT container, type, release, host, port, started_at FROM rm_containers.containers WHERE app = $1 ORDER BY type, started_at',
    [app],
  )
  return rows.map((r) => ({
    container: r.container as string,
    type: r.type as string,
    release: r.release as number,
    host: r.host as string,
    port: r.port as number,
    started: (r.started_at as Date).toISOString(),
  }))
}

/** The containers announced on `host` that are `up` or `stopping` (what its publisher must account for). */
export async function hostContainers(db: Queryable, host: string): Promise<{ container: string; app: string; type: string }[]> {
  const { rows } = await db.query(`SELECT container, app, type FROM rm_containers.containers WHERE host = $1 AND state IN ('up', 'stopping')`, [host])
  return rows
}

/** Every `web` container of every app, in no particular order: what the router routes to. */
export async function webContainers(
  db: Queryable,
  only?: readonly string[],
): Promise<{ container: string; app: string; type: string; host: string; port: number | null; state: string; release: number }[]> {
  const { rows } = only
    ? await db.query(`SELECT container, app, type, host, port, state, release FROM rm_containers.containers WHERE type = 'web' AND app = ANY($1)`, [only])
    : await db.query(`SELECT container, app, type, host, port, state, release FROM rm_containers.containers WHERE type = 'web'`)
  return rows
}

/** The `web` containers of an app that are `up`, by id. */
export async function upWebContainers(db: Queryable, app: string): Promise<{ container: string; host: string; port: number; release: number }[]> {
  const { rows } = await db.query(
    `SELECT container, host, port, release FROM rm_containers.containers WHERE app = $1 AND type = 'web' AND state = 'up' ORDER BY container`,
    [app],
  )
  return rows
}

/** How many containers of an app are announced, in any state; of one release only when `release` is given. */
export async function countContainers(db: Queryable, app: string, release?: number): Promise<number> {
  const { rows } =
    release === undefined
      ? await db.query(`SELECT count(*)::int AS n FROM rm_containers.containers WHERE app = $1`, [app])
      : await db.query(`SELECT count(*)::int AS n FROM rm_containers.containers WHERE app = $1 AND release = $2`, [app, release])
  return rows[0].n as number
}

/** Containers up, per process type, of each of `apps` (the dashboard's apps list), by app. */
export async function upCounts(db: Queryable, apps: readonly string[]): Promise<Map<string, Record<string, number>>> {
  const { rows } = await db.query(
    `SELECT app, type, count(*)::int AS n FROM rm_containers.containers WHERE app = ANY($1::text[]) AND state = 'up' GROUP BY app, type`,
    [apps],
  )
  const out = new Map<string, Record<string, number>>()
  for (const r of rows) out.set(r.app, { ...out.get(r.app), [r.type]: r.n })
  return out
}
