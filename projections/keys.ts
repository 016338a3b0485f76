import type pg from 'pg'
import type { EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { narrow, unhandled, type Projection } from './projection.js'

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
