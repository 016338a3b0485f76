import type pg from 'pg'
import { narrow, type EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { copyLine, copyRows } from './copy.js'
import { unhandled, type Projection, type Queryable } from './projection.js'

type ReleasesEvent = EventOf<'ReleaseCreated' | 'AppCreated' | 'AppDestroyed'>

const HANDLES = ['ReleaseCreated', 'AppCreated', 'AppDestroyed'] as const satisfies readonly ReleasesEvent['type'][]

/**
 * `releases(app, version, ...)`: every release of every live app, with its config and limits
 * snapshot. The newest row of an app is its current release. Destroying (or creating) an app
 * drops its releases, so a new app of the same name starts at v1.
 */
export const releasesProjection: Projection = {
  name: 'releases',
  version: 1,
  handles: HANDLES,
  tables: `
    CREATE TABLE releases (
      app         text NOT NULL,
      version     integer NOT NULL,
      image       text,
      digest      text,
      procfile    jsonb NOT NULL,
      port        integer,
      config      jsonb NOT NULL,
      limits      jsonb NOT NULL,
      created_by  text NOT NULL,
      summary     text NOT NULL,
      build       text,
      rollback_of integer,
      created_at  timestamptz NOT NULL,
      PRIMARY KEY (app, version)
    );
  `,
  async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
    const e = narrow<ReleasesEvent>(event)
    switch (e.type) {
      case 'ReleaseCreated': {
        await tx.query(
          `INSERT INTO releases (app, version, image, digest, procfile, port, config, limits, created_by, summary, build, rollback_of, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT (app, version) DO NOTHING`,
          releaseRow(e),
        )
        return
      }
      case 'AppCreated':
      case 'AppDestroyed':
        await tx.query('DELETE FROM releases WHERE app = $1', [e.data.app])
        return
      default:
        return unhandled('releases', e)
    }
  },
  writesOnly: true,
  /** The same effect as `apply` on each event: per app, whether the batch cleared it and the first row of each version after that. */
  async applyBatch(events: RecordedEvent[], tx: pg.PoolClient): Promise<void> {
    const apps = new Map<string, { cleared: boolean; rows: Map<number, Record<string, unknown>> }>()
    for (const event of events) {
      const e = narrow<ReleasesEvent>(event)
      let a = apps.get(e.data.app)
      if (!a) apps.set(e.data.app, (a = { cleared: false, rows: new Map() }))
      switch (e.type) {
        case 'ReleaseCreated': {
          if (a.rows.has(e.data.version)) break
          a.rows.set(e.data.version, releaseRecord(e))
          break
        }
        case 'AppCreated':
        case 'AppDestroyed':
          a.cleared = true
          a.rows.clear()
          break
        default:
          return unhandled('releases', e)
      }
    }
    const cleared = [...apps].filter(([, a]) => a.cleared).map(([app]) => app)
    if (cleared.length > 0) await tx.query('DELETE FROM releases WHERE app = ANY($1::text[])', [cleared])
    const rows = [...apps.values()].flatMap((a) => [...a.rows.values()])
    if (rows.length === 0) return
    // The rows as one JSON document: JSON.stringify is native, where array parameters are built in JavaScript element by element.
    await tx.query(
      `INSERT INTO releases (app, version, image, digest, procfile, port, config, limits, created_by, summary, build, rollback_of, created_at)
       SELECT * FROM json_to_recordset($1::json) AS r(app text, version int, image text, digest text, procfile jsonb, port int, config jsonb, limits jsonb,
                                                      created_by text, summary text, build text, rollback_of int, created_at timestamptz)
       ON CONFLICT (app, version) DO NOTHING`,
      [JSON.stringify(rows)],
    )
  },
  /**
   * The releases as COPY lines (the first of each version), written after each batch (`flush`)
   * rather than held to the end: a release row never changes, and the rows of an app created or
   * destroyed again after they were written are deleted by the next flush, before its own rows.
   */
  bulk() {
    /** Rows not written yet, by app and version. */
    let pending = new Map<string, Map<number, string>>()
    /** The versions each app has since it was last cleared, written or not (the first row of a version wins). */
    const versions = new Map<string, Set<number>>()
    /** Apps with rows written, and those of them cleared since (their written rows are deleted at the next flush). */
    const written = new Set<string>()
    let cleared = new Set<string>()
    const flush = async (tx: pg.PoolClient): Promise<void> => {
      if (cleared.size > 0) {
        await tx.query('DELETE FROM releases WHERE app = ANY($1::text[])', [[...cleared]])
        for (const app of cleared) written.delete(app)
        cleared = new Set()
      }
      const rows = pending
      pending = new Map()
      for (const app of rows.keys()) written.add(app)
      const lines = function* () {
        for (const r of rows.values()) yield* r.values()
      }
      if (rows.size > 0) await copyRows(tx, 'releases', INSERT_COLUMNS, lines())
    }
    return {
      apply(events) {
        for (const event of events) {
          const e = narrow<ReleasesEvent>(event)
          switch (e.type) {
            case 'ReleaseCreated': {
              let seen = versions.get(e.data.app)
              if (!seen) versions.set(e.data.app, (seen = new Set()))
              if (seen.has(e.data.version)) break
              seen.add(e.data.version)
              let rows = pending.get(e.data.app)
              if (!rows) pending.set(e.data.app, (rows = new Map()))
              rows.set(e.data.version, copyLine(releaseRow(e)))
              break
            }
            case 'AppCreated':
            case 'AppDestroyed':
              pending.delete(e.data.app)
              versions.delete(e.data.app)
              if (written.has(e.data.app)) cleared.add(e.data.app)
              break
            default:
              return unhandled('releases', e)
          }
        }
      },
      flush,
      write: flush,
    }
  },
}

/** A release's row as stored. */
export interface ReleaseRow {
  app: string
  version: number
  image: string | null
  digest: string | null
  port: number | null
  procfile: Record<string, string>
  config: Record<string, string>
  limits: { memory: Record<string, string>; cpu: Record<string, number> }
  created_by: string
  summary: string
  build: string | null
  rollback_of: number | null
  created_at: Date
}

const RELEASE_COLUMNS = 'app, version, image, digest, port, procfile, config, limits, created_by, summary, build, rollback_of, created_at'

/** Releases of an app, newest first. */
export async function listReleaseRows(db: Queryable, app: string, limit = 100): Promise<ReleaseRow[]> {
  const { rows } = await db.query<ReleaseRow>(`SELECT ${RELEASE_COLUMNS} FROM rm_releases.releases WHERE app = $1 ORDER BY version DESC LIMIT $2`, [app, limit])
  return rows
}

/** One release of an app, or its newest when `version` is undefined. */
export async function getReleaseRow(db: Queryable, app: string, version?: number): Promise<ReleaseRow | undefined> {
  const { rows } =
    version === undefined
      ? await db.query<ReleaseRow>(`SELECT ${RELEASE_COLUMNS} FROM rm_releases.releases WHERE app = $1 ORDER BY version DESC LIMIT 1`, [app])
      : await db.query<ReleaseRow>(`SELECT ${RELEASE_COLUMNS} FROM rm_releases.releases WHERE app = $1 AND version = $2`, [app, version])
  return rows[0]
}

/** What the scheduler deploys of an app's newest release (undefined: the app has none). */
export interface DeployableRow {
  app: string
  version: number
  image: string | null
  digest: string | null
  procfile: Record<string, string>
  port: number | null
  config: Record<string, string>
  limits: { memory: Record<string, string>; cpu: Record<string, number> }
}

/** The newest release of an app, with only what running it takes. */
export async function deployableRelease(db: Queryable, app: string): Promise<DeployableRow | undefined> {
  const { rows } = await db.query<DeployableRow>(
    `SELECT app, version, image, digest, procfile, port, config, limits FROM rm_releases.releases WHERE app = $1 ORDER BY version DESC LIMIT 1`,
    [app],
  )
  return rows[0]
}

/** The version of the newest release of an app that has an image, or undefined. */
export async function newestImageVersion(db: Queryable, app: string): Promise<number | undefined> {
  const { rows } = await db.query('SELECT version FROM rm_releases.releases WHERE app = $1 AND image IS NOT NULL ORDER BY version DESC LIMIT 1', [app])
  return rows[0]?.version as number | undefined
}

/** Every app that has a release with an image, in no particular order. */
export async function appsWithImage(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ app: string }>(`SELECT DISTINCT app FROM rm_releases.releases WHERE image IS NOT NULL`)
  return rows.map((r) => r.app)
}

/** The version of the release made of `build`, or undefined while there is none. */
export async function releaseOfBuild(db: Queryable, app: string, build: string): Promise<number | undefined> {
  const { rows } = await db.query('SELECT version FROM rm_releases.releases WHERE app = $1 AND build = $2', [app, build])
  return rows[0]?.version as number | undefined
}

/** The config of every app's newest release, in no particular order. */
export async function currentConfigs(db: Queryable, only?: readonly string[]): Promise<{ app: string; config: Record<string, string> }[]> {
  const { rows } = only
    ? await db.query<{ app: string; config: Record<string, string> }>(
        `SELECT DISTINCT ON (app) app, config FROM rm_releases.releases WHERE app = ANY($1) ORDER BY app, version DESC`,
        [only],
      )
    : await db.query<{ app: string; config: Record<string, string> }>(
        `SELECT DISTINCT ON (app) app, config FROM rm_releases.releases ORDER BY app, version DESC`,
      )
  return rows
}

/** The columns of `releases` in the order of {@link releaseRow}. */
const INSERT_COLUMNS = [
  'app',
  'version',
  'image',
  'digest',
  'procfile',
  'port',
  'config',
  'limits',
  'created_by',
  'summary',
  'build',
  'rollback_of',
  'created_at',
]

/** The row of `releases` a `ReleaseCreated` makes, in the column order of its INSERTs. */
function releaseRow(e: EventOf<'ReleaseCreated'>): unknown[] {
  const d = e.data
  return [
    d.app,
    d.version,
    d.image ?? null,
    d.digest ?? null,
    JSON.stringify(d.procfile),
    d.port ?? null,
    JSON.stringify(d.config),
    JSON.stringify(d.limits),
    d.by,
    d.summary,
    d.build ?? null,
    d.rollbackOf ?? null,
    e.occurredAt,
  ]
}

/** The row of `releases` a `ReleaseCreated` makes, as an object with the columns' names (for `json_to_recordset`). */
function releaseRecord(e: EventOf<'ReleaseCreated'>): Record<string, unknown> {
  const d = e.data
  return {
    app: d.app,
    version: d.version,
    image: d.image ?? null,
    digest: d.digest ?? null,
    procfile: d.procfile,
    port: d.port ?? null,
    config: d.config,
    limits: d.limits,
    created_by: d.by,
    summary: d.summary,
    build: d.build ?? null,
    rollback_of: d.rollbackOf ?? null,
    created_at: e.occurredAt,
  }
}

/** The newest release of each of `apps` (the dashboard's apps list), by app. */
export async function newestReleases(db: Queryable, apps: readonly string[]): Promise<Map<string, { version: number; summary: string; created_at: Date }>> {
  const { rows } = await db.query(
    'SELECT DISTINCT ON (app) app, version, summary, created_at FROM rm_releases.releases WHERE app = ANY($1::text[]) ORDER BY app, version DESC',
    [apps],
  )
  return new Map(rows.map((r) => [r.app as string, { version: r.version as number, summary: r.summary as string, created_at: r.created_at as Date }]))
}
