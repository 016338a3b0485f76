import type pg from 'pg'
import type { EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { narrow, unhandled, type Projection } from './projection.js'

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
