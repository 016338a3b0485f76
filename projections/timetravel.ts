import { randomBytes } from 'node:crypto'
import type pg from 'pg'
import { WharfError } from '../core/errors.js'
import { streamId, type EventStore, type RecordedEvent } from '../events/index.js'
import { accessProjection } from './access.js'
import { appsProjection } from './apps.js'
import { ident } from './checkpoints.js'
import { configProjection } from './config.js'
import { containersProjection } from './containers.js'
import { domainsProjection } from './domains.js'
import { lastSeqAt } from './eventlog.js'
import { formationProjection } from './formation.js'
import { schemaOf, type Projection, type Queryable } from './projection.js'
import { releasesProjection } from './releases.js'

/**
 * Time travel: an app's read models as they were at a point of the log, built from the log by the
 * projections' own `tables` and `apply`, and read by their own queries.
 *
 * How, without a second copy of any read-model SQL: the queries name their tables schema-qualified
 * (`rm_config.config`), so a scratch schema on the `search_path` would not be seen. Instead, inside
 * one transaction that is always rolled back, each read model's live schema is renamed out of the
 * way and an empty `rm_<name>` is created in its place; the projection's `tables` and `apply` fill
 * it with the app's events up to the point, the caller's queries run on that transaction, and the
 * ROLLBACK puts everything back. DDL is transactional and catalog changes are invisible to other
 * sessions until commit, so the projector, the routes and every other reader keep seeing the live
 * schemas the whole time, and are never blocked (renaming a schema takes no lock on its tables).
 * What it does hold is the row of each renamed schema in `pg_namespace`: a second time-travel query,
 * or a projector swapping a rebuilt schema in, waits for the rollback (at most {@link LOCK_TIMEOUT_MS}).
 * So queries run one at a time per process (a bounded queue) and lock schemas in name order.
 *
 * Should anything ever try to COMMIT that transaction, a deferred foreign key violated on purpose
 * makes the commit fail: the live schemas cannot be lost by a mistake in this file's callers.
 */

/** The read models time travel can rebuild: those the `--at` answers read. */
export const PAST_MODELS = {
  apps: appsProjection,
  access: accessProjection,
  config: configProjection,
  releases: releasesProjection,
  formation: formationProjection,
  domains: domainsProjection,
  containers: containersProjection,
} as const satisfies Record<string, Projection>

/** The name of a read model {@link asOf} can rebuild. */
export type PastModel = keyof typeof PAST_MODELS

/** A point of the log asked for: a `seq`, or a time (every event that occurred at or before it). */
export type At = { seq: number } | { time: Date }

/** The point an answer is "as of": the log position and its time (ISO 8601). */
export interface AtPoint {
  /** The newest event of the log included: the answer is the state after it. */
  seq: number
  /** The time asked for; for a seq, when that event occurred. */
  time: string
}

/**
 * What the API accepts as `at`: a log position (digits), or an ISO 8601 time with a zone (`Z` or
 * `+hh:mm`; a time without a zone would depend on the server's clock setting). The CLI turns a local
 * time into this form.
 */
export const AT_PATTERN = '^(?:[0-9]{1,15}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:[0-9]{2}))$'
const AT_RE = new RegExp(AT_PATTERN)

/** How long a time-travel query waits for another one's schemas (ms). */
export const LOCK_TIMEOUT_MS = 10_000
/** The longest one statement of a time-travel query may run (ms). */
const STATEMENT_TIMEOUT_MS = 30_000
/** The longest a fold may take (ms): it holds the schemas' rows meanwhile, so it is bounded (`WHARF_TIMEOUT`). */
export const FOLD_LIMIT_MS = 60_000
/** Time-travel queries waiting their turn in this process; one more is refused (`WHARF_UNAVAILABLE`). */
export const MAX_WAITING = 16

/** Parses an `at` value (see {@link AT_PATTERN}): `WHARF_INVALID` when it is neither a seq nor a time. */
export function parseAt(text: string): At {
  if (!AT_RE.test(text)) throw invalid(text, 'expected a log position (seq, e.g. 42) or an ISO 8601 time with a zone (e.g. 2026-12-07T05:00:00Z)')
  if (/^[0-9]+$/.test(text)) {
    const seq = Number(text)
    if (seq < 1) throw invalid(text, 'the log starts at seq 1')
    return { seq }
  }
  const ms = Date.parse(text)
  // The pattern passes 2026-13-45: Date.parse does not.
  if (Number.isNaN(ms)) throw invalid(text, 'not a valid date and time')
  return { time: new Date(ms) }
}

function invalid(text: string, why: string): WharfError {
  return new WharfError('WHARF_INVALID', `--at ${JSON.stringify(text.slice(0, 64))}: ${why}`, { details: { at: text.slice(0, 64) } })
}

function outOfRange(message: string, details: Record<string, unknown>): WharfError {
  return new WharfError('WHARF_OUT_OF_RANGE', message, { details })
}

/** What {@link asOf} reads: the log, and the database whose read models it rebuilds in a transaction. */
export interface TimeTravelSource {
  store: EventStore
  pool: pg.Pool
}

/**
 * Runs `read` on read models `models` as they were at `at` for the live app `app`, and answers with
 * the point it resolved. The caller checks access first (who may read the app now); `read` must only
 * query `models` (another read model would answer as of now) and only about `app` (the others are empty).
 *
 * The app's events are those of its current incarnation: from its newest `AppCreated` on. Errors:
 * `WHARF_OUT_OF_RANGE` for a point before that `AppCreated`, a time in the future, or a seq beyond
 * the log's head; `WHARF_NOT_FOUND` when the log has no `AppCreated` of `app`; `WHARF_TIMEOUT` when
 * other time-travel queries hold the schemas too long; `WHARF_UNAVAILABLE` when too many wait.
 */
export async function asOf<T>(
  src: TimeTravelSource,
  app: string,
  at: At,
  models: readonly PastModel[],
  read: (db: Queryable) => Promise<T>,
): Promise<{ at: AtPoint; value: T }> {
  const projections = [...new Set(models)].sort().map((m) => PAST_MODELS[m])
  const { events: appEvents } = await src.store.readStream(streamId('app', app))
  const created = appEvents.findLastIndex((e) => e.type === 'AppCreated')
  if (created < 0) throw new WharfError('WHARF_NOT_FOUND', `no app ${app}`, { details: { app } })
  const birth = appEvents[created]!
  let events = appEvents.slice(created)
  if (projections.some((p) => p.handles.some((t) => t.startsWith('Container')))) {
    const { events: runtime } = await src.store.readStream(streamId('runtime', app), { fromSeq: birth.seq })
    events = [...events, ...runtime].sort((a, b) => a.seq - b.seq)
  }
  const point = await resolve(src, app, at, birth, events)
  const upTo = events.filter((e) => e.seq <= point.seq)
  const value = await turn(() => inThePast(src.pool, projections, upTo, read))
  return { at: point, value }
}

/** The log position and time of `at`, checked against the app's birth, the clock and the log's head. */
async function resolve(src: TimeTravelSource, app: string, at: At, birth: RecordedEvent, events: RecordedEvent[]): Promise<AtPoint> {
  const born = { app, created: birth.occurredAt, createdSeq: birth.seq }
  if ('seq' in at) {
    if (at.seq < birth.seq) throw outOfRange(`${app} did not exist at seq ${at.seq}: it was created at seq ${birth.seq} (${birth.occurredAt})`, born)
    const head = await src.store.lastSeq()
    if (at.seq > head) throw outOfRange(`seq ${at.seq} is beyond the end of the event log (seq ${head})`, { seq: at.seq, head })
    return { seq: at.seq, time: await occurredAt(src.store, at.seq) }
  }
  const time = at.time
  if (time.getTime() > Date.now()) throw outOfRange(`${time.toISOString()} is in the future`, { time: time.toISOString() })
  if (time < new Date(birth.occurredAt)) throw outOfRange(`${app} did not exist at ${time.toISOString()}: it was created at ${birth.occurredAt}`, born)
  // The prefix of the app's events that occurred by `time` (the log is in order; a clock that went
  // back does not let a later event in before an earlier one).
  let last = 0
  while (last + 1 < events.length && new Date(events[last + 1]!.occurredAt) <= time) last++
  const from = events[last]!.seq
  const next = events[last + 1]?.seq
  const to = next === undefined ? await src.store.lastSeq() : next - 1
  // The log position at `time`: the app's state is the same anywhere in [from, to], the event log
  // read model says where exactly (without it, or while it catches up, `from` is as true).
  const seq = (await lastSeqAt(src.pool, time, from, to)) ?? from
  return { seq, time: time.toISOString() }
}

async function occurredAt(store: EventStore, seq: number): Promise<string> {
  for await (const e of store.readAll(seq, { batch: 1 })) return e.occurredAt
  throw new WharfError('WHARF_NOT_FOUND', `the event log has no seq ${seq}`, { details: { seq } })
}

// A deferred foreign key that is violated from the start: COMMIT fails, only ROLLBACK ends the transaction.
const NO_COMMIT = `
  CREATE TEMP TABLE timetravel_guard (id int PRIMARY KEY) ON COMMIT DROP;
  CREATE TEMP TABLE timetravel_no_commit (guard int REFERENCES timetravel_guard DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP;
  INSERT INTO timetravel_no_commit VALUES (1);
`

/** Builds `projections` from `events` in place of the live schemas, in a transaction that is rolled back, and runs `read` there. */
async function inThePast<T>(
  pool: pg.Pool,
  projections: readonly Projection[],
  events: readonly RecordedEvent[],
  read: (db: Queryable) => Promise<T>,
): Promise<T> {
  const client = await pool.connect()
  let broken: unknown
  try {
    await client.query('BEGIN')
    await client.query(`SET LOCAL lock_timeout = ${LOCK_TIMEOUT_MS}; SET LOCAL statement_timeout = ${STATEMENT_TIMEOUT_MS}`)
    await client.query(NO_COMMIT)
    const tag = randomBytes(6).toString('hex')
    const deadline = Date.now() + FOLD_LIMIT_MS
    for (const p of projections) {
      const live = schemaOf(p.name)
      await client.query(`ALTER SCHEMA ${ident(live)} RENAME TO ${ident(`tt_${tag}_${p.name}`)}`)
      await client.query(`CREATE SCHEMA ${ident(live)}`)
      await client.query(`SET LOCAL search_path TO ${ident(live)}`)
      await client.query(p.tables)
      const handles = new Set(p.handles)
      const mine = events.filter((e) => handles.has(e.type))
      if (p.applyBatch) await p.applyBatch(mine, client)
      else {
        for (const [i, e] of mine.entries()) {
          if (i % 100 === 0 && Date.now() > deadline) {
            throw new WharfError('WHARF_TIMEOUT', `the app's history is too long to fold within ${FOLD_LIMIT_MS / 1000} s`, {
              details: { events: events.length },
            })
          }
          await p.apply(e, client)
        }
      }
    }
    return await read(oneByOne(client))
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === '55P03') throw new WharfError('WHARF_TIMEOUT', 'other time-travel queries are running: try again', { cause: err })
    if (code === '3F000') throw new WharfError('WHARF_UNAVAILABLE', 'the read models are not set up yet', { cause: err })
    throw err
  } finally {
    try {
      await client.query('ROLLBACK')
    } catch (err) {
      broken = err
    }
    // A connection whose rollback failed is closed, which aborts its transaction.
    client.release(broken instanceof Error ? broken : undefined)
  }
}

/**
 * `client` for a reader that may query in parallel, as on a pool (`Promise.all`): its queries are
 * sent one after the other, as one client takes them (pg 9 refuses a query while one runs).
 */
function oneByOne(client: pg.PoolClient): Queryable {
  let last: Promise<unknown> = Promise.resolve()
  const query = (text: string, values?: unknown[]) => {
    const run = last.then(() => client.query(text, values))
    last = run.catch(() => undefined)
    return run
  }
  // The queries of projections/ call only query(text, values).
  return { query } as unknown as pg.PoolClient
}

let running: Promise<unknown> = Promise.resolve()
let waiting = 0

/**
 * Runs `fn` after the time-travel queries before it in this process: they would wait for each
 * other's schemas in Postgres anyway, and waiting here holds no pooled connection.
 */
async function turn<T>(fn: () => Promise<T>): Promise<T> {
  if (waiting >= MAX_WAITING) throw new WharfError('WHARF_UNAVAILABLE', `too many time-travel queries at once (${MAX_WAITING} waiting): try again`)
  waiting++
  const before = running
  const mine = (async () => {
    await before.catch(() => undefined)
    waiting--
    return fn()
  })()
  running = mine.catch(() => undefined)
  return mine
}
