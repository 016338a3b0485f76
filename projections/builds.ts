import type pg from 'pg'
import type { EventOf } from '../domain/index.js'
import { parseStreamId, type RecordedEvent } from '../events/index.js'
import { narrow, unhandled, type Projection } from './projection.js'

type BuildsEvent = EventOf<'PushReceived' | 'BuildStarted' | 'BuildSucceeded' | 'BuildFailed' | 'ReleaseCreated' | 'AppCreated' | 'AppDestroyed'>

const HANDLES = ['PushReceived', 'BuildStarted', 'BuildSucceeded', 'BuildFailed', 'ReleaseCreated', 'AppCreated', 'AppDestroyed'] as const satisfies readonly BuildsEvent['type'][]

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
        await tx.query(
          `UPDATE builds SET status = 'succeeded', image = $2, digest = $3, procfile = $4, port = $5, finished_at = $6 WHERE id = $1`,
          [buildId(e), d.image, d.digest ?? null, JSON.stringify(d.procfile), d.port, e.occurredAt],
        )
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
