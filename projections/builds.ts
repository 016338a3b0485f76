import type pg from 'pg'
import { isEvent, narrow, type EventOf } from '../domain/index.js'
import { parseStreamId, type RecordedEvent } from '../events/index.js'
import { copyLine, copyRows } from './copy.js'
import { unhandled, type Projection, type Queryable } from './projection.js'

type BuildsEvent = EventOf<'PushReceived' | 'BuildStarted' | 'BuildSucceeded' | 'BuildFailed' | 'ReleaseCreated' | 'AppCreated' | 'AppDestroyed'>

const HANDLES = [
  'PushReceived',
  'BuildStarted',
  'BuildSucceeded',
  'BuildFailed',
  'ReleaseCreated',
  'AppCreated',
  'AppDestroyed',
] as const satisfies readonly BuildsEvent['type'][]

/** A row of `builds` with its jsonb and timestamps as text (exact through a round trip): what applyBatch folds. */
interface BuildTextRow {
  id: string
  app: string
  kind: string
  sha: string | null
  source: string | null
  stack: string | null
  username: string
  status: BuildRow['status']
  image: string | null
  digest: string | null
  procfile: string | null
  port: number | null
  reason: string | null
  last_lines: string | null
  release: number | null
  created_at: string
  finished_at: string | null
}

function newBuild(
  id: string,
  app: string,
  kind: string,
  sha: string | null,
  source: string | null,
  stack: string | null,
  username: string,
  status: BuildRow['status'],
  at: string,
): BuildTextRow {
  return {
    id,
    app,
    kind,
    sha,
    source,
    stack,
    username,
    status,
    image: null,
    digest: null,
    procfile: null,
    port: null,
    reason: null,
    last_lines: null,
    release: null,
    created_at: at,
    finished_at: null,
  }
}

/** The build id of an event on a `build.<uuid>` stream. */
function buildId(event: RecordedEvent): string {
  const ref = parseStreamId(event.stream)
  if (ref?.kind !== 'build') throw new Error(`builds projection: ${event.type} ${event.id} is not on a build stream (${event.stream})`)
  return ref.id
}

/**
 * `builds(id, app, status, ...)`: one row per build of every live app, from its first event
 * (`PushReceived` for a push, `BuildStarted` for `builds:create`) to `BuildSucceeded` or
 * `BuildFailed`, and the release made of it (`ReleaseCreated` naming the build). Status:
 * `received` -> `building` -> `succeeded` | `failed`. Destroying (or creating) an app drops its
 * builds, as the releases read model does.
 */
export const buildsProjection: Projection = {
  name: 'builds',
  version: 1,
  handles: HANDLES,
  tables: `
    CREATE TABLE builds (
      id          text PRIMARY KEY,
      app         text NOT NULL,
      kind        text NOT NULL,
      sha         text,
      source      text,
      stack       text,
      username    text NOT NULL,
      status      text NOT NULL CHECK (status IN ('received', 'building', 'succeeded', 'failed')),
      image       text,
      digest      text,
      procfile    jsonb,
      port        integer,
      reason      text,
      last_lines  jsonb,
      release     integer,
      created_at  timestamptz NOT NULL,
      finished_at timestamptz
    );
    CREATE INDEX builds_app_created ON builds (app, created_at DESC, id DESC);
  `,
  async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
    const e = narrow<BuildsEvent>(event)
    switch (e.type) {
      case 'PushReceived':
        await tx.query(
          `INSERT INTO builds (id, app, kind, sha, username, status, created_at) VALUES ($1, $2, 'git', $3, $4, 'received', $5)
           ON CONFLICT (id) DO NOTHING`,
          [buildId(e), e.data.app, e.data.sha, e.data.user, e.occurredAt],
        )
        return
      case 'BuildStarted': {
        const d = e.data
        await tx.query(
          `INSERT INTO builds (id, app, kind, sha, source, stack, username, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'building', $8)
           ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, sha = COALESCE(EXCLUDED.sha, builds.sha), source = EXCLUDED.source,
             stack = EXCLUDED.stack, username = EXCLUDED.username, status = 'building'`,
          [buildId(e), d.app, d.kind, d.sha ?? null, d.source ?? null, d.stack, d.user, e.occurredAt],
        )
        return
      }
      case 'BuildSucceeded': {
        const d = e.data
        await tx.query(`UPDATE builds SET status = 'succeeded', image = $2, digest = $3, procfile = $4, port = $5, finished_at = $6 WHERE id = $1`, [
          buildId(e),
          d.image,
          d.digest ?? null,
          JSON.stringify(d.procfile),
          d.port,
          e.occurredAt,
        ])
        return
      }
      case 'BuildFailed':
        await tx.query(`UPDATE builds SET status = 'failed', reason = $2, last_lines = $3, finished_at = $4 WHERE id = $1`, [
          buildId(e),
          e.data.reason,
          JSON.stringify(e.data.lastLines),
          e.occurredAt,
        ])
        return
      case 'ReleaseCreated':
        if (e.data.build !== undefined) await tx.query('UPDATE builds SET release = $3 WHERE id = $1 AND app = $2', [e.data.build, e.data.app, e.data.version])
        return
      case 'AppCreated':
      case 'AppDestroyed':
        await tx.query('DELETE FROM builds WHERE app = $1', [e.data.app])
        return
      default:
        return unhandled('builds', e)
    }
  },
  /**
   * The same effect as `apply` on each event, in a few statements: the builds the batch names are
   * read, the events applied to them in memory (each case mirrors its statement above), then the
   * builds of apps created or destroyed in the batch are deleted and the rows written back.
   */
  /** A release that names no build (config, limits, rollback) changes no build. */
  ignores: (e) => isEvent(e, 'ReleaseCreated') && e.data.build === undefined,
  async applyBatch(events: RecordedEvent[], tx: pg.PoolClient): Promise<void> {
    const ids = new Set<string>()
    for (const event of events) {
      const e = narrow<BuildsEvent>(event)
      if (e.type === 'ReleaseCreated') {
        if (e.data.build !== undefined) ids.add(e.data.build)
      } else if (e.type !== 'AppCreated' && e.type !== 'AppDestroyed') ids.add(buildId(e))
    }
    const { rows: loaded } = await tx.query<BuildTextRow>(
      `SELECT id, app, kind, sha, source, stack, username, status, image, digest, procfile::text AS procfile, port, reason, last_lines::text AS last_lines,
              release, created_at::text AS created_at, finished_at::text AS finished_at
         FROM builds WHERE id = ANY($1::text[])`,
      [[...ids]],
    )
    const rows = new BuildRows(loaded)
    rows.apply(events)
    const { wiped, gone } = rows
    if (wiped.size > 0) await tx.query('DELETE FROM builds WHERE app = ANY($1::text[])', [[...wiped]])
    const deleted = [...gone].filter((id) => !rows.has(id))
    if (deleted.length > 0) await tx.query('DELETE FROM builds WHERE id = ANY($1::text[])', [deleted])
    await writeRows(tx, [...rows.values()])
  },
  bulk() {
    const rows = new BuildRows([])
    return { apply: (events) => rows.apply(events), write: (tx) => copyRows(tx, 'builds', BUILD_COLUMNS, copyLinesOf(rows.values())) }
  },
}

/** The columns of `builds`, in the order of {@link writeRows}'s. */
const BUILD_COLUMNS = [
  'id',
  'app',
  'kind',
  'sha',
  'source',
  'stack',
  'username',
  'status',
  'image',
  'digest',
  'procfile',
  'port',
  'reason',
  'last_lines',
  'release',
  'created_at',
  'finished_at',
] as const satisfies readonly (keyof BuildTextRow)[]

/** Rows as COPY lines, for a table that is empty (the bulk fold's one write): COPY takes far less of Postgres than an INSERT of arrays. */
function* copyLinesOf(rows: Iterable<BuildTextRow>): Generator<string> {
  for (const r of rows) yield copyLine(BUILD_COLUMNS.map((c) => r[c]))
}

/** Inserts `out` into `builds`, replacing the rows of the same ids. */
async function writeRows(tx: pg.PoolClient, out: BuildTextRow[]): Promise<void> {
  if (out.length === 0) return
  const col = <K extends keyof BuildTextRow>(k: K) => out.map((r) => r[k])
  await tx.query(
    `INSERT INTO builds (id, app, kind, sha, source, stack, username, status, image, digest, procfile, port, reason, last_lines, release, created_at, finished_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                            $11::jsonb[], $12::int[], $13::text[], $14::jsonb[], $15::int[], $16::timestamptz[], $17::timestamptz[])
       ON CONFLICT (id) DO UPDATE SET app = EXCLUDED.app, kind = EXCLUDED.kind, sha = EXCLUDED.sha, source = EXCLUDED.source, stack = EXCLUDED.stack,
         username = EXCLUDED.username, status = EXCLUDED.status, image = EXCLUDED.image, digest = EXCLUDED.digest, procfile = EXCLUDED.procfile,
         port = EXCLUDED.port, reason = EXCLUDED.reason, last_lines = EXCLUDED.last_lines, release = EXCLUDED.release, created_at = EXCLUDED.created_at,
         finished_at = EXCLUDED.finished_at`,
    [
      col('id'),
      col('app'),
      col('kind'),
      col('sha'),
      col('source'),
      col('stack'),
      col('username'),
      col('status'),
      col('image'),
      col('digest'),
      col('procfile'),
      col('port'),
      col('reason'),
      col('last_lines'),
      col('release'),
      col('created_at'),
      col('finished_at'),
    ],
  )
}

/**
 * Rows of `builds` in memory, by id and by app, and the events applied to them: each case mirrors its
 * statement in `apply`. `wiped`: the apps created or destroyed (their builds deleted); `gone`: the ids
 * deleted with them.
 */
class BuildRows {
  readonly #rows = new Map<string, BuildTextRow>()
  readonly #byApp = new Map<string, Set<string>>()
  readonly wiped = new Set<string>()
  readonly gone = new Set<string>()

  constructor(rows: readonly BuildTextRow[]) {
    for (const r of rows) this.#set(r)
  }

  has(id: string): boolean {
    return this.#rows.has(id)
  }

  values(): IterableIterator<BuildTextRow> {
    return this.#rows.values()
  }

  #set(r: BuildTextRow): void {
    const old = this.#rows.get(r.id)
    if (old && old.app !== r.app) this.#byApp.get(old.app)?.delete(r.id)
    this.#rows.set(r.id, r)
    let ids = this.#byApp.get(r.app)
    if (!ids) this.#byApp.set(r.app, (ids = new Set()))
    ids.add(r.id)
  }

  #update(id: string, patch: Partial<BuildTextRow>): void {
    const r = this.#rows.get(id)
    if (r) this.#set({ ...r, ...patch })
  }

  apply(events: readonly RecordedEvent[]): void {
    for (const event of events) {
      const e = narrow<BuildsEvent>(event)
      switch (e.type) {
        case 'PushReceived': {
          const id = buildId(e)
          if (!this.#rows.has(id)) this.#set(newBuild(id, e.data.app, 'git', e.data.sha, null, null, e.data.user, 'received', e.occurredAt))
          break
        }
        case 'BuildStarted': {
          const d = e.data
          const id = buildId(e)
          const r = this.#rows.get(id)
          if (!r) this.#set(newBuild(id, d.app, d.kind, d.sha ?? null, d.source ?? null, d.stack, d.user, 'building', e.occurredAt))
          else this.#set({ ...r, kind: d.kind, sha: d.sha ?? r.sha, source: d.source ?? null, stack: d.stack, username: d.user, status: 'building' })
          break
        }
        case 'BuildSucceeded': {
          const d = e.data
          this.#update(buildId(e), {
            status: 'succeeded',
            image: d.image,
            digest: d.digest ?? null,
            procfile: JSON.stringify(d.procfile),
            port: d.port,
            finished_at: e.occurredAt,
          })
          break
        }
        case 'BuildFailed':
          this.#update(buildId(e), { status: 'failed', reason: e.data.reason, last_lines: JSON.stringify(e.data.lastLines), finished_at: e.occurredAt })
          break
        case 'ReleaseCreated': {
          const build = e.data.build
          if (build !== undefined && this.#rows.get(build)?.app === e.data.app) this.#update(build, { release: e.data.version })
          break
        }
        case 'AppCreated':
        case 'AppDestroyed': {
          this.wiped.add(e.data.app)
          for (const id of this.#byApp.get(e.data.app) ?? []) {
            this.#rows.delete(id)
            this.gone.add(id)
          }
          this.#byApp.delete(e.data.app)
          break
        }
        default:
          unhandled('builds', e)
      }
    }
  }
}

/** A build's row as stored. */
export interface BuildRow {
  id: string
  app: string
  kind: string
  sha: string | null
  source: string | null
  stack: string | null
  username: string
  status: 'received' | 'building' | 'succeeded' | 'failed'
  image: string | null
  digest: string | null
  procfile: Record<string, string> | null
  port: number | null
  reason: string | null
  last_lines: string[] | null
  release: number | null
  created_at: Date
  finished_at: Date | null
}

const COLUMNS = 'id, app, kind, sha, source, stack, username, status, image, digest, procfile, port, reason, last_lines, release, created_at, finished_at'

/** Builds of an app, newest first. */
export async function listBuildRows(db: Queryable, app: string, limit = 100): Promise<BuildRow[]> {
  const { rows } = await db.query<BuildRow>(`SELECT ${COLUMNS} FROM rm_builds.builds WHERE app = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, [app, limit])
  return rows
}

/**
 * The builds of an app that `ref` may name: its newest for `latest`, else those whose id is `ref` or
 * starts with it (at most 2, by id: two mean the prefix is ambiguous unless one is exact).
 */
export async function findBuildRows(db: Queryable, app: string, ref: string): Promise<BuildRow[]> {
  const { rows } =
    ref === 'latest'
      ? await db.query<BuildRow>(`SELECT ${COLUMNS} FROM rm_builds.builds WHERE app = $1 ORDER BY created_at DESC, id DESC LIMIT 1`, [app])
      : await db.query<BuildRow>(`SELECT ${COLUMNS} FROM rm_builds.builds WHERE app = $1 AND (id = $2 OR id LIKE $2 || '%') ORDER BY id LIMIT 2`, [app, ref])
  return rows
}

/** Builds not finished (`received` or `building`), in no particular order. */
export async function unfinishedBuilds(db: Queryable): Promise<{ id: string; app: string }[]> {
  const { rows } = await db.query<{ id: string; app: string }>(`SELECT id, app FROM rm_builds.builds WHERE status IN ('received', 'building')`)
  return rows
}

/** The version of the release made of `build` once both the builds and the releases read models have it, else undefined. */
export async function releasedVersion(db: Queryable, build: string): Promise<number | undefined> {
  const { rows } = await db.query(
    `SELECT b.release FROM rm_builds.builds b JOIN rm_releases.releases r ON r.app = b.app AND r.version = b.release WHERE b.id = $1`,
    [build],
  )
  return rows[0]?.release as number | undefined
}
