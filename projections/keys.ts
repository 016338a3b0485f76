import type pg from 'pg'
import { narrow, type EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { unhandled, type Projection, type Queryable } from './projection.js'

type KeysEvent = EventOf<'KeyAdded' | 'KeyRemoved'>

const HANDLES = ['KeyAdded', 'KeyRemoved'] as const satisfies readonly KeysEvent['type'][]

/**
 * `keys(fingerprint, username, name, type, public_key, created_at)`: every SSH key and whose it is,
 * one row per SHA256 fingerprint (what the builder's SSH server authenticates by).
 */
export const keysProjection: Projection = {
  name: 'keys',
  version: 1,
  handles: HANDLES,
  tables: `
    CREATE TABLE keys (
      fingerprint text PRIMARY KEY,
      username    text NOT NULL,
      name        text NOT NULL,
      type        text NOT NULL,
      public_key  text NOT NULL,
      created_at  timestamptz NOT NULL
    );
    CREATE INDEX keys_username ON keys (username);
  `,
  async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
    const e = narrow<KeysEvent>(event)
    switch (e.type) {
      case 'KeyAdded':
        await tx.query(
          `INSERT INTO keys (fingerprint, username, name, type, public_key, created_at) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (fingerprint) DO UPDATE SET username = EXCLUDED.username, name = EXCLUDED.name, type = EXCLUDED.type,
             public_key = EXCLUDED.public_key, created_at = EXCLUDED.created_at`,
          [e.data.fingerprint, e.data.username, e.data.name, e.data.type, e.data.publicKey, e.occurredAt],
        )
        return
      case 'KeyRemoved':
        await tx.query('DELETE FROM keys WHERE fingerprint = $1 AND username = $2', [e.data.fingerprint, e.data.username])
        return
      default:
        return unhandled('keys', e)
    }
  },
}

/** An SSH key as the API shows it (`createdAt`: ISO 8601). */
export interface KeyView {
  fingerprint: string
  name: string
  type: string
  publicKey: string
  createdAt: string
}

/** The user's keys, oldest first. */
export async function listKeys(db: Queryable, username: string): Promise<KeyView[]> {
  const { rows } = await db.query<{ fingerprint: string; name: string; type: string; public_key: string; created_at: Date }>(
    'SELECT fingerprint, name, type, public_key, created_at FROM rm_keys.keys WHERE username = $1 ORDER BY created_at, fingerprint',
    [username],
  )
  return rows.map((r) => ({ fingerprint: r.fingerprint, name: r.name, type: r.type, publicKey: r.public_key, createdAt: r.created_at.toISOString() }))
}

/** Who a key (by fingerprint) signs in as, with the key's OpenSSH text, or undefined for an unknown key. */
export async function keyOwner(db: Queryable, fingerprint: string): Promise<{ username: string; admin: boolean; publicKey: string } | undefined> {
  const { rows } = await db.query(
    `SELECT k.username, k.public_key, u.admin FROM rm_keys.keys k JOIN rm_users.users u ON u.username = k.username WHERE k.fingerprint = $1`,
    [fingerprint],
  )
  const r = rows[0]
  return r ? { username: r.username, admin: r.admin, publicKey: r.public_key } : undefined
}
