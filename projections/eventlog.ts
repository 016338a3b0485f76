import type pg from 'pg'
import { endsCommit, type RecordedEvent } from '../events/index.js'
import { visibleAppsSql } from './access.js'
import type { Projection, Queryable } from './projection.js'

/** Data fields never shown through the events API: secrets, their hashes, and private keys (`CertAdded.privateKey`). */
const SECRET = /password|secret|token|hash|private/i
/** A PEM private key under any field name: never shown either. */
const PRIVATE_KEY_PEM = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/

/** `data` with every secret-looking field (or private key PEM) replaced by "[redacted]", recursively. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact)
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET.test(k) ? '[redacted]' : redact(v)]))
  }
  if (typeof value === 'string' && PRIVATE_KEY_PEM.test(value)) return '[redacted]'
  return value
}

/** Event types whose `data` carries config values (`values` or `config`: key -> value). */
const CONFIG_FIELDS: Record<string, string> = { ConfigSet: 'values', ReleaseCreated: 'config' }

/**
 * An event's `data` as it may leave the platform (events API, SSE, webhooks, traces): secrets
 * redacted ({@link redact}) and config values replaced by `"[redacted]"`, keys kept. The read models
 * keep the values; `config:list` shows them to those who may read the app.
 */
export function redactEvent(e: { type: string; data: unknown }): unknown {
  const data = redact(e.data)
  const field = CONFIG_FIELDS[e.type]
  if (!field || !data || typeof data !== 'object') return data
  const values = (data as Record<string, unknown>)[field]
  if (!values || typeof values !== 'object') return data
  return { ...data, [field]: Object.fromEntries(Object.keys(values).map((k) => [k, '[redacted]'])) }
}

/** One event as the events API, SSE and webhooks show it: {@link redactEvent}ed, with its app. */
export function publicEvent(e: RecordedEvent): EventView {
  return {
    seq: e.seq,
    id: e.id,
    type: e.type,
    stream: e.stream,
    app: appOf(e),
    actor: e.actor,
    occurredAt: e.occurredAt,
    correlationId: e.correlationId,
    data: redactEvent(e),
  }
}

/** The app an event is about (its `app` field, or the id of an `app.<name>` / `runtime.<name>` stream). */
export function appOf(e: RecordedEvent): string | null {
  const data = e.data
  if (data && typeof data === 'object' && 'app' in data && typeof data.app === 'string') return data.app
  const m = /^(?:app|runtime)\.(.+)$/.exec(e.stream)
  return m ? m[1]! : null
}

/** The user an event is about (a `user.<name>` stream), for "my own events". */
export function userOf(e: RecordedEvent): string | null {
  const m = /^user\.(.+)$/.exec(e.stream)
  return m ? m[1]! : null
}

/**
 * `events`: every event, indexed by app, user and type, secrets and config values redacted ({@link redactEvent}): what `GET /v1/events` and
 * `wharf events` read (with the caller's permissions applied at query time).
 */
export function eventLogProjection(types: readonly string[]): Projection {
  return {
    name: 'eventlog',
    // 2: config values redacted too. 3: keyed by (seq, idx): the events of one commit share a seq.
    version: 3,
    handles: types,
    tables: `
      CREATE TABLE events (
        seq            bigint NOT NULL,
        idx            smallint NOT NULL DEFAULT 0,
        last           boolean NOT NULL DEFAULT true,
        id             text NOT NULL,
        type           text NOT NULL,
        stream         text NOT NULL,
        app            text,
        username       text,
        actor          text NOT NULL,
        occurred_at    timestamptz NOT NULL,
        correlation_id text NOT NULL,
        data           jsonb NOT NULL,
        PRIMARY KEY (seq, idx)
      );
      CREATE INDEX events_app ON events (app, seq) WHERE app IS NOT NULL;
      CREATE INDEX events_user ON events (username, seq) WHERE username IS NOT NULL;
      CREATE INDEX events_type ON events (type, seq);
    `,
    async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
      await this.applyBatch!([event], tx)
    },
    async applyBatch(events: RecordedEvent[], tx: pg.PoolClient): Promise<void> {
      await tx.query(
        `INSERT INTO events (seq, id, type, stream, app, username, actor, occurred_at, correlation_id, data, idx, last)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::text[], $10::jsonb[], $11::smallint[], $12::boolean[])`,
        [
          events.map((e) => e.seq),
          events.map((e) => e.id),
          events.map((e) => e.type),
          events.map((e) => e.stream),
          events.map(appOf),
          events.map(userOf),
          events.map((e) => e.actor),
          events.map((e) => e.occurredAt),
          events.map((e) => e.correlationId),
          events.map((e) => JSON.stringify(redactEvent(e))),
          events.map((e) => e.index ?? 0),
          events.map(endsCommit),
        ],
      )
    },
  }
}

/** Which events {@link visibleEvents} answers: after `after`, at most `limit`, oldest first. */
export interface EventFilter {
  app?: string | undefined
  type?: string | undefined
  after: number
  /** Only up to this seq (inclusive). */
  upTo?: number
  /**
   * At most this many events, oldest first; a page that ends inside a commit (the events of one append,
   * which share a seq) goes on to that commit's end, so a page never splits one: `after` = the last
   * seq of a page is always a whole-commit boundary.
   */
  limit: number
}

/** One event as the events API answers it (`occurredAt`: ISO 8601; `data` redacted). */
export interface EventView {
  seq: number
  id: string
  type: string
  stream: string
  app: string | null
  actor: string
  occurredAt: string
  correlationId: string
  data: unknown
}

/**
 * The SQL of {@link visibleEvents}: the filter's conditions, and for a non-admin only the events of
 * apps the user may see and of the user's own stream.
 */
export function eventsQuery(
  user: { username: string; admin: boolean },
  f: EventFilter & { restOf?: { seq: number; idx: number } },
): { text: string; values: unknown[] } {
  const values: unknown[] = [f.restOf ? f.restOf.seq : f.after, f.limit]
  const where = [f.restOf ? `seq = $1 AND idx > $${values.push(f.restOf.idx)}` : 'seq > $1']
  if (f.app) where.push(`app = $${values.push(f.app)}`)
  if (f.type) where.push(`type = $${values.push(f.type)}`)
  if (f.upTo !== undefined) where.push(`seq <= $${values.push(f.upTo)}`)
  if (!user.admin) {
    const me = values.push(user.username)
    where.push(`(username = $${me} OR app IN (${visibleAppsSql(`$${me}`)}))`)
  }
  return {
    text: `SELECT seq, idx, last, id, type, stream, app, actor, occurred_at, correlation_id, data FROM rm_eventlog.events
      WHERE ${where.join(' AND ')} ORDER BY seq, idx LIMIT $2`,
    values,
  }
}

/** Events the user may see (an admin: all), oldest first. Secrets were redacted by the projection. */
export async function visibleEvents(db: Queryable, user: { username: string; admin: boolean }, f: EventFilter): Promise<EventView[]> {
  const { text, values } = eventsQuery(user, f)
  const { rows } = await db.query(text, values)
  const tail = rows.at(-1)
  if (rows.length === f.limit && tail && !tail.last) {
    // The page ends inside a commit: the rest of it (the events of one append are at most a handful).
    const rest = eventsQuery(user, { ...f, limit: 32_767, restOf: { seq: Number(tail.seq), idx: Number(tail.idx) } })
    rows.push(...(await db.query(rest.text, rest.values)).rows)
  }
  return rows.map((r) => ({
    seq: Number(r.seq),
    id: r.id as string,
    type: r.type as string,
    stream: r.stream as string,
    app: r.app as string | null,
    actor: r.actor as string,
    occurredAt: (r.occurred_at as Date).toISOString(),
    correlationId: r.correlation_id as string,
    data: r.data as unknown,
  }))
}

/** The scheduler's verdict on a release as the event log has it. */
export type DeployVerdict =
  | { type: 'DeployCompleted'; data: { release: number } }
  | { type: 'DeployFailed'; data: { release: number; reason?: string; rolledBackTo?: number } }

/**
 * The first `DeployCompleted` of `release` or of a later one (which superseded it), or `DeployFailed`
 * of `release`, of an app; undefined while there is none.
 */
export async function deployVerdict(db: Queryable, app: string, release: number): Promise<DeployVerdict | undefined> {
  const { rows } = await db.query(
    `SELECT type, data FROM rm_eventlog.events
        WHERE app = $1 AND ((type = 'DeployCompleted' AND (data->>'release')::int >= $2) OR (type = 'DeployFailed' AND (data->>'release')::int = $2))
        ORDER BY seq LIMIT 1`,
    [app, release],
  )
  return rows[0] as DeployVerdict | undefined
}
