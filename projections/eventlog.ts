import type pg from 'pg'
import { AFTER_TYPES, buildTrace, type ServedView, type Trace, type TraceEvent } from '../domain/runtime/trace.js'
import { endsCommit, type RecordedEvent } from '../events/index.js'
import { visibleAppsSql } from './access.js'
import { BinaryRows, copyBinary, copyField, copyLine, copyRows, escapeJson, escapeText, timestampMicros } from './copy.js'
import { BUILT_WHILE_LOADING, type BulkFold, type Projection, type Queryable } from './projection.js'

/** Data fields never shown through the events API: secrets, their hashes, and private keys (`CertAdded.privateKey`). */
const SECRET = /password|secret|token|hash|private/i
/** A PEM private key under any field name: never shown either. */
const PRIVATE_KEY_PEM = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/

/** `data` with every secret-looking field (or private key PEM) replaced by "[redacted]", recursively. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact)
  if (value && typeof value === 'object') {
    // A loop rather than Object.entries/fromEntries: no array per field (the event log redacts every event).
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(value)) {
      const v = SECRET.test(k) ? '[redacted]' : redact((value as Record<string, unknown>)[k])
      if (k === '__proto__') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
      else out[k] = v
    }
    return out
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
  return { ...data, [field]: hiddenValues(values) }
}

/** `values` with each value replaced by "[redacted]", keys kept. */
function hiddenValues(values: object): Record<string, string> {
  const hidden: Record<string, string> = {}
  for (const k of Object.keys(values)) {
    if (k === '__proto__') Object.defineProperty(hidden, k, { value: '[redacted]', enumerable: true, writable: true, configurable: true })
    else hidden[k] = '[redacted]'
  }
  return hidden
}

/** Whether {@link redact} would change `value`: the same walk, without making a copy. */
function hasSecret(value: unknown): boolean {
  if (Array.isArray(value)) {
    for (const v of value) if (hasSecret(v)) return true
    return false
  }
  if (value && typeof value === 'object') {
    for (const k in value) {
      if (!Object.hasOwn(value, k)) continue
      if (secretKey(k) || hasSecret((value as Record<string, unknown>)[k])) return true
    }
    return false
  }
  // The regular expression only where its fixed start is (a million values in a replay).
  return typeof value === 'string' && value.includes('-----BEGIN ') && PRIVATE_KEY_PEM.test(value)
}

/** {@link SECRET}'s answer for field names seen before (they are few: the same fields in every event of a type). */
const secretKeys = new Map<string, boolean>()

function secretKey(k: string): boolean {
  let secret = secretKeys.get(k)
  if (secret === undefined) {
    secret = SECRET.test(k)
    // Bounded: config keys are field names too, and are many.
    if (secretKeys.size < 10_000) secretKeys.set(k, secret)
  }
  return secret
}

/**
 * `JSON.stringify(redactEvent(e))`, the event log's `data` column: an event with nothing to redact
 * (most of them) is written as it is, without the copy {@link redact} makes (a replay writes a million).
 */
export function redactedJson(e: { type: string; data: unknown }): string {
  const data = e.data
  if (hasSecret(data)) return JSON.stringify(redactEvent(e))
  const field = CONFIG_FIELDS[e.type]
  if (field === undefined || !data || typeof data !== 'object') return JSON.stringify(data)
  // Config values hidden in a shallow copy: the rest has nothing to redact, and is written at once.
  const values = (data as Record<string, unknown>)[field]
  if (!values || typeof values !== 'object') return JSON.stringify(data)
  return JSON.stringify({ ...data, [field]: hiddenValues(values) })
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
  return e.stream.startsWith('user.') && e.stream.length > 5 ? e.stream.slice(5) : null
}

/**
 * The integer key of an event type or an app name in the event log's indexes (`type_key`, `app_key`):
 * a 32-bit FNV-1a hash of its UTF-16 code units, signed. Postgres sorts integers much faster than text
 * (a tie on a text key, with 15 types and 2,000 apps, reads the next column the slow way): the type's
 * index over a million rows builds in about half the CPU, the app's in three quarters. Two names may
 * share a key, so a query asks for both (`type_key = K AND type = T`). Stored in the read model: this
 * function must never change (a new one needs a new version of the read model).
 */
export function nameKey(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h | 0
}

/** {@link nameKey}'s answers for names seen before (15 types, an app's name in most events). */
const nameKeys = new Map<string, number>()

function keyOf(s: string): number {
  let key = nameKeys.get(s)
  if (key === undefined) {
    key = nameKey(s)
    // Bounded: app names are many.
    if (nameKeys.size < 100_000) nameKeys.set(s, key)
  }
  return key
}

/** SQL: the event's app is `app`, its key and its name pushed on `values` (the key first, for the index). */
function appIs(app: string, values: unknown[]): string {
  const key = values.push(keyOf(app))
  return `app_key = $${key} AND app = $${values.push(app)}`
}

/**
 * `events`: every event, indexed by app, user and type, secrets and config values redacted ({@link redactEvent}): what `GET /v1/events` and
 * `wharf events` read (with the caller's permissions applied at query time).
 */
export function eventLogProjection(types: readonly string[]): Projection {
  return {
    name: 'eventlog',
    // 2: config values redacted too; 3: app incarnations; 4: keyed by (seq, idx): the events of one commit share a seq;
    // 5: `data` as json (kept as written: about 40% less of Postgres' time to load than jsonb, and read back whole).
    // The key of `events` is added apart from its table (the same key, named events_pkey): a replay's first pass,
    // which only appends with COPY, builds it once after the load (createShadow's deferred statements).
    // 6: the type's and the app's indexes on integer keys (nameKey): cheaper to build after a replay. The users'
    // index (a user's stream: few events) is kept up while a replay loads rather than built after it (a scan of all).
    version: 6,
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
        data           json NOT NULL,
        incarnation    bigint,
        type_key       integer NOT NULL,
        app_key        integer
      );
      ALTER TABLE events ADD PRIMARY KEY (seq, idx);
      CREATE TABLE incarnations (
        app  text PRIMARY KEY,
        seq  bigint NOT NULL
      );
      CREATE TABLE build_incarnations (
        stream      text PRIMARY KEY,
        incarnation bigint
      );
      CREATE INDEX events_app ON events (app_key, incarnation, seq) WHERE app_key IS NOT NULL;
      CREATE INDEX events_user ON events (username, seq) WHERE username IS NOT NULL ${BUILT_WHILE_LOADING};
      CREATE INDEX events_type ON events (type_key, seq);
    `,
    async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
      const app = appOf(event)
      const [incarnation] = await incarnationsOf([event], [app], tx)
      await tx.query(
        `INSERT INTO events (${EVENT_COLUMNS.join(', ')}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
        eventRow(event, app, incarnation ?? null),
      )
    },
    /**
     * A rebuild from seq 1 into empty tables: the incarnations in memory, each event's row encoded
     * as it is folded (the event itself is garbage at once), the rows of each batch written with one
     * COPY (`flush`), the incarnations at the end: the same rows as `apply` on each event.
     */
    bulk() {
      return new EventLogFold()
    },
    /** The same rows as `apply` on each event, written with one COPY (a replay writes a million). */
    async applyBatch(events: RecordedEvent[], tx: pg.PoolClient): Promise<void> {
      if (events.length === 0) return
      const apps = events.map(appOf)
      const incarnations = await incarnationsOf(events, apps, tx)
      await copyRows(tx, 'events', EVENT_COLUMNS, copyLines(events, apps, incarnations))
    },
  }
}

/** The columns of `events`, in the order of {@link eventRow}. */
const EVENT_COLUMNS = [
  'seq',
  'idx',
  'last',
  'id',
  'type',
  'stream',
  'app',
  'username',
  'actor',
  'occurred_at',
  'correlation_id',
  'data',
  'incarnation',
  'type_key',
  'app_key',
] as const

/** The row of `events` an event makes, in the order of {@link EVENT_COLUMNS}: the one definition of what the read model stores. */
export function eventRow(e: RecordedEvent, app: string | null, incarnation: number | null): unknown[] {
  return [
    e.seq,
    e.index ?? 0,
    endsCommit(e),
    e.id,
    e.type,
    e.stream,
    app,
    userOf(e),
    e.actor,
    e.occurredAt,
    e.correlationId,
    redactedJson(e),
    incarnation,
    keyOf(e.type),
    app === null ? null : keyOf(app),
  ]
}

function* copyLines(events: RecordedEvent[], apps: (string | null)[], incarnations: (number | null)[]): Generator<string> {
  for (let i = 0; i < events.length; i++) yield eventLine(events[i]!, apps[i] ?? null, incarnations[i] ?? null)
}

/**
 * `copyLine(eventRow(e, app, incarnation))`, without the array and the dispatch on each value's type
 * (a replay writes a million): the same fields, each of the type {@link eventRow} gives it.
 */
export function eventLine(e: RecordedEvent, app: string | null, incarnation: number | null): string {
  const user = userOf(e)
  return `${copyField(e.seq)}\t${e.index ?? 0}\t${endsCommit(e) ? 't' : 'f'}\t${escapeText(e.id)}\t${escapeText(e.type)}\t${escapeText(e.stream)}\t${app === null ? '\\N' : escapeText(app)}\t${user === null ? '\\N' : escapeText(user)}\t${escapeText(e.actor)}\t${copyField(e.occurredAt)}\t${escapeText(e.correlationId)}\t${escapeJson(redactedJson(e))}\t${incarnation === null ? '\\N' : copyField(incarnation)}\t${keyOf(e.type)}\t${app === null ? '\\N' : keyOf(app)}\n`
}

/**
 * The event log's bulk fold (see `bulk` above): `incarnationsOf`'s bookkeeping in memory, rows
 * encoded for a binary COPY as their chunk is folded ({@link eventBinaryRow}; an event whose time is
 * not plain ISO 8601 as a text line instead), written by `flush` after each batch, with the build
 * streams first seen since the last flush (their incarnation never changes again).
 */
class EventLogFold implements BulkFold {
  /** The incarnation of each app (the seq of its `AppCreated`), and of each build stream (its first event's). */
  readonly #apps = new Map<string, number>()
  readonly #builds = new Map<string, number | null>()
  /** Build streams first seen since the last flush, as COPY lines. */
  #newBuilds: string[] = []
  readonly #rows = new BinaryRows()
  /** Rows of events whose time the binary form cannot hold as Postgres would read it: COPY lines, written apart. */
  #lines: string[] = []

  apply(events: RecordedEvent[]): void {
    for (const e of events) {
      const app = appOf(e)
      let incarnation: number | null = null
      if (app !== null) {
        if (e.type === 'AppCreated') this.#apps.set(app, e.seq)
        if (!e.stream.startsWith('build.')) incarnation = this.#apps.get(app) ?? null
        else if (this.#builds.has(e.stream)) incarnation = this.#builds.get(e.stream) ?? null
        else {
          this.#builds.set(e.stream, (incarnation = this.#apps.get(app) ?? null))
          this.#newBuilds.push(copyLine([e.stream, incarnation]))
        }
      }
      const at = timestampMicros(e.occurredAt)
      if (at === undefined) this.#lines.push(eventLine(e, app, incarnation))
      else eventBinaryRow(this.#rows, e, app, incarnation, at)
    }
  }

  /** Writes the rows encoded so far, and the build streams seen since the last flush. */
  async flush(tx: pg.PoolClient): Promise<void> {
    const pieces = this.#rows.take()
    const lines = this.#lines
    const builds = this.#newBuilds
    this.#lines = []
    this.#newBuilds = []
    if (pieces.length > 0) await copyBinary(tx, 'events', EVENT_COLUMNS, pieces)
    if (lines.length > 0) await copyRows(tx, 'events', EVENT_COLUMNS, lines)
    if (builds.length > 0) await copyRows(tx, 'build_incarnations', ['stream', 'incarnation'], builds)
  }

  /** The rest of the rows, and the incarnations. */
  async write(tx: pg.PoolClient): Promise<void> {
    await this.flush(tx)
    await copyRows(
      tx,
      'incarnations',
      ['app', 'seq'],
      Array.from(this.#apps, ([app, seq]) => copyLine([app, seq])),
    )
  }
}

/**
 * The row of `events` {@link eventRow} makes, as a row of a binary COPY into `rows` (`at`: its time,
 * from {@link timestampMicros}).
 */
export function eventBinaryRow(rows: BinaryRows, e: RecordedEvent, app: string | null, incarnation: number | null, at: number): void {
  const user = userOf(e)
  const data = redactedJson(e)
  // A UTF-16 code unit is at most 3 bytes of UTF-8; the integers, the boolean and the time take 35.
  const text = e.id.length + e.type.length + e.stream.length + (app?.length ?? 0) + (user?.length ?? 0) + e.actor.length + e.correlationId.length + data.length
  rows.row(EVENT_COLUMNS.length, 35 + text * 3)
  rows.int8(e.seq)
  rows.int2(e.index ?? 0)
  rows.bool(endsCommit(e))
  rows.text(e.id)
  rows.text(e.type)
  rows.text(e.stream)
  if (app === null) rows.null()
  else rows.text(app)
  if (user === null) rows.null()
  else rows.text(user)
  rows.text(e.actor)
  rows.timestamp(at)
  rows.text(e.correlationId)
  rows.text(data)
  if (incarnation === null) rows.null()
  else rows.int8(incarnation)
  rows.int4(keyOf(e.type))
  if (app === null) rows.null()
  else rows.int4(keyOf(app))
}

/**
 * The incarnation of each event's app: the `seq` of the `AppCreated` that began it. An app name
 * reused after `apps:destroy` is a new app, and what the events API answers for it starts there. An
 * app's and its runtime's events take the incarnation current when they are applied (those of a
 * destroyed app, until it is created again, keep the old one); a build's events all take the
 * incarnation of the build's first event, so a build that finishes after the name was reused stays
 * with the app it was pushed to. Updates `incarnations` and `build_incarnations` as it goes.
 */
async function incarnationsOf(events: RecordedEvent[], apps: (string | null)[], tx: pg.PoolClient): Promise<(number | null)[]> {
  const names = [...new Set(apps.filter((a): a is string => a !== null))]
  if (names.length === 0) return events.map(() => null)
  const builds = [...new Set(events.filter((e) => e.stream.startsWith('build.')).map((e) => e.stream))]
  const [current, known] = await Promise.all([
    // Lists as JSON documents: JSON.stringify is native, where array parameters are built in JavaScript element by element.
    tx.query<{ app: string; seq: string }>('SELECT app, seq FROM incarnations WHERE app IN (SELECT json_array_elements_text($1::json))', [
      JSON.stringify(names),
    ]),
    builds.length === 0
      ? { rows: [] }
      : tx.query<{ stream: string; incarnation: string | null }>(
          'SELECT stream, incarnation FROM build_incarnations WHERE stream IN (SELECT json_array_elements_text($1::json))',
          [JSON.stringify(builds)],
        ),
  ])
  const byApp = new Map(current.rows.map((r) => [r.app, Number(r.seq)]))
  const byBuild = new Map(known.rows.map((r) => [r.stream, r.incarnation === null ? null : Number(r.incarnation)]))
  const createdApps = new Map<string, number>()
  const newBuilds = new Map<string, number | null>()
  const out = events.map((e, i) => {
    const app = apps[i]
    if (app === null || app === undefined) return null
    if (e.type === 'AppCreated') {
      byApp.set(app, e.seq)
      createdApps.set(app, e.seq)
    }
    if (!e.stream.startsWith('build.')) return byApp.get(app) ?? null
    if (!byBuild.has(e.stream)) {
      byBuild.set(e.stream, byApp.get(app) ?? null)
      newBuilds.set(e.stream, byApp.get(app) ?? null)
    }
    return byBuild.get(e.stream) ?? null
  })
  if (createdApps.size > 0) {
    await tx.query(`INSERT INTO incarnations (app, seq) SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT (app) DO UPDATE SET seq = EXCLUDED.seq`, [
      [...createdApps.keys()],
      [...createdApps.values()],
    ])
  }
  if (newBuilds.size > 0) {
    await tx.query(
      `INSERT INTO build_incarnations (stream, incarnation) SELECT * FROM json_to_recordset($1::json) AS b(stream text, incarnation bigint) ON CONFLICT (stream) DO NOTHING`,
      [JSON.stringify(Array.from(newBuilds, ([stream, incarnation]) => ({ stream, incarnation })))],
    )
  }
  return out
}

/** How many events the read model holds (one row each). */
export async function countEvents(db: Queryable): Promise<number> {
  const { rows } = await db.query('SELECT count(*) AS n FROM rm_eventlog.events')
  return Number(rows[0].n)
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
  // An app's events are those of its current incarnation: nothing of an earlier app of the same name.
  if (f.app) where.push(`${appIs(f.app, values)} AND incarnation = (SELECT i.seq FROM rm_eventlog.incarnations i WHERE i.app = $${values.length})`)
  if (f.type) where.push(`type_key = $${values.push(keyOf(f.type))} AND type = $${values.push(f.type)}`)
  if (f.upTo !== undefined) where.push(`seq <= $${values.push(f.upTo)}`)
  if (!user.admin) {
    const me = values.push(user.username)
    where.push(
      `(username = $${me} OR (app IN (${visibleAppsSql(`$${me}`)}) AND incarnation = (SELECT i.seq FROM rm_eventlog.incarnations i WHERE i.app = events.app)))`,
    )
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
        WHERE app_key = $3 AND app = $1 AND incarnation = (SELECT i.seq FROM rm_eventlog.incarnations i WHERE i.app = $1) AND ((type = 'DeployCompleted' AND (data->>'release')::int >= $2) OR (type = 'DeployFailed' AND (data->>'release')::int = $2))
        ORDER BY seq LIMIT 1`,
    [app, release, keyOf(app)],
  )
  return rows[0] as DeployVerdict | undefined
}

/** How many events of an app a trace reads after its chain started (a deploy follows its cause closely). */
const TRACE_AFTER_LIMIT = 5_000
/** How many events of one correlation a trace reads. */
const TRACE_CHAIN_LIMIT = 500

function traceEventOf(r: Record<string, unknown>): TraceEvent {
  return {
    seq: Number(r.seq),
    id: r.id as string,
    type: r.type as string,
    stream: r.stream as string,
    occurredAt: (r.occurred_at as Date).toISOString(),
    correlationId: r.correlation_id as string,
    data: r.data,
  }
}

/**
 * SQL: the event is of `app`, named by `$1`, in its current incarnation (the app's key, an integer,
 * written in: {@link nameKey}).
 */
function current(app: string): string {
  return `app_key = ${keyOf(app)} AND app = $1 AND incarnation = (SELECT i.seq FROM rm_eventlog.incarnations i WHERE i.app = $1)`
}

/** A trace ref: `v12` (a release), a build id, or a correlation id (a push's, a command's request id). */
export const TRACE_REF = /^(v[1-9][0-9]{0,8}|[A-Za-z0-9][A-Za-z0-9:_-]{0,127})$/

/**
 * The causal trace of `ref` in `app` ({@link buildTrace}), read from the event log read model
 * (data redacted as the events API shows it), within the app's current incarnation (nothing of an
 * earlier app of the same name); undefined when no event of it answers to `ref`.
 * The caller checks that the user may read the app.
 */
export async function traceOf(db: Queryable, app: string, ref: string): Promise<Trace | undefined> {
  const cols = 'seq, id, type, stream, occurred_at, correlation_id, data'
  let anchor: Record<string, unknown> | undefined
  let release: number | undefined
  const version = /^v([0-9]+)$/.exec(ref)
  if (version) {
    release = Number(version[1])
    // Within the current incarnation: an app name reused after apps:destroy starts again at v1.
    ;({
      rows: [anchor],
    } = await db.query(
      `SELECT correlation_id FROM rm_eventlog.events WHERE ${current(app)} AND type = 'ReleaseCreated' AND (data->>'version')::int = $2 ORDER BY seq DESC LIMIT 1`,
      [app, release],
    ))
  } else {
    ;({
      rows: [anchor],
    } = await db.query(
      `SELECT correlation_id FROM rm_eventlog.events WHERE ${current(app)} AND (stream = $2 OR correlation_id = $3) ORDER BY (stream = $2) DESC, seq LIMIT 1`,
      [app, `build.${ref}`, ref],
    ))
  }
  if (!anchor) return undefined
  const correlationId = anchor.correlation_id as string
  const { rows: chainRows } = await db.query(
    `SELECT ${cols} FROM rm_eventlog.events WHERE ${current(app)} AND correlation_id = $2 ORDER BY seq, idx LIMIT ${TRACE_CHAIN_LIMIT}`,
    [app, correlationId],
  )
  const chain = chainRows.map(traceEventOf)
  const from = chain[0]?.seq ?? 0
  const [{ rows: afterRows }, { rows: servedRows }, { rows: builtRows }] = [
    await db.query(
      `SELECT ${cols} FROM rm_eventlog.events WHERE ${current(app)} AND type = ANY($2) AND seq > $3 ORDER BY seq, idx LIMIT ${TRACE_AFTER_LIMIT}`,
      [app, AFTER_TYPES, from],
    ),
    await db.query(`SELECT data FROM rm_eventlog.events WHERE ${current(app)} AND type = 'RouteServed' AND seq < $2 ORDER BY seq DESC, idx DESC LIMIT 1`, [
      app,
      from,
    ]),
    await db.query(
      `SELECT data->>'image' AS image FROM rm_eventlog.events WHERE ${current(app)} AND type = 'ReleaseCreated' AND seq < $2 ORDER BY seq DESC, idx DESC LIMIT 1`,
      [app, from],
    ),
  ]
  const served = (servedRows[0]?.data as { servers?: ServedView[] } | undefined)?.servers ?? []
  return buildTrace({
    app,
    correlationId,
    chain,
    ...(release === undefined ? {} : { release }),
    after: afterRows.map(traceEventOf),
    servedBefore: served,
    builtBefore: Boolean(builtRows[0]?.image),
  })
}

/**
 * What the router last recorded as served for `app` (its newest `RouteServed`) and where in the log;
 * nothing served once the app is destroyed (the router records no `RouteServed` for an app gone from
 * its routes); undefined when it recorded nothing for it. The drains of the publishers wait until it
 * no longer lists a container.
 */
export async function lastServed(db: Queryable, app: string): Promise<{ seq: number; servers: ServedView[] } | undefined> {
  const { rows } = await db.query(
    `SELECT seq, type, data FROM rm_eventlog.events WHERE ${current(app)} AND type IN ('RouteServed', 'AppDestroyed') ORDER BY seq DESC, idx DESC LIMIT 1`,
    [app],
  )
  const r = rows[0]
  if (!r) return undefined
  return { seq: Number(r.seq), servers: r.type === 'RouteServed' ? ((r.data as { servers?: ServedView[] }).servers ?? []) : [] }
}

/** What the router last recorded as served, per app (its `RouteServed` events): where a restarted router starts from. */
export async function lastServedSets(db: Queryable): Promise<Map<string, ServedView[]>> {
  const { rows } = await db.query(
    `SELECT DISTINCT ON (e.app) e.app, e.data FROM rm_eventlog.events e JOIN rm_eventlog.incarnations i ON i.app = e.app AND i.seq = e.incarnation
      WHERE e.type_key = ${keyOf('RouteServed')} AND e.type = 'RouteServed' ORDER BY e.app, e.seq DESC, e.idx DESC`,
  )
  return new Map(rows.map((r) => [r.app as string, ((r.data as { servers?: ServedView[] }).servers ?? []) as ServedView[]]))
}

/**
 * The seq of the newest event in [from, to] that occurred at or before `time` (time travel: the log
 * position of a moment), or undefined when the read model has none there (yet). The caller bounds the
 * range, so the scan is short however long the log is.
 */
export async function lastSeqAt(db: Queryable, time: Date, from: number, to: number): Promise<number | undefined> {
  const { rows } = await db.query('SELECT max(seq) AS seq FROM rm_eventlog.events WHERE seq BETWEEN $2 AND $3 AND occurred_at <= $1', [time, from, to])
  return rows[0]?.seq == null ? undefined : Number(rows[0].seq)
}

/** The last deploy outcome of each of `apps` (of the app as it is now, not a former one of the name), by app. */
export async function lastDeploys(
  db: Queryable,
  apps: readonly string[],
): Promise<Map<string, { type: 'DeployCompleted' | 'DeployFailed' | 'DeployStarted'; release: number; at: Date }>> {
  const { rows } = await db.query(
    `SELECT DISTINCT ON (e.app) e.app, e.type, (e.data->>'release')::int AS release, e.occurred_at
       FROM rm_eventlog.events e JOIN rm_eventlog.incarnations i ON i.app = e.app AND e.incarnation = i.seq
      WHERE e.app_key = ANY($2::int[]) AND e.app = ANY($1::text[]) AND e.type IN ('DeployStarted', 'DeployCompleted', 'DeployFailed')
      ORDER BY e.app, e.seq DESC, e.idx DESC`,
    [apps, [...new Set(apps.map(keyOf))]],
  )
  return new Map(rows.map((r) => [r.app as string, { type: r.type, release: r.release as number, at: r.occurred_at as Date }]))
}
