import type pg from 'pg'
import type { EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { narrow, unhandled, type Projection } from './projection.js'

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
        const d = e.data
        await tx.query(
          `INSERT INTO releases (app, version, image, digest, procfile, port, config, limits, created_by, summary, build, rollback_of, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT (app, version) DO NOTHING`,
          [
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
          ],
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
}
