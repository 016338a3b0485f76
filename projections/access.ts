import type pg from 'pg'
import type { EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { narrow, unhandled, type Projection } from './projection.js'

type AccessEvent = EventOf<'CollaboratorAdded' | 'CollaboratorRemoved' | 'AppTransferred' | 'MaintenanceSet' | 'AppCreated' | 'AppDestroyed'>

const HANDLES = ['CollaboratorAdded', 'CollaboratorRemoved', 'AppTransferred', 'MaintenanceSet', 'AppCreated', 'AppDestroyed'] as const satisfies readonly AccessEvent['type'][]

/**
 * Who besides the owner may use an app, and whether the public may: `collaborators(app, username)`
 * (the apps a user may see = owned in `rm_apps.apps` or listed here; admins see all) and
 * `maintenance(app)` (a row while the app is in maintenance mode; the router answers 503).
 */
export const accessProjection: Projection = {
  name: 'access',
  version: 1,
  handles: HANDLES,
  tables: `
    CREATE TABLE collaborators (
      app      text NOT NULL,
      username text NOT NULL,
      PRIMARY KEY (app, username)
    );
    CREATE INDEX collaborators_username ON collaborators (username);
    CREATE TABLE maintenance (
      app   text PRIMARY KEY,
      since timestamptz NOT NULL
    );
  `,
  async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
    const e = narrow<AccessEvent>(event)
    switch (e.type) {
      case 'CollaboratorAdded':
        await tx.query('INSERT INTO collaborators (app, username) VALUES ($1, $2) ON CONFLICT DO NOTHING', [e.data.app, e.data.username])
        return
      case 'CollaboratorRemoved':
        await tx.query('DELETE FROM collaborators WHERE app = $1 AND username = $2', [e.data.app, e.data.username])
        return
      case 'AppTransferred':
        // The new owner is no longer (also) a collaborator.
        await tx.query('DELETE FROM collaborators WHERE app = $1 AND username = $2', [e.data.app, e.data.to])
        return
      case 'MaintenanceSet':
        if (e.data.enabled) await tx.query('INSERT INTO maintenance (app, since) VALUES ($1, $2) ON CONFLICT DO NOTHING', [e.data.app, e.occurredAt])
        else await tx.query('DELETE FROM maintenance WHERE app = $1', [e.data.app])
        return
      case 'AppCreated':
      case 'AppDestroyed':
        await tx.query('DELETE FROM collaborators WHERE app = $1', [e.data.app])
        await tx.query('DELETE FROM maintenance WHERE app = $1', [e.data.app])
        return
      default:
        return unhandled('access', e)
    }
  },
}
