import type pg from 'pg'

/** The Postgres schema of Wharf's own tables (not read models). */
export const CORE_SCHEMA = 'wharf'
/** The NOTIFY channel on which every checkpoint change is announced, payload {@link CheckpointNotice} as JSON. */
export const CHECKPOINT_CHANNEL = 'wharf_projection_checkpoint'

/**
 * The advisory-lock namespace of projection ownership: a projector owns projection `name` while its
 * session holds `pg_advisory_lock(PROJECTION_LOCK_CLASS, hashtext(name))` ("whar").
 */
export const PROJECTION_LOCK_CLASS = 0x77686172

/** What a projection's row in `wharf.projection_checkpoints` says. */
export type ProjectionStatus = 'running' | 'rebuilding' | 'failed'

/** The payload of a NOTIFY on {@link CHECKPOINT_CHANNEL}. */
export interface CheckpointNotice {
  name: string
  seq: number
  status: ProjectionStatus
  /** The checkpoint moved back (a restored backup): forget any higher one seen before. */
  reset?: boolean
}

const CORE_DDL = `
CREATE SCHEMA IF NOT EXISTS ${CORE_SCHEMA};
CREATE TABLE IF NOT EXISTS ${CORE_SCHEMA}.projection_checkpoints (
  name       text PRIMARY KEY,
  version    integer NOT NULL,
  seq        bigint NOT NULL DEFAULT 0,
  status     text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'rebuilding', 'failed')),
  error      text,
  error_seq  bigint,
  updated_at timestamptz NOT NULL DEFAULT now()
);
`

/**
 * Creates the core schema and tables when missing. Idempotent and safe to run from many processes at
 * once: `CREATE ... IF NOT EXISTS` alone races on the catalog, so a transaction-scoped advisory lock
 * serialises the runs.
 */
export async function migrateCore(db: pg.Pool | pg.PoolClient): Promise<void> {
  await transaction(db, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('wharf.migrations'))`)
    await client.query(CORE_DDL)
  })
}

/**
 * Runs `fn` in one transaction on a client of `db` (a pool: a client taken and given back): COMMIT
 * when it resolves, ROLLBACK when it throws.
 */
export async function transaction<T>(db: pg.Pool | pg.PoolClient, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = 'release' in db ? db : await db.connect()
  try {
    await client.query('BEGIN')
    const result = await fn(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    if (!('release' in db)) client.release()
  }
}

export interface CheckpointRow {
  name: string
  version: number
  seq: number
  status: ProjectionStatus
  error: string | null
  errorSeq: number | null
}

/** The checkpoint rows of `names` (all rows when omitted). */
export async function readCheckpoints(db: pg.Pool | pg.PoolClient, names?: readonly string[]): Promise<CheckpointRow[]> {
  const { rows } = await db.query(
    `SELECT name, version, seq, status, error, error_seq FROM ${CORE_SCHEMA}.projection_checkpoints
      WHERE $1::text[] IS NULL OR name = ANY($1::text[]) ORDER BY name`,
    [names ?? null],
  )
  return rows.map((r) => ({
    name: r.name,
    version: r.version,
    seq: Number(r.seq),
    status: r.status,
    error: r.error,
    errorSeq: r.error_seq === null ? null : Number(r.error_seq),
  }))
}

/** `SELECT pg_notify(...)` of a checkpoint change; takes effect at COMMIT. */
export async function notifyCheckpoint(tx: pg.PoolClient, notice: CheckpointNotice): Promise<void> {
  await tx.query('SELECT pg_notify($1, $2)', [CHECKPOINT_CHANNEL, JSON.stringify(notice)])
}

/** Double-quotes an identifier the caller has already validated. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/**
 * Announces every checkpoint again with `reset` set (after a restore moved them back), so that
 * waiting readers forget the higher ones they saw.
 */
export async function announceCheckpointReset(db: pg.Pool | pg.PoolClient): Promise<void> {
  await db.query(
    `SELECT pg_notify($1, json_build_object('name', name, 'seq', seq, 'status', status, 'reset', true)::text) FROM ${CORE_SCHEMA}.projection_checkpoints`,
    [CHECKPOINT_CHANNEL],
  )
}
