import type pg from 'pg'
import { narrow, type EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { unhandled, type Projection, type Queryable } from './projection.js'

type UsersEvent = EventOf<'UserRegistered' | 'AdminGranted' | 'AdminRevoked' | 'TokenIssued' | 'TokensRevoked'>

const HANDLES = ['UserRegistered', 'AdminGranted', 'AdminRevoked', 'TokenIssued', 'TokensRevoked'] as const satisfies readonly UsersEvent['type'][]

/**
 * `users(username, email, admin, created_at)`: every account (other folders rely on this table,
 * `rm_users.users`); `tokens(hash, username, created_at)`: every API token not revoked, by its
 * SHA-256 (what the bearer-token check reads). The first admin's `AdminGranted` comes before its
 * `UserRegistered` (which says admin itself), so a grant for a user not yet known changes nothing.
 */
export const usersProjection: Projection = {
  name: 'users',
  version: 1,
  handles: HANDLES,
  tables: `
    CREATE TABLE users (
      username   text PRIMARY KEY,
      email      text NOT NULL,
      admin      boolean NOT NULL,
      created_at timestamptz NOT NULL
    );
    CREATE TABLE tokens (
      hash       text PRIMARY KEY,
      username   text NOT NULL,
      created_at timestamptz NOT NULL
    );
    CREATE INDEX tokens_username ON tokens (username);
  `,
  async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
    const e = narrow<UsersEvent>(event)
    switch (e.type) {
      case 'UserRegistered':
        await tx.query('INSERT INTO users (username, email, admin, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING', [
          e.data.username,
          e.data.email,
          e.data.admin,
          e.occurredAt,
        ])
        return
      case 'AdminGranted':
        await tx.query('UPDATE users SET admin = true WHERE username = $1', [e.data.username])
        return
      case 'AdminRevoked':
        await tx.query('UPDATE users SET admin = false WHERE username = $1', [e.data.username])
        return
      case 'TokenIssued':
        await tx.query('INSERT INTO tokens (hash, username, created_at) VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING', [
          e.data.tokenHash,
          e.data.username,
          e.occurredAt,
        ])
        return
      case 'TokensRevoked':
        await tx.query('DELETE FROM tokens WHERE username = $1 AND hash = ANY($2::text[])', [e.data.username, e.data.tokenHashes])
        return
      default:
        return unhandled('users', e)
    }
  },
}

/** An account as the API shows it. */
export interface UserView {
  username: string
  email: string
  admin: boolean
}

/**
 * The user a token hash (SHA-256, as stored) belongs to and when the token was issued (epoch ms), or
 * undefined (no such token, revoked, or issued more than `maxAgeMs` ago when that is given: expired).
 */
export async function userByTokenHash(
  db: Queryable,
  hash: string,
  maxAgeMs?: number,
): Promise<{ username: string; admin: boolean; issuedAt: number } | undefined> {
  const { rows } = await db.query<{ username: string; admin: boolean; created_at: Date }>(
    `SELECT u.username, u.admin, t.created_at FROM rm_users.tokens t JOIN rm_users.users u ON u.username = t.username
      WHERE t.hash = $1 AND ($2::bigint IS NULL OR t.created_at > now() - make_interval(secs => $2::bigint / 1000.0))`,
    [hash, maxAgeMs ?? null],
  )
  return rows[0] && { username: rows[0].username, admin: rows[0].admin, issuedAt: rows[0].created_at.getTime() }
}

/** A user's API tokens not revoked (expired ones too), oldest first, by hash. */
export async function tokensOf(db: Queryable, username: string): Promise<{ hash: string; createdAt: string }[]> {
  const { rows } = await db.query<{ hash: string; created_at: Date }>(
    'SELECT hash, created_at FROM rm_users.tokens WHERE username = $1 ORDER BY created_at, hash',
    [username],
  )
  return rows.map((r) => ({ hash: r.hash, createdAt: r.created_at.toISOString() }))
}

/** True when `username` has an account. */
export async function userExists(db: Queryable, username: string): Promise<boolean> {
  const { rowCount } = await db.query('SELECT 1 FROM rm_users.users WHERE username = $1', [username])
  return (rowCount ?? 0) > 0
}

/** One user, or undefined. */
export async function getUser(db: Queryable, username: string): Promise<(UserView & { createdAt: string }) | undefined> {
  const { rows } = await db.query<{ username: string; email: string; admin: boolean; created_at: Date }>(
    'SELECT username, email, admin, created_at FROM rm_users.users WHERE username = $1',
    [username],
  )
  const r = rows[0]
  return r && { username: r.username, email: r.email, admin: r.admin, createdAt: r.created_at.toISOString() }
}

/** Every user, by name. */
export async function listUsers(db: Queryable): Promise<(UserView & { createdAt: string })[]> {
  const { rows } = await db.query<{ username: string; email: string; admin: boolean; created_at: Date }>(
    'SELECT username, email, admin, created_at FROM rm_users.users ORDER BY username',
  )
  return rows.map((r) => ({ username: r.username, email: r.email, admin: r.admin, createdAt: r.created_at.toISOString() }))
}

/** Every admin, by name. */
export async function listAdmins(db: Queryable): Promise<UserView[]> {
  const { rows } = await db.query<UserView>('SELECT username, email, admin FROM rm_users.users WHERE admin ORDER BY username')
  return rows
}
