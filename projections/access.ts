import type pg from 'pg'
import { WharfError } from '../core/errors.js'
import type { Access as AppAccess } from '../domain/app/decider.js'
import { narrow, type EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { copyLine, copyRows } from './copy.js'
import { unhandled, type Projection, type Queryable } from './projection.js'

type AccessEvent = EventOf<'CollaboratorAdded' | 'CollaboratorRemoved' | 'AppTransferred' | 'MaintenanceSet' | 'AppCreated' | 'AppDestroyed'>

const HANDLES = [
  'CollaboratorAdded',
  'CollaboratorRemoved',
  'AppTransferred',
  'MaintenanceSet',
  'AppCreated',
  'AppDestroyed',
] as const satisfies readonly AccessEvent['type'][]

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
  /** Collaborators and maintenance in memory, written with one COPY each at the end (each case as in `apply`). */
  bulk() {
    const collaborators = new Map<string, Set<string>>()
    const maintenance = new Map<string, string>()
    return {
      apply(events) {
        for (const event of events) {
          const e = narrow<AccessEvent>(event)
          switch (e.type) {
            case 'CollaboratorAdded': {
              let users = collaborators.get(e.data.app)
              if (!users) collaborators.set(e.data.app, (users = new Set()))
              users.add(e.data.username)
              break
            }
            case 'CollaboratorRemoved':
              collaborators.get(e.data.app)?.delete(e.data.username)
              break
            case 'AppTransferred':
              collaborators.get(e.data.app)?.delete(e.data.to)
              break
            case 'MaintenanceSet':
              if (!e.data.enabled) maintenance.delete(e.data.app)
              else if (!maintenance.has(e.data.app)) maintenance.set(e.data.app, e.occurredAt)
              break
            case 'AppCreated':
            case 'AppDestroyed':
              collaborators.delete(e.data.app)
              maintenance.delete(e.data.app)
              break
            default:
              return unhandled('access', e)
          }
        }
      },
      async write(tx) {
        const users = function* () {
          for (const [app, names] of collaborators) for (const username of names) yield copyLine([app, username])
        }
        await copyRows(tx, 'collaborators', ['app', 'username'], users())
        await copyRows(
          tx,
          'maintenance',
          ['app', 'since'],
          Array.from(maintenance, ([app, since]) => copyLine([app, since])),
        )
      },
    }
  },
}

/** A live app as the API shows it (`created`: ISO 8601). */
export interface AppRow {
  name: string
  owner: string
  created: string
  maintenance: boolean
}

/**
 * SQL for "the apps a user may see" (owner or collaborator; admins see all and skip it): a
 * sub-select of app names with the user as the given placeholder, for queries over read models.
 */
export function visibleAppsSql(userParam: string): string {
  return `SELECT name FROM rm_apps.apps WHERE destroyed_at IS NULL AND (owner = ${userParam}
            OR name IN (SELECT app FROM rm_access.collaborators WHERE username = ${userParam}))`
}

/**
 * The live app `name` from the read models if `user` may act on it at `level`: `WHARF_NOT_FOUND` when
 * there is none or the user may not see it, `WHARF_FORBIDDEN` when a collaborator asks to manage.
 */
export async function visibleApp(db: Queryable, user: { username: string; admin: boolean }, name: string, level: AppAccess = 'use'): Promise<AppRow> {
  const { rows } = await db.query(
    `SELECT name, owner, created_at,
            EXISTS (SELECT 1 FROM rm_access.maintenance m WHERE m.app = a.name) AS maintenance,
            EXISTS (SELECT 1 FROM rm_access.collaborators c WHERE c.app = a.name AND c.username = $2) AS collaborator
       FROM rm_apps.apps a WHERE name = $1 AND destroyed_at IS NULL`,
    [name, user.username],
  )
  const r = rows[0]
  const owner = r && (user.admin || r.owner === user.username)
  if (!r || (!owner && !r.collaborator)) throw new WharfError('WHARF_NOT_FOUND', `no app ${name}`, { details: { app: name } })
  if (level === 'manage' && !owner) throw new WharfError('WHARF_FORBIDDEN', `only the owner of ${name} (or an admin) may do this`, { details: { app: name } })
  return { name: r.name, owner: r.owner, created: (r.created_at as Date).toISOString(), maintenance: r.maintenance }
}

/** Whether a (non-admin) user may see the live app `app`. */
export async function canSeeApp(db: Queryable, username: string, app: string): Promise<boolean> {
  const { rowCount } = await db.query(`SELECT 1 FROM (${visibleAppsSql('$1')}) v(name) WHERE name = $2`, [username, app])
  return (rowCount ?? 0) > 0
}

/** Live apps the user may see (all for admins), by name. */
export async function listApps(db: Queryable, user: { username: string; admin: boolean }): Promise<Omit<AppRow, 'maintenance'>[]> {
  const { rows } = user.admin
    ? await db.query('SELECT name, owner, created_at FROM rm_apps.apps WHERE destroyed_at IS NULL ORDER BY name')
    : await db.query(`SELECT name, owner, created_at FROM rm_apps.apps WHERE name IN (${visibleAppsSql('$1')}) ORDER BY name`, [user.username])
  return rows.map((r) => ({ name: r.name, owner: r.owner, created: (r.created_at as Date).toISOString() }))
}

/** The collaborators of an app, by name. */
export async function getCollaborators(db: Queryable, app: string): Promise<string[]> {
  const { rows } = await db.query('SELECT username FROM rm_access.collaborators WHERE app = $1 ORDER BY username', [app])
  return rows.map((r) => r.username as string)
}

/** The apps in maintenance mode, in no particular order. */
export async function maintenanceApps(db: Queryable, only?: readonly string[]): Promise<{ app: string }[]> {
  const { rows } = only
    ? await db.query<{ app: string }>(`SELECT app FROM rm_access.maintenance WHERE app = ANY($1)`, [only])
    : await db.query<{ app: string }>(`SELECT app FROM rm_access.maintenance`)
  return rows
}
