import type pg from 'pg'
import { WharfError } from '../core/errors.js'
import type { EventStore, RecordedEvent } from '../events/index.js'
import { CORE_SCHEMA, ident, notifyCheckpoint, readCheckpoints, transaction } from './checkpoints.js'
import { holdProjections } from './hold.js'
import { pipelinedApply } from './pipeline.js'
import { BUILT_WHILE_LOADING, schemaOf, type Projection } from './projection.js'

/**
 * Rebuilding read models from the log: the one replay path, used by the projector when a
 * projection's version changes and by `wharf admin:replay` (rebuild and swap, or rebuild into shadow
 * tables and compare them with the live ones row by row).
 */

/** Thrown by `apply`/`applyBatch`, with the event at fault: the projection stops there. */
export class ApplyError extends Error {
  constructor(
    readonly event: RecordedEvent,
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause))
  }
}

/** Runs `applyBatch` when the projection has one, else `apply` per event; a throw names its event when it can. */
export async function applyAll(p: Projection, events: RecordedEvent[], tx: pg.PoolClient): Promise<void> {
  if (events.length === 0) return
  if (p.applyBatch) {
    await p.applyBatch(events, tx)
    return
  }
  for (const e of events) {
    try {
      await p.apply(e, tx)
    } catch (err) {
      throw new ApplyError(e, err)
    }
  }
}

/**
 * The schema `wharf admin:replay` rebuilds a read model into, beside the live `rm_<name>` and the
 * projector's `rm_<name>__next`. It ends in `__next` too: backups and tests leave such schemas out.
 */
export function shadowSchemaOf(name: string): string {
  return `rm_${name}__replay__next`
}

/**
 * Drops `schema` if it exists and creates it afresh with the projection's tables. With
 * `deferIndexes`, the DDL's plain `CREATE INDEX` statements, and its `ALTER TABLE ... ADD PRIMARY KEY`
 * ones, are not run but answered, for {@link createIndexes} after the bulk of a replay: building an
 * index once over the loaded rows is cheaper than keeping it up to date row by row. Primary keys
 * declared in `CREATE TABLE` and unique indexes stay, for ON CONFLICT; a table whose batch path only
 * appends (the event log's `events`, loaded with COPY) declares its key with `ALTER TABLE` instead.
 */
export async function createShadow(pool: pg.Pool, p: Projection, schema: string, opts: { deferIndexes?: boolean } = {}): Promise<string[]> {
  const statements = p.tables
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  const deferred = opts.deferIndexes ? statements.filter(isDeferred) : []
  await transaction(pool, async (client) => {
    await client.query(`DROP SCHEMA IF EXISTS ${ident(schema)} CASCADE`)
    await client.query(`CREATE SCHEMA ${ident(schema)}`)
    await client.query(`SET LOCAL search_path TO ${ident(schema)}`)
    if (deferred.length === 0) await client.query(p.tables)
    else for (const s of statements) if (!deferred.includes(s)) await client.query(s)
  })
  return deferred
}

/** The DDL statements {@link createShadow} defers: plain indexes and primary keys added to a table made before. */
const DEFERRED = /^(CREATE\s+INDEX\b|ALTER\s+TABLE\s+\S+\s+ADD\s+PRIMARY\s+KEY\b)/i

/** Whether {@link createShadow} defers the DDL statement `s` (trimmed, without its `;`). */
export function isDeferred(s: string): boolean {
  return DEFERRED.test(s) && !s.includes(BUILT_WHILE_LOADING)
}

/** The `maintenance_work_mem` of the index builds after a replay. */
const INDEX_MEMORY = '256MB'

/** `ALTER TABLE <table> ADD PRIMARY KEY (<columns>)`, as {@link createShadow} defers it. */
const ADD_PRIMARY_KEY = /^ALTER\s+TABLE\s+(\S+)\s+ADD\s+PRIMARY\s+KEY\s*(\(.*\))$/is

/**
 * Runs index statements that {@link createShadow} deferred, in `schema`: each index on a connection
 * of its own, all at once (each sort takes a core while another's is written out: one after the
 * other, the event log's four took the last seconds of a replay on one core). A primary key is built
 * as a unique index and then made the key (`ADD CONSTRAINT ... PRIMARY KEY USING INDEX`: the same
 * constraint and index, named `<table>_pkey` as `ADD PRIMARY KEY` names them), since `ADD PRIMARY
 * KEY` would lock the table against the other builds for its whole build.
 */
export async function createIndexes(pool: pg.Pool, schema: string, statements: readonly string[]): Promise<void> {
  const keys: { table: string; index: string }[] = []
  const builds = statements.map((s) => {
    const m = ADD_PRIMARY_KEY.exec(s)
    if (!m) return s
    const table = m[1]!
    const index = `${table.replaceAll('"', '')}_pkey`
    keys.push({ table, index })
    return `CREATE UNIQUE INDEX ${ident(index)} ON ${table} ${m[2]}`
  })
  await Promise.all(
    builds.map((s) =>
      transaction(pool, async (client) => {
        // Sorting a million rows in memory rather than in temporary files (Postgres' default is 64 MB).
        await client.query(`SET LOCAL search_path TO ${ident(schema)}; SET LOCAL maintenance_work_mem = '${INDEX_MEMORY}'`)
        await client.query(s)
      }),
    ),
  )
  if (keys.length === 0) return
  await transaction(pool, async (client) => {
    await client.query(`SET LOCAL search_path TO ${ident(schema)}`)
    for (const k of keys) await client.query(`ALTER TABLE ${k.table} ADD CONSTRAINT ${ident(k.index)} PRIMARY KEY USING INDEX ${ident(k.index)}`)
  })
}

/**
 * Turns autovacuum off (or back on: the default) for every table of `schema`. A replay's shadow
 * tables get a million rows in seconds: autovacuum would vacuum and analyze them while they load (its
 * CPU taken from the replay on a small machine) and hold a lock that an index build must wait for.
 * The rebuilt tables are set back before they are swapped in (autovacuum then sees them as new).
 */
export async function setAutovacuum(pool: pg.Pool, schema: string, enabled: boolean): Promise<void> {
  const { rows } = await pool.query<{ tablename: string }>('SELECT tablename FROM pg_tables WHERE schemaname = $1', [schema])
  if (rows.length === 0) return
  const option = enabled ? 'RESET (autovacuum_enabled)' : 'SET (autovacuum_enabled = false)'
  await pool.query(rows.map((r) => `ALTER TABLE ${ident(schema)}.${ident(r.tablename)} ${option}`).join('; '))
}

/** One read model a replay writes: the projection and the schema its tables are in. */
export interface ReplayTarget {
  p: Projection
  schema: string
  /** Called inside each replay transaction after the events were applied, before COMMIT, and after it (fault injection). */
  beforeCommit?(firstSeq: number, lastSeq: number, applied: number): void | Promise<void>
  afterCommit?(firstSeq: number, lastSeq: number, applied: number): void | Promise<void>
}

/** How far a replay is: the last seq read and how many events were read so far. */
export interface ReplayProgress {
  seq: number
  events: number
}

export interface ReplayOptions {
  store: EventStore
  pool: pg.Pool
  targets: readonly ReplayTarget[]
  /** First seq to apply (default 1). */
  fromSeq?: number
  /** Last seq to apply (inclusive); default: the end of the log when the read starts. */
  toSeq?: number
  /** Events per read and per transaction, default 2000. */
  batch?: number
  /** How many read models are written at once (one connection each), default 4. */
  concurrency?: number
  /**
   * The targets' tables are empty (fresh shadow tables, a replay from seq 1): a projection with a
   * {@link Projection.bulk} fold (and a target without commit hooks) is folded in memory and written
   * once at the end, in one transaction.
   */
  fresh?: boolean
  /**
   * Called for each target once all its rows are written (a target with a bulk fold: after the fold's
   * write), before `replayLog` returns, which waits for it: a target's index builds start while the
   * others' last writes go on.
   */
  finished?(target: ReplayTarget): Promise<void>
  /** Checked before each batch: a true answer stops the replay with `WHARF_UNAVAILABLE`. */
  stopped?(): boolean
  /** Called after each batch was committed to every target. */
  onProgress?(p: ReplayProgress): void
  /** Called as the replay passes a stage: `read` (the log read to its end), `written <name>` (a target's rows all written). */
  onStage?(stage: string): void
}

/**
 * Applies the log from `fromSeq` (to `toSeq` or the end as of the call) to every target, reading it
 * once: each batch of events goes to each target that handles any, in one transaction per target
 * and batch, targets in parallel on up to `concurrency` connections, while the next batch is read.
 * Returns the last seq read (`fromSeq - 1` when none). Nothing is skipped: a throw stops the whole
 * replay (a rebuild fails as a whole; the caller drops the schemas).
 */
export async function replayLog(o: ReplayOptions): Promise<number> {
  const fromSeq = o.fromSeq ?? 1
  const size = o.batch ?? 2000
  // Which targets read each type: a batch is split in one pass over it, not one per target.
  const readers = new Map<string, number[]>()
  o.targets.forEach((t, i) => {
    for (const type of t.p.handles) readers.set(type, [...(readers.get(type) ?? []), i])
  })
  const limit = Math.max(1, o.concurrency ?? 4)
  let last = fromSeq - 1
  let read = 0
  let inFlight: Promise<void> | undefined
  const folds = o.targets.map((t) => (o.fresh && t.p.bulk && !t.beforeCommit && !t.afterCommit ? t.p.bulk() : undefined))
  // The batch being read: the events of each target written batch by batch (a fold's share is handed
  // to it chunk by chunk instead, so that most events are garbage as soon as their chunk was folded,
  // not kept for a whole batch), and whether each fold took any of it.
  let shares: RecordedEvent[][] = o.targets.map(() => [])
  const foldShares: RecordedEvent[][] = o.targets.map(() => [])
  let folded = o.targets.map(() => false)
  let count = 0
  let first = 0

  const applyFolds = (): void => {
    for (let i = 0; i < folds.length; i++) {
      const share = foldShares[i]!
      if (share.length === 0) continue
      folds[i]!.apply(share)
      share.length = 0
      folded[i] = true
    }
  }
  const writeAll = async (batch: RecordedEvent[][], touched: boolean[], firstSeq: number, lastSeq: number): Promise<void> => {
    const jobs: (() => Promise<void>)[] = []
    o.targets.forEach((t, i) => {
      const f = folds[i]
      if (f === undefined && batch[i]!.length > 0) jobs.push(() => replayTx(o.pool, t, batch[i]!, firstSeq, lastSeq))
      // A fold that writes as it goes (rows that never change again): what it gathered, in a transaction of its own,
      // first (the event log's is the largest write of a batch).
      if (f?.flush && touched[i]) {
        jobs.unshift(() =>
          transaction(o.pool, async (client) => {
            await client.query(`SET LOCAL search_path TO ${ident(t.schema)}; SET LOCAL synchronous_commit = off`)
            await f.flush!(client)
          }),
        )
      }
    })
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < jobs.length) await jobs[next++]!()
    }
    await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker))
  }
  const flush = async (): Promise<void> => {
    applyFolds()
    await inFlight
    const n = count
    const batch = shares
    const touched = folded
    const seq = last
    shares = o.targets.map(() => [])
    folded = o.targets.map(() => false)
    count = 0
    inFlight = writeAll(batch, touched, first, seq).then(() => {
      read += n
      o.onProgress?.({ seq, events: read })
    })
    // Surfaced on the next await, not as an unhandled rejection meanwhile.
    inFlight.catch(() => {})
  }

  try {
    reading: for await (const chunk of o.store.readAllChunks(fromSeq, { batch: size })) {
      if (o.stopped?.()) throw new WharfError('WHARF_UNAVAILABLE', 'stopped during a replay')
      for (const e of chunk) {
        if (o.toSeq !== undefined && e.seq > o.toSeq) break reading
        if (count === 0) first = e.seq
        for (const i of readers.get(e.type) ?? []) (folds[i] ? foldShares : shares)[i]!.push(e)
        count++
        last = e.seq
        if (count >= size) await flush()
      }
      applyFolds()
    }
    o.onStage?.('read')
    if (count > 0) await flush()
    await inFlight
  } catch (err) {
    await inFlight?.catch(() => {})
    throw err
  }
  await Promise.all(
    folds.map(async (f, i) => {
      const t = o.targets[i]!
      if (f)
        await transaction(o.pool, async (client) => {
          await client.query(`SET LOCAL search_path TO ${ident(t.schema)}; SET LOCAL synchronous_commit = off`)
          await f.write(client)
        })
      o.onStage?.(`written ${t.p.name}`)
      await o.finished?.(t)
    }),
  )
  return last
}

async function replayTx(pool: pg.Pool, t: ReplayTarget, events: RecordedEvent[], firstSeq: number, lastSeq: number): Promise<void> {
  const client = await pool.connect()
  try {
    // Without waiting for the disk at each COMMIT: a replay writes only tables that are not live yet
    // (a crash loses at most its last transactions, and a rebuild that did not finish is dropped and
    // done again), and the swap that makes them live commits as usual, which flushes everything
    // written before it to the disk first (the WAL is one sequence).
    await client.query(`BEGIN; SET LOCAL search_path TO ${ident(t.schema)}; SET LOCAL synchronous_commit = off`)
    try {
      if (t.p.applyBatch) await t.p.applyBatch(events, client)
      else await pipelinedApply(t.p, events, client)
    } catch (err) {
      await client.query('ROLLBACK')
      throw await locateReplayFailure(t, client, events, err)
    }
    await t.beforeCommit?.(firstSeq, lastSeq, events.length)
    await client.query('COMMIT')
    await t.afterCommit?.(firstSeq, lastSeq, events.length)
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

/** The event at fault in a replay batch (nothing is committed: a rebuild fails as a whole). */
async function locateReplayFailure(t: ReplayTarget, client: pg.PoolClient, events: RecordedEvent[], batchErr: unknown): Promise<unknown> {
  if (batchErr instanceof ApplyError) return batchErr
  await client.query(`BEGIN; SET LOCAL search_path TO ${ident(t.schema)}`)
  try {
    for (const e of events) {
      try {
        await t.p.apply(e, client)
      } catch (err) {
        return new ApplyError(e, err)
      }
    }
    return batchErr
  } finally {
    await client.query('ROLLBACK').catch(() => {})
  }
}

/**
 * Inside `client`'s transaction: replaces projection `p`'s live schema by `from` and sets its
 * checkpoint to `seq` (version `p.version`, running), announced at COMMIT. Readers see the old tables
 * or the new ones, never a mix.
 */
export async function swapIn(client: pg.PoolClient, p: Projection, from: string, seq: number): Promise<void> {
  await client.query(`SELECT 1 FROM ${CORE_SCHEMA}.projection_checkpoints WHERE name = $1 FOR UPDATE`, [p.name])
  await client.query(`DROP SCHEMA IF EXISTS ${ident(schemaOf(p.name))} CASCADE`)
  await client.query(`ALTER SCHEMA ${ident(from)} RENAME TO ${ident(schemaOf(p.name))}`)
  await client.query(
    `INSERT INTO ${CORE_SCHEMA}.projection_checkpoints (name, version, seq, status) VALUES ($1, $2, $3, 'running')
     ON CONFLICT (name) DO UPDATE SET version = $2, seq = $3, status = 'running', error = NULL, error_seq = NULL, updated_at = now()`,
    [p.name, p.version, seq],
  )
  await notifyCheckpoint(client, { name: p.name, seq, status: 'running' })
}

// ---- comparing ----

/** One row that differs between the live read model and the rebuilt one (rows as JSON objects). */
export interface RowDiff {
  table: string
  kind: 'only-live' | 'only-rebuilt' | 'differs'
  /** The primary key's columns and values. */
  key: Record<string, unknown>
  live?: Record<string, unknown>
  rebuilt?: Record<string, unknown>
}

/** What comparing one read model found. */
export interface ModelDiff {
  projection: string
  /** The seq both sides were compared at. */
  seq: number
  identical: boolean
  /** How many rows differ in all (only the first `limit` are in `rows`). */
  differing: number
  rows: RowDiff[]
  /** Set when the live read model could not be compared (failed, or behind the log for too long). */
  problem?: string
}

/**
 * Compares every table of schema `rebuilt` with the same table in `live`, row by row on the primary
 * key (a table without one: as multisets of whole rows). Answers up to `limit` differing rows and
 * how many there are.
 */
export async function compareSchemas(db: pg.PoolClient | pg.Pool, live: string, rebuilt: string, limit = 10): Promise<{ differing: number; rows: RowDiff[] }> {
  const { rows: tables } = await db.query<{ table: string; key: string[] | null }>(
    `SELECT c.relname AS table,
            (SELECT array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum))
               FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
              WHERE i.indrelid = c.oid AND i.indisprimary) AS key
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.relname`,
    [rebuilt],
  )
  let differing = 0
  const out: RowDiff[] = []
  for (const { table, key } of tables) {
    const l = `${ident(live)}.${ident(table)}`
    const r = `${ident(rebuilt)}.${ident(table)}`
    // USING merges the key columns, so an unqualified key column is the one of whichever side has the row.
    const sql = key?.length
      ? `WITH l AS (SELECT ${key.map(ident).join(', ')}, to_jsonb(t) AS j FROM ${l} t), r AS (SELECT ${key.map(ident).join(', ')}, to_jsonb(t) AS j FROM ${r} t),
              d AS (SELECT jsonb_build_object(${key.map((k) => `${literal(k)}, ${ident(k)}`).join(', ')}) AS key, l.j AS live, r.j AS rebuilt
                      FROM l FULL JOIN r USING (${key.map(ident).join(', ')}) WHERE l.j IS DISTINCT FROM r.j)
         SELECT key, live, rebuilt, count(*) OVER () AS n FROM d ORDER BY key LIMIT $1`
      : `WITH lj AS (SELECT to_jsonb(t) AS j FROM ${l} t), rj AS (SELECT to_jsonb(t) AS j FROM ${r} t),
              d AS ((SELECT '{}'::jsonb AS key, j AS live, NULL::jsonb AS rebuilt FROM (SELECT j FROM lj EXCEPT ALL SELECT j FROM rj) x)
                    UNION ALL (SELECT '{}'::jsonb, NULL, j FROM (SELECT j FROM rj EXCEPT ALL SELECT j FROM lj) y))
         SELECT key, live, rebuilt, count(*) OVER () AS n FROM d LIMIT $1`
    const { rows } = await db.query<{ key: Record<string, unknown>; live: Record<string, unknown> | null; rebuilt: Record<string, unknown> | null; n: string }>(
      sql,
      [Math.max(limit - out.length, 1)],
    )
    if (rows.length === 0) continue
    differing += Number(rows[0]!.n)
    for (const row of rows) {
      if (out.length >= limit) break
      const kind = row.live === null ? 'only-rebuilt' : row.rebuilt === null ? 'only-live' : 'differs'
      out.push({ table, kind, key: row.key, ...(row.live ? { live: row.live } : {}), ...(row.rebuilt ? { rebuilt: row.rebuilt } : {}) })
    }
  }
  return { differing, rows: out }
}

function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`
}

// ---- wharf admin:replay ----

/** Events per read and per transaction of `wharf admin:replay` (about 1 KB of memory each while held). */
export const ADMIN_REPLAY_BATCH = 20_000

/** The advisory-lock key held while an admin replay runs, in any process: the second one is refused ("wrpl"). */
export const REPLAY_LOCK_CLASS = 0x7772706c

const REPLAY_DDL = `
CREATE TABLE IF NOT EXISTS ${CORE_SCHEMA}.replays (
  id          text PRIMARY KEY,
  actor       text NOT NULL,
  projection  text,
  verify      boolean NOT NULL,
  status      text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
  phase       text NOT NULL,
  progress    jsonb,
  result      jsonb,
  error       text,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
`

/** Where an admin replay is: rebuilding from the log, building the indexes after it, comparing (--verify) or swapping the rebuilt tables in. */
export type ReplayPhase = 'replaying' | 'indexing' | 'comparing' | 'swapping' | 'done'

/** Progress of a running replay, as `wharf admin:replay` shows it. */
export interface ReplayJobProgress {
  /** Last seq applied to every rebuilt read model. */
  seq: number
  /** The end of the log when the replay started (what the ETA counts towards). */
  total: number
  events: number
  eventsPerSec: number
  /** Seconds left at the current rate, null before there is a rate. */
  etaSeconds: number | null
}

/** What a finished replay did. */
export interface ReplayJobResult {
  /** Every rebuilt read model includes the log up to this seq (with --verify: compared at least there). */
  seq: number
  events: number
  tookMs: number
  eventsPerSec: number
  /** With --verify: one entry per read model. */
  models?: ModelDiff[]
  /** Without --verify: the read models swapped in. */
  swapped?: string[]
}

/** One admin replay, as the API answers it. */
export interface ReplayJob {
  id: string
  actor: string
  projection: string | null
  verify: boolean
  status: 'running' | 'done' | 'failed'
  phase: ReplayPhase
  progress: ReplayJobProgress | null
  result: ReplayJobResult | null
  error: string | null
  startedAt: string
  finishedAt: string | null
}

export interface StartReplayOptions {
  store: EventStore
  pool: pg.Pool
  /** Every read model of the platform; `projection` picks one of them. */
  projections: readonly Projection[]
  actor: string
  projection?: string | undefined
  verify?: boolean
  /**
   * Events per read and per transaction, default {@link ADMIN_REPLAY_BATCH}: what bounds a replay's
   * memory (about two batches of events are held at once: one being written, the next being read).
   */
  batch?: number
  /** How long --verify waits for a live read model to reach the rebuilt seq, ms, default 30_000. */
  catchUpMs?: number
  /** How long the projectors may take to let go for the swap, ms, default 30_000. */
  holdTimeoutMs?: number
  /** Aborting stops the replay between batches (the live read models are left as they were). */
  signal?: AbortSignal
  /** Called when the job ends (a failure included), with its last state. */
  onEnd?(job: ReplayJob): void
  /**
   * Called as the first pass (from seq 1) passes a stage: `read` (the log read to its end), `written
   * <name>` and `indexed <name>` (a read model's rows all written, its deferred indexes built),
   * `replayed` (that pass done); at the end `swapped` or (--verify) `compared`.
   * What `npm run bench:replay` times each stage by.
   */
  onStage?(stage: string): void
}

/** Creates the table of replay jobs when missing (serialised like {@link migrateCore}). */
async function migrateReplays(pool: pg.Pool): Promise<void> {
  if (migrated.has(pool)) return
  await transaction(pool, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('wharf.migrations'))`)
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${CORE_SCHEMA}`)
    await client.query(REPLAY_DDL)
  })
  migrated.add(pool)
}

/** Pools whose database has the replays table (a restore replaces the core schema: see {@link withReplays}). */
const migrated = new WeakSet<pg.Pool>()

/** Runs `fn` once the replays table exists, and again after creating it when it went missing (undefined_table). */
async function withReplays<T>(pool: pg.Pool, fn: () => Promise<T>): Promise<T> {
  await migrateReplays(pool)
  try {
    return await fn()
  } catch (err) {
    if ((err as { code?: unknown }).code !== '42P01') throw err
    migrated.delete(pool)
    await migrateReplays(pool)
    return fn()
  }
}

/**
 * Starts `wharf admin:replay` in this process and answers its first state at once; the work goes on
 * in the background, recorded in `wharf.replays` (any process can answer {@link getReplay}). Only one
 * runs at a time across processes (an advisory lock held for its duration, released by Postgres if
 * this process dies): a second is refused with `WHARF_BUSY`. An unknown projection: `WHARF_NOT_FOUND`.
 */
export async function startReplay(o: StartReplayOptions): Promise<ReplayJob> {
  const chosen = o.projection === undefined ? [...o.projections] : o.projections.filter((p) => p.name === o.projection)
  if (chosen.length === 0) {
    throw new WharfError('WHARF_NOT_FOUND', `no read model ${JSON.stringify(o.projection)}; one of: ${o.projections.map((p) => p.name).join(', ')}`)
  }
  migrated.delete(o.pool)
  await migrateReplays(o.pool)
  const lock = await o.pool.connect()
  let held = false
  try {
    const { rows } = await lock.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, 0) AS ok', [REPLAY_LOCK_CLASS])
    held = rows[0]!.ok
    if (!held) {
      const { rows: running } = await lock.query<{ id: string; actor: string }>(
        `SELECT id, actor FROM ${CORE_SCHEMA}.replays WHERE status = 'running' ORDER BY started_at DESC LIMIT 1`,
      )
      const other = running[0]
      throw new WharfError('WHARF_BUSY', `a replay is running already${other ? ` (${other.id}, by ${other.actor})` : ''}; wait for it to finish`, {
        details: other ? { replay: other.id } : {},
      })
    }
    // A job the lock no longer covers died with its process.
    await lock.query(
      `UPDATE ${CORE_SCHEMA}.replays SET status = 'failed', error = 'interrupted (its process stopped)', finished_at = now() WHERE status = 'running'`,
    )
    const id = `rp_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
    await lock.query(`INSERT INTO ${CORE_SCHEMA}.replays (id, actor, projection, verify, status, phase) VALUES ($1, $2, $3, $4, 'running', 'replaying')`, [
      id,
      o.actor,
      o.projection ?? null,
      o.verify === true,
    ])
    const job = (await getReplay(o.pool, id))!
    void runJob(o, id, chosen, lock)
    return job
  } catch (err) {
    if (held) await lock.query('SELECT pg_advisory_unlock($1, 0)', [REPLAY_LOCK_CLASS]).catch(() => {})
    lock.release()
    throw err
  }
}

/** One replay job, or undefined. */
export async function getReplay(pool: pg.Pool, id: string): Promise<ReplayJob | undefined> {
  const { rows } = await withReplays(pool, () =>
    pool.query(
      `SELECT id, actor, projection, verify, status, phase, progress, result, error, started_at, finished_at FROM ${CORE_SCHEMA}.replays WHERE id = $1`,
      [id],
    ),
  )
  const r = rows[0]
  if (!r) return undefined
  return {
    id: r.id,
    actor: r.actor,
    projection: r.projection,
    verify: r.verify,
    status: r.status,
    phase: r.phase,
    progress: r.progress,
    result: r.result,
    error: r.error,
    startedAt: (r.started_at as Date).toISOString(),
    finishedAt: r.finished_at ? (r.finished_at as Date).toISOString() : null,
  }
}

/** How often progress is written to the job's row, ms. */
const PROGRESS_MS = 500

async function runJob(o: StartReplayOptions, id: string, chosen: Projection[], lock: pg.PoolClient): Promise<void> {
  const update = (fields: string, values: unknown[]) =>
    lock.query(`UPDATE ${CORE_SCHEMA}.replays SET ${fields}, updated_at = now() WHERE id = $1`, [id, ...values])
  const targets: ReplayTarget[] = chosen.map((p) => ({ p, schema: shadowSchemaOf(p.name) }))
  const started = performance.now()
  let total = 0
  let lastWrite = 0
  let writing: Promise<unknown> = Promise.resolve()
  const rate = (events: number) => Math.round(events / Math.max((performance.now() - started) / 1000, 0.001))
  const onProgress = (pr: ReplayProgress): void => {
    const now = performance.now()
    if (now - lastWrite < PROGRESS_MS) return
    lastWrite = now
    // Every pass reads from where the last one ended, and the first from seq 1: the seq is the count.
    const perSec = rate(pr.seq)
    const progress: ReplayJobProgress = {
      seq: pr.seq,
      total: Math.max(total, pr.seq),
      events: pr.seq,
      eventsPerSec: perSec,
      etaSeconds: perSec > 0 ? Math.max(0, Math.round((total - pr.seq) / perSec)) : null,
    }
    // One write at a time, on the lock's connection; a lost progress write only delays the display.
    writing = writing.then(() => update('progress = $2', [JSON.stringify(progress)]).catch(() => {}))
  }
  let end = { fields: `status = 'failed', error = $2`, value: 'stopped' }
  const replay = (fromSeq: number, toSeq?: number, only = targets, finished?: (t: ReplayTarget) => Promise<void>) =>
    replayLog({
      store: o.store,
      pool: o.pool,
      targets: only,
      fromSeq,
      // The first pass, from seq 1 into empty tables: bulk folds, and each target's deferred indexes built once it is written.
      ...(finished ? { fresh: true, finished, ...(o.onStage ? { onStage: o.onStage } : {}) } : {}),
      ...(toSeq === undefined ? {} : { toSeq }),
      batch: o.batch ?? ADMIN_REPLAY_BATCH,
      stopped: () => o.signal?.aborted === true,
      onProgress,
    })
  try {
    total = await o.store.lastSeq()
    const deferred = new Map<ReplayTarget, string[]>()
    for (const t of targets) {
      deferred.set(t, await createShadow(o.pool, t.p, t.schema, { deferIndexes: true }))
      await setAutovacuum(o.pool, t.schema, false)
    }
    let indexing: Promise<unknown> | undefined
    // The later passes and the comparison run with every index, as the live read models do.
    let last = await replay(1, undefined, targets, async (t) => {
      indexing ??= writing.then(() => update(`phase = 'indexing'`, []))
      await createIndexes(o.pool, t.schema, deferred.get(t) ?? [])
      o.onStage?.(`indexed ${t.p.name}`)
    })
    await indexing
    o.onStage?.('replayed')
    if (!o.verify) await update(`phase = 'replaying'`, [])
    let result: ReplayJobResult
    if (o.verify) {
      await writing
      await update(`phase = 'comparing'`, [])
      const models: ModelDiff[] = []
      for (const t of targets) models.push(await verifyOne(o, t, last, (from, to) => replay(from, to, [t])))
      o.onStage?.('compared')
      result = { seq: last, events: last, tookMs: 0, eventsPerSec: 0, models }
    } else {
      for (const t of targets) await setAutovacuum(o.pool, t.schema, true)
      // Passes while the log grows, so that the one with the projectors stopped is short.
      for (let pass = 0; pass < 3; pass++) {
        const before = last
        last = await replay(last + 1)
        if (last - before < (o.batch ?? ADMIN_REPLAY_BATCH)) break
      }
      await writing
      await update(`phase = 'swapping'`, [])
      await holdProjections(
        o.pool,
        async () => {
          last = await replay(last + 1)
          await transaction(o.pool, async (client) => {
            for (const t of targets) await swapIn(client, t.p, t.schema, last)
          })
        },
        { names: chosen.map((p) => p.name), timeoutMs: o.holdTimeoutMs ?? 30_000 },
      )
      o.onStage?.('swapped')
      result = { seq: last, events: last, tookMs: 0, eventsPerSec: 0, swapped: chosen.map((p) => p.name) }
    }
    const tookMs = Math.round(performance.now() - started)
    result.tookMs = tookMs
    result.eventsPerSec = rate(last)
    await writing
    end = { fields: `status = 'done', phase = 'done', result = $2`, value: JSON.stringify(result) }
  } catch (err) {
    await writing
    end = { fields: `status = 'failed', error = $2`, value: err instanceof Error ? err.message : String(err) }
  } finally {
    for (const t of targets) await o.pool.query(`DROP SCHEMA IF EXISTS ${ident(t.schema)} CASCADE`).catch(() => {})
    // The end is visible only once the lock is free: whoever sees it finished may start the next at once.
    await lock
      .query('BEGIN')
      .then(() => update(`${end.fields}, finished_at = now()`, [end.value]))
      .then(() => lock.query('SELECT pg_advisory_unlock($1, 0)', [REPLAY_LOCK_CLASS]))
      .then(() => lock.query('COMMIT'))
      .catch(async (err: unknown) => {
        await lock.query('ROLLBACK').catch(() => {})
        await lock.query('SELECT pg_advisory_unlock($1, 0)', [REPLAY_LOCK_CLASS]).catch(() => {})
        await update(`status = 'failed', error = $2, finished_at = now()`, [`could not record the end: ${err}`]).catch(() => {})
      })
    const job = await getReplay(o.pool, id).catch(() => undefined)
    lock.release()
    if (job) o.onEnd?.(job)
  }
}

/**
 * Compares one rebuilt read model (at `seq`) with the live one: waits until the live one has applied
 * at least `seq`, then holds its checkpoint row (the projector's next transaction on it waits; reads
 * go on), brings the rebuilt one to the same checkpoint and compares them.
 */
async function verifyOne(o: StartReplayOptions, t: ReplayTarget, seq: number, catchUp: (from: number, to: number) => Promise<number>): Promise<ModelDiff> {
  const name = t.p.name
  const deadline = Date.now() + (o.catchUpMs ?? 30_000)
  for (;;) {
    const [row] = await readCheckpoints(o.pool, [name])
    if (row && row.seq >= seq && row.status === 'running') break
    if (row?.status === 'failed') {
      return {
        projection: name,
        seq,
        identical: false,
        differing: 0,
        rows: [],
        problem: `the live read model failed at seq ${row.errorSeq ?? row.seq + 1}: ${row.error ?? ''}`,
      }
    }
    if (Date.now() >= deadline) {
      return {
        projection: name,
        seq,
        identical: false,
        differing: 0,
        rows: [],
        problem: row ? `the live read model stayed at seq ${row.seq} (${row.status}), behind the log (${seq})` : 'the live read model has no checkpoint',
      }
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  const client = await o.pool.connect()
  try {
    await client.query('BEGIN')
    const { rows } = await client.query<{ seq: string }>(`SELECT seq FROM ${CORE_SCHEMA}.projection_checkpoints WHERE name = $1 FOR SHARE`, [name])
    const at = Number(rows[0]!.seq)
    if (at > seq) await catchUp(seq + 1, at)
    const diff = await compareSchemas(client, schemaOf(name), t.schema, 10)
    await client.query('COMMIT')
    return { projection: name, seq: at, identical: diff.differing === 0, ...diff }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}
