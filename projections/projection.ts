import type pg from 'pg'
import type { RecordedEvent } from '../events/index.js'

/**
 * A read model built from the event log. The projector gives it a Postgres schema of its own
 * (`rm_<name>`), creates `tables` there, and calls `apply` (or `applyBatch`) inside a transaction whose
 * `search_path` is that schema, so SQL in a projection names its tables unqualified. Events whose
 * type is not in `handles` are never passed to it (they still advance its checkpoint).
 *
 * Changing `tables` or what `apply` does to existing rows means bumping `version`: the projector
 * then rebuilds the read model from sequence 1 and swaps it in.
 */
export interface Projection {
  /** `[a-z][a-z0-9_]*`, at most 50 characters: the schema is `rm_<name>`, the durable `proj-<name>-v<version>`. */
  readonly name: string
  /** A positive integer; a change triggers a rebuild on the next start. */
  readonly version: number
  /** Event types this projection reads. */
  readonly handles: readonly string[]
  /** DDL that creates the tables, with unqualified names; run once in a fresh, empty schema. */
  readonly tables: string
  /** Applies one event. Throwing stops the projection at this event (it is neither skipped nor acked). */
  apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void>
  /**
   * Applies many events at once, in log order, when set-based SQL is faster than one statement per
   * event (replay). Must have the same effect as calling `apply` on each in order. When it throws,
   * the projector retries the batch event by event with `apply` to find the event at fault.
   */
  applyBatch?(events: RecordedEvent[], tx: pg.PoolClient): Promise<void>
  /**
   * Events of a handled type that change nothing in this read model (for builds, a `ReleaseCreated`
   * that names no build): a live batch of only such events advances the checkpoint as one of
   * unhandled types does, with no transaction. Must agree with `apply` (they are no-ops to it).
   * Default: none.
   */
  ignores?(event: RecordedEvent): boolean
  /**
   * `apply` and `applyBatch` only write: they read no result of their queries (which then answer no
   * rows), and their SQL has no `$n` inside a quoted string. The projector then sends a live batch's
   * statements, their parameters as literals, with the checkpoint's update and COMMIT in one round
   * trip, instead of one round trip each. Default: false.
   */
  readonly writesOnly?: boolean
  /**
   * For a rebuild into empty tables (`wharf admin:replay`'s pass from seq 1 into fresh shadow tables):
   * a fold that keeps the read model's rows in memory from batch to batch and writes them once at the
   * end, instead of reading and writing back the rows each batch touches. The rows written must be
   * those `apply` on each event would leave.
   */
  bulk?(): BulkFold
}

/** See {@link Projection.bulk}. */
export interface BulkFold {
  /** Applies events, in log order, to the rows in memory. */
  apply(events: RecordedEvent[]): void
  /**
   * Optional: writes the rows gathered since the last call (the event log's, which are only
   * appended; releases', whose rows a later event may only delete, which the next call does), so
   * that they are not held, nor written, at the end; called after each batch of the replay (inside
   * `tx`, search_path set), in order, never twice at once.
   */
  flush?(tx: pg.PoolClient): Promise<void>
  /** Writes the rows into the projection's tables, empty until then but for what `flush` wrote (inside `tx`, search_path set). */
  write(tx: pg.PoolClient): Promise<void>
}

/**
 * Marks an index in a projection's `tables` that a replay does not defer to after its load
 * (`createShadow` in replay.ts): a partial index over few of a large table's rows (the event log's
 * users'), kept up while loading for next to nothing, where a build after the load reads the whole
 * table once more.
 */
export const BUILT_WHILE_LOADING = '/* built while loading */'

/** What a read model's queries run on: the pool, or a client inside a transaction (one snapshot). */
export type Queryable = pg.Pool | pg.PoolClient

const NAME = /^[a-z][a-z0-9_]{0,49}$/

/** Throws a TypeError unless `p` has a usable name, version and handles. */
export function checkProjection(p: Projection): void {
  if (!NAME.test(p.name)) throw new TypeError(`projection name ${JSON.stringify(p.name)} must match ${NAME}`)
  if (!Number.isSafeInteger(p.version) || p.version < 1) throw new TypeError(`projection ${p.name}: version must be a positive integer`)
  if (p.handles.length === 0) throw new TypeError(`projection ${p.name}: handles no event type`)
}

/** The Postgres schema that holds a projection's live tables. */
export function schemaOf(name: string): string {
  return `rm_${name}`
}

/** The schema a rebuild fills before it is swapped in. */
export function nextSchemaOf(name: string): string {
  return `rm_${name}__next`
}

/** The durable subscription a projection version reads from. */
export function durableOf(p: Pick<Projection, 'name' | 'version'>): string {
  return `proj-${p.name}-v${p.version}`
}

/**
 * The `default` of a projection's exhaustive switch: a type in `handles` that `apply` has no case
 * for fails to compile, and if one reaches it anyway the projection stops there (it never skips).
 */
export function unhandled(projection: string, e: never): never {
  throw new Error(`${projection} projection cannot apply ${(e as RecordedEvent).type}`)
}
