import type pg from 'pg'
import { narrow, type EventOf } from '../domain/index.js'
import { parseStreamId, type RecordedEvent } from '../events/index.js'
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
