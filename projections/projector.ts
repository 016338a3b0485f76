import pg from 'pg'
import { backoffMs } from '../core/backoff.js'
import { WharfError } from '../core/errors.js'
import { consumers, type ConsumerHealth } from '../core/health.js'
import { createLogger, serviceLogger, withCorrelation, type Logger } from '../core/log.js'
import type { Delivery, EventStore, RecordedEvent, Subscription } from '../events/index.js'
import { microBatches, planBatch, type BatchOptions } from './batch.js'
import {
  CHECKPOINT_CHANNEL,
  CORE_SCHEMA,
  ident,
  PROJECTION_LOCK_CLASS,
  type CheckpointNotice,
  migrateCore,
  notifyCheckpoint,
  readCheckpoints,
  transaction,
  type CheckpointRow,
} from './checkpoints.js'
import { CONTROL_CHANNEL, type ControlNotice } from './hold.js'
import { DeferredStatements } from './deferred.js'
import { checkProjection, durableOf, nextSchemaOf, schemaOf, type Projection } from './projection.js'
import { ApplyError, applyAll, createShadow, replayLog, swapIn } from './replay.js'
import { CheckpointWatcher, type WaitForOptions } from './watcher.js'

/** What a hook is told about the batch in hand. */
export interface BatchInfo {
  projection: string
  /** `live` (subscription) or `replay` (rebuild into the next schema). */
  phase: 'live' | 'replay'
  firstSeq: number
  lastSeq: number
  /** How many of the events the projection handled. */
  applied: number
}

/**
 * Seams for fault injection in tests (the crash test kills the process in them). A hook that throws
 * is treated like a failed transaction: rolled back and retried.
 */
export interface ProjectorHooks {
  /** After the events were applied, before COMMIT. */
  beforeCommit?(info: BatchInfo): void | Promise<void>
  /** After COMMIT, before the deliveries are acked. */
  afterCommit?(info: BatchInfo): void | Promise<void>
}

export interface ProjectorOptions {
  store: EventStore
  pool: pg.Pool
  projections: readonly Projection[]
  /** Root logger; the projector logs as service `projector`. Default: pino on stdout. */
  log?: Logger
  /** Live micro-batching: `maxBatch` default 1000 deliveries, `maxWaitMs` default 20. */
  batch?: BatchOptions
  /** Events per transaction when replaying into a rebuilt read model, default 2000. */
  replayBatch?: number
  /** How long the log holds an unacked delivery before delivering it again, ms, default 30_000. */
  ackWaitMs?: number
  /** How often a projection that another process runs is tried again, ms, default 5_000. */
  standbyRetryMs?: number
  /** First pause before retrying after a database or log error, ms, default 500 (doubles up to 5_000). */
  retryMs?: number
  hooks?: ProjectorHooks
  /** Where each projection's state and lag are reported (`/healthz`), default the process's registry. */
  health?: ConsumerHealth
}

/** Where one projection stands in this process. */
export type RunnerState = 'idle' | 'standby' | 'rebuilding' | 'live' | 'failed' | 'stopped'

/** How soon a checkpoint advanced without a transaction is written to its row, ms. */
const FLUSH_MS = 100

class Runner {
  state: RunnerState = 'idle'
  sub: Subscription | undefined
  loop: Promise<void> | undefined
  rebuilding: Promise<void> | undefined
  stopping = false
  retry: NodeJS.Timeout | undefined
  /** A checkpoint advanced past events this projection does not read, not yet written (see #skipOnly). */
  lazySeq: number | undefined
  /**
   * The checkpoint as this runner last read or wrote it while live (its row is at least this: only
   * its own transactions and the skip-only flush move it, both forward); undefined when not live.
   */
  base: number | undefined
  readonly handles: ReadonlySet<string>
  constructor(readonly p: Projection) {
    this.handles = new Set(p.handles)
  }

  /** Whether `e` may change the read model: of a handled type, and not one it {@link Projection.ignores}. */
  reads(e: RecordedEvent): boolean {
    return this.handles.has(e.type) && !this.p.ignores?.(e)
  }
}

/**
 * Runs projections: each as a durable subscription, micro-batched into one Postgres transaction per
 * batch of whole commits that also advances its checkpoint (the seq of the batch's last commit: the
 * events of one append take effect together), so every event takes effect exactly once even across
 * crashes (a redelivered event at or below the checkpoint is skipped). Each projection is owned by at
 * most one process at a time (a session advisory lock); others stand by and take over when it dies.
 */
export class Projector {
  readonly #o: Required<Omit<ProjectorOptions, 'log' | 'hooks' | 'batch' | 'health'>> & Pick<ProjectorOptions, 'hooks' | 'batch'>
  readonly #health: ConsumerHealth
  /** Getting the lock connection back after it broke (Postgres restarted), with backoff. */
  #reconnecting: Promise<void> | undefined
  readonly #log: Logger
  readonly #runners = new Map<string, Runner>()
  readonly #watcher: CheckpointWatcher
  #lockClient: pg.PoolClient | undefined
  /** Queries on the lock connection, one after another (pg deprecates overlapping queries on a client). */
  #lockQueue: Promise<unknown> = Promise.resolve()
  /** Writes the checkpoints advanced without a transaction (see #skipOnly), within FLUSH_MS. */
  #flushTimer: NodeJS.Timeout | undefined
  #stopped = false

  constructor(opts: ProjectorOptions) {
    for (const p of opts.projections) checkProjection(p)
    const names = opts.projections.map((p) => p.name)
    if (new Set(names).size !== names.length) throw new TypeError(`projection names must be unique: ${names.join(', ')}`)
    this.#o = {
      store: opts.store,
      pool: opts.pool,
      projections: opts.projections,
      replayBatch: opts.replayBatch ?? 2000,
      ackWaitMs: opts.ackWaitMs ?? 30_000,
      standbyRetryMs: opts.standbyRetryMs ?? 5_000,
      retryMs: opts.retryMs ?? 500,
      hooks: opts.hooks,
      batch: opts.batch,
    }
    this.#log = serviceLogger(opts.log ?? createLogger(), 'projector')
    this.#health = opts.health ?? consumers
    for (const p of opts.projections) this.#runners.set(p.name, new Runner(p))
    this.#watcher = new CheckpointWatcher({ pool: opts.pool, projections: names })
  }

  /**
   * Migrates the core tables, then brings every projection it can own up: a new projection, one
   * whose version changed or whose schema is missing is rebuilt from seq 1 first (start resolves
   * after that), a failed one is retried from its checkpoint. Projections owned by another process
   * stand by.
   */
  async start(): Promise<void> {
    await migrateCore(this.#o.pool)
    await this.#connectLock()
    await Promise.all([...this.#runners.values()].map((r) => this.#bringUp(r)))
  }

  /** The session that holds the projections' advisory locks and LISTENs for control notices. */
  async #connectLock(): Promise<void> {
    const client = await this.#o.pool.connect()
    client.on('error', (err) => this.#lockLost(client, err))
    client.on('notification', (msg) => {
      if (msg.channel === CONTROL_CHANNEL && msg.payload) this.#onControl(JSON.parse(msg.payload) as ControlNotice)
    })
    try {
      await client.query(`LISTEN ${CONTROL_CHANNEL}`)
    } catch (err) {
      client.release(err as Error)
      throw err
    }
    this.#lockClient = client
    this.#lockQueue = Promise.resolve()
  }

  /**
   * Ownership ended with the session (Postgres restarted, the connection broke): every projection
   * stops writing at once, since another process may take it over now, and stands by until a new
   * session is had (bounded exponential backoff) and its lock is taken again; then each resumes from
   * its checkpoint, so nothing is skipped and nothing applied twice.
   */
  #lockLost(client: pg.PoolClient, err: Error): void {
    if (this.#lockClient !== client || this.#stopped) return
    this.#lockClient = undefined
    client.release(err)
    this.#log.error({ err }, 'lost the projection lock connection; every projection stands by until Postgres answers again')
    for (const r of this.#runners.values()) if (r.state !== 'standby' && r.state !== 'idle') this.#health.reconnecting(`projection ${r.p.name}`, err)
    this.#reconnecting ??= this.#reconnect().finally(() => (this.#reconnecting = undefined))
  }

  async #reconnect(): Promise<void> {
    await Promise.all(
      [...this.#runners.values()].map(async (r) => {
        await r.rebuilding?.catch(() => {})
        await this.#stopLive(r, 'standby')
      }),
    )
    for (let attempt = 0; !this.#stopped; attempt++) {
      await sleep(backoffMs(attempt, { baseMs: this.#o.retryMs }))
      if (this.#stopped) return
      try {
        await this.#connectLock()
        break
      } catch (err) {
        this.#log.warn({ err, attempt }, 'Postgres does not answer yet; the projections stand by')
      }
    }
    if (this.#stopped) return
    this.#log.info('projection lock connection back; resuming every projection from its checkpoint')
    for (const r of this.#runners.values()) {
      clearTimeout(r.retry)
      if (r.state !== 'failed') r.state = 'standby'
    }
    await Promise.all([...this.#runners.values()].filter((r) => r.state !== 'failed').map((r) => this.#tryBringUp(r)))
  }

  /** {@link #bringUp}, tried again with backoff while the database or the log fails. */
  #tryBringUp(r: Runner, attempt = 0): Promise<void> {
    return this.#bringUp(r).catch((err: unknown) => {
      if (this.#stopped || r.state === 'failed' || !this.#lockClient) return
      this.#health.reconnecting(`projection ${r.p.name}`, err)
      this.#log.error({ err, projection: r.p.name }, 'cannot start projection; trying again')
      clearTimeout(r.retry)
      r.retry = setTimeout(() => void this.#tryBringUp(r, attempt + 1), backoffMs(attempt, { baseMs: this.#o.retryMs }))
      r.retry.unref()
    })
  }

  /** Stops delivery to every projection, after the batches in hand are committed. Read models stay. */
  async stop(): Promise<void> {
    this.#stopped = true
    await Promise.all([...this.#runners.values()].map((r) => this.#stopLive(r, 'stopped')))
    for (const name of this.#runners.keys()) this.#health.remove(`projection ${name}`)
    await Promise.all([...this.#runners.values()].map((r) => r.rebuilding?.catch(() => {})))
    await this.#watcher.close()
    const lock = this.#lockClient
    this.#lockClient = undefined
    if (lock) {
      // Releasing the session's advisory locks lets a standby take over at once.
      await this.#lockQueue
      await lock.query('SELECT pg_advisory_unlock_all()').then(
        () => lock.release(),
        () => lock.release(true),
      )
    }
  }

  /** Where each projection stands in this process. */
  states(): Record<string, RunnerState> {
    return Object.fromEntries([...this.#runners].map(([name, r]) => [name, r.state]))
  }

  /** The checkpoint rows of this projector's projections. */
  checkpoints(): Promise<CheckpointRow[]> {
    return readCheckpoints(this.#o.pool, [...this.#runners.keys()])
  }

  /**
   * Resolves when the named projections (default: all of this projector's) have applied the log up to
   * `seq`. See {@link CheckpointWatcher.waitFor}.
   */
  waitFor(seq: number, opts?: WaitForOptions): Promise<void> {
    return this.#watcher.waitFor(seq, opts)
  }

  /**
   * Rebuilds one read model from seq 1 into `rm_<name>__next` while the live one keeps serving and
   * updating, then swaps them in one transaction and continues live. Resolves after the swap.
   */
  async rebuild(name: string): Promise<void> {
    const r = this.#runners.get(name)
    if (!r) throw new WharfError('WHARF_NOT_FOUND', `no projection ${JSON.stringify(name)}`)
    if (r.rebuilding) return r.rebuilding
    if (r.state === 'standby' || r.state === 'idle' || r.state === 'stopped') {
      throw new WharfError('WHARF_UNAVAILABLE', `projection ${name} is not run by this process (${r.state})`)
    }
    r.rebuilding = this.#rebuildAndGoLive(r).finally(() => (r.rebuilding = undefined))
    return r.rebuilding
  }

  /**
   * `yield` (see hold.ts): stop every projection this process runs, after the batch in hand, and let
   * go of its lock, so that a restore can replace the read models; each stands by and is tried again
   * as usual. `resume`: try the standing-by ones at once.
   */
  #onControl(notice: ControlNotice): void {
    if (this.#stopped) return
    if (notice.op === 'yield') {
      void this.#yieldAll().catch((err) => this.#log.error({ err }, 'could not let go of the projections'))
      return
    }
    for (const r of this.#runners.values()) {
      if (r.state !== 'standby') continue
      clearTimeout(r.retry)
      void this.#tryBringUp(r)
    }
  }

  async #yieldAll(): Promise<void> {
    const owned = [...this.#runners.values()].filter((r) => r.state !== 'standby' && r.state !== 'idle' && r.state !== 'stopped')
    if (owned.length === 0) return
    this.#log.info({ projections: owned.map((r) => r.p.name) }, 'asked to let go of the read models (a restore); standing by')
    await Promise.all(
      owned.map(async (r) => {
        await r.rebuilding?.catch(() => {})
        await this.#stopLive(r, 'standby')
        const lock = this.#lockClient
        if (!lock) return
        const q = this.#lockQueue.then(() => lock.query('SELECT pg_advisory_unlock($1, hashtext($2))', [PROJECTION_LOCK_CLASS, r.p.name]))
        this.#lockQueue = q.catch(() => {})
        await q
        r.state = 'standby'
        clearTimeout(r.retry)
        this.#health.remove(`projection ${r.p.name}`)
        r.retry = setTimeout(() => void this.#tryBringUp(r), this.#o.standbyRetryMs)
        r.retry.unref()
      }),
    )
  }

  async #bringUp(r: Runner): Promise<void> {
    const { p } = r
    const lock = this.#lockClient
    if (this.#stopped || !lock) return
    const q = this.#lockQueue.then(() => lock.query('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [PROJECTION_LOCK_CLASS, p.name]))
    this.#lockQueue = q.catch(() => {})
    const { rows } = await q
    if (!rows[0].ok) {
      if (r.state !== 'standby') this.#log.info({ projection: p.name }, 'projection is run by another process; standing by')
      r.state = 'standby'
      this.#health.remove(`projection ${p.name}`)
      r.retry = setTimeout(() => void this.#tryBringUp(r), this.#o.standbyRetryMs)
      r.retry.unref()
      return
    }
    const [row] = await readCheckpoints(this.#o.pool, [p.name])
    const { rows: ns } = await this.#o.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schemaOf(p.name)])
    if (!row || row.version !== p.version || ns.length === 0) {
      this.#log.info({ projection: p.name, version: p.version, stored: row?.version ?? null }, 'building read model from seq 1')
      r.rebuilding = this.#rebuildAndGoLive(r).finally(() => (r.rebuilding = undefined))
      await r.rebuilding.catch((err: unknown) => {
        if (r.state !== 'failed') throw err
      })
      return
    }
    if (row.status !== 'running') {
      this.#log.info({ projection: p.name, seq: row.seq, status: row.status }, 'resuming projection from its checkpoint')
      await this.#o.pool.query(
        `UPDATE ${CORE_SCHEMA}.projection_checkpoints SET status = 'running', error = NULL, error_seq = NULL, updated_at = now() WHERE name = $1`,
        [p.name],
      )
    }
    await this.#goLive(r, row.seq)
  }

  // ---- live ----

  /** Subscribes after `checkpoint`; `resume`: from inside the consume loop, which a stop may have ended meanwhile. */
  async #goLive(r: Runner, checkpoint: number, resume = false): Promise<void> {
    if (this.#stopped) return
    if (!resume) r.stopping = false
    // Commits it does not read come undecoded (their seq only): most of the log, for most read models.
    const sub = await this.#o.store.subscribe(durableOf(r.p), { fromSeq: checkpoint + 1, reset: true, ackWaitMs: this.#o.ackWaitMs, types: r.handles })
    if (r.stopping) {
      await sub.close().catch(() => {})
      return
    }
    r.sub = sub
    r.state = 'live'
    r.base = checkpoint
    this.#health.register(`projection ${r.p.name}`, checkpoint)
    r.loop = this.#consume(r, sub)
  }

  async #consume(r: Runner, sub: Subscription): Promise<void> {
    let resubscribe = false
    try {
      for await (const batch of microBatches(sub, this.#o.batch)) {
        this.#health.saw(`projection ${r.p.name}`, batch[0]!.event.seq)
        if (!(await this.#commitLive(r, batch))) break
      }
    } catch (err) {
      if (!r.stopping) {
        this.#log.error({ err, projection: r.p.name }, 'subscription failed; subscribing again')
        this.#health.reconnecting(`projection ${r.p.name}`, err)
        resubscribe = true
      }
    } finally {
      await sub.close().catch(() => {})
    }
    // NATS or Postgres may be down for a while: try again with backoff from the checkpoint in Postgres.
    for (let attempt = 0; resubscribe && !r.stopping && !this.#stopped; attempt++) {
      await sleep(backoffMs(attempt, { baseMs: this.#o.retryMs }))
      if (r.stopping || this.#stopped) return
      try {
        const [row] = await readCheckpoints(this.#o.pool, [r.p.name])
        if (!row) throw new Error(`no checkpoint row for projection ${r.p.name}`)
        await this.#goLive(r, row.seq, true)
        return
      } catch (err) {
        this.#health.reconnecting(`projection ${r.p.name}`, err)
        this.#log.warn({ err, projection: r.p.name, attempt }, 'cannot subscribe yet; trying again')
      }
    }
  }

  /** Commits one batch and acks it; false when the projection must stop (failed or stopping). */
  async #commitLive(r: Runner, batch: Delivery[]): Promise<boolean> {
    const events = batch.map((d) => d.event)
    if (!events.some((e) => r.reads(e))) return this.#skipOnly(r, batch)
    for (let attempt = 0; ; attempt++) {
      if (r.stopping) return false
      try {
        const outcome = await this.#liveTx(r, events)
        if (outcome.failed) {
          await this.#ackUpTo(r, batch, outcome.checkpoint)
          this.#fail(r, outcome.failed)
          return false
        }
        await this.#ackUpTo(r, batch, outcome.checkpoint)
        r.base = outcome.checkpoint
        this.#health.progress(`projection ${r.p.name}`, outcome.checkpoint)
        return true
      } catch (err) {
        this.#health.reconnecting(`projection ${r.p.name}`, err)
        const pause = backoffMs(attempt, { baseMs: this.#o.retryMs })
        this.#log.warn({ err, projection: r.p.name, firstSeq: events[0]?.seq, lastSeq: events.at(-1)?.seq, retryInMs: pause }, 'batch not committed; retrying')
        await sleep(pause)
      }
    }
  }

  /**
   * A batch of events this projection does not read (or {@link Projection.ignores}) changes nothing in its tables, so it needs no
   * transaction and no query at all: the checkpoint advances in memory and is written (and
   * announced) within FLUSH_MS, coalesced with later such batches, or by the next real transaction,
   * which writes a higher checkpoint anyway. A crash before the write only means these events are
   * delivered again and skipped again. With ten read models of which a command touches two or
   * three, this is most of the projector's work. A `waitFor` naming a read model that does not read
   * the awaited events resolves within FLUSH_MS; commands name the read models their events change.
   */
  async #skipOnly(r: Runner, batch: Delivery[]): Promise<boolean> {
    const seq = batch.at(-1)!.event.seq
    r.lazySeq = Math.max(r.lazySeq ?? 0, seq)
    this.#flushTimer ??= setTimeout(() => void this.#flushLazy(), FLUSH_MS)
    await this.#ackUpTo(r, batch, seq)
    this.#health.progress(`projection ${r.p.name}`, seq)
    return true
  }

  /**
   * Writes the checkpoints that #skipOnly advanced (of every projection with one pending: one
   * statement, not one per read model), each unless a transaction has written a higher one.
   */
  async #flushLazy(): Promise<void> {
    clearTimeout(this.#flushTimer)
    this.#flushTimer = undefined
    const due = [...this.#runners.values()].flatMap((r) => (r.lazySeq === undefined ? [] : [{ name: r.p.name, seq: r.lazySeq }]))
    if (due.length === 0) return
    for (const r of this.#runners.values()) r.lazySeq = undefined
    const notices = due.map((d): CheckpointNotice => ({ name: d.name, seq: d.seq, status: 'running' }))
    // Checkpoints that need no flush of the WAL either (see #begin): lost in a crash, they are written again.
    const lit = pg.escapeLiteral
    await this.#o.pool
      .query(
        `BEGIN; SET LOCAL synchronous_commit TO off;
         UPDATE ${CORE_SCHEMA}.projection_checkpoints c SET seq = d.seq, updated_at = now()
           FROM (VALUES ${due.map((d) => `(${lit(d.name)}, ${Number(d.seq)})`).join(', ')}) AS d(name, seq)
          WHERE c.name = d.name AND c.seq < d.seq AND c.status = 'running';
         SELECT pg_notify(${lit(CHECKPOINT_CHANNEL)}, n) FROM unnest(ARRAY[${notices.map((n) => lit(JSON.stringify(n))).join(', ')}]) AS n; COMMIT`,
      )
      // Not written: the events are delivered again after a restart and skipped again.
      .catch((err: unknown) => this.#log.warn({ err, checkpoints: due }, 'checkpoints not written'))
  }

  /** Acks the last delivery at or below `checkpoint` (and so every earlier one). */
  async #ackUpTo(r: Runner, batch: Delivery[], checkpoint: number): Promise<void> {
    const last = batch.findLast((d) => d.event.seq <= checkpoint)
    if (!last) return
    // A lost ack only means a redelivery, which the checkpoint then skips.
    await last.ack().catch((err: unknown) => this.#log.warn({ err, projection: r.p.name, seq: last.event.seq }, 'ack failed'))
  }

  /**
   * One transaction: lock the checkpoint row, skip what it already covers, apply the rest, advance
   * it and notify. When the projection throws, the batch is rolled back and replayed one event at a
   * time to commit what precedes the event at fault and record the failure.
   */
  async #liveTx(r: Runner, events: RecordedEvent[]): Promise<{ checkpoint: number; failed?: ApplyError }> {
    const { p } = r
    const client = await this.#o.pool.connect()
    let broken: unknown
    try {
      if (p.writesOnly && r.base !== undefined) {
        const done = await this.#oneTrip(r, client, events, r.base)
        if (done) return done
      }
      // Round trips are most of a small batch's cost: BEGIN, the SETs and the checkpoint's lock go in
      // one simple query, the checkpoint's update and COMMIT in another.
      const checkpoint = await this.#begin(client, p.name)
      const plan = planBatch(events, checkpoint, r.handles)
      if (plan.checkpoint === checkpoint) {
        await client.query('ROLLBACK')
        return { checkpoint }
      }
      const info: BatchInfo = { projection: p.name, phase: 'live', firstSeq: checkpoint + 1, lastSeq: plan.checkpoint, applied: plan.apply.length }
      // A read model that only writes: its statements go with the checkpoint and COMMIT (one round trip less).
      const deferred = p.writesOnly ? new DeferredStatements() : undefined
      try {
        await applyAll(p, plan.apply, deferred?.client ?? client)
      } catch (err) {
        await client.query('ROLLBACK')
        return await this.#locateFailure(r, client, events, err)
      }
      await this.#o.hooks?.beforeCommit?.(info)
      if (deferred) {
        try {
          await this.#setCheckpointAndCommit(client, p.name, plan.checkpoint, deferred.sql())
        } catch (err) {
          // A statement the database refused (an SQL error, not a lost connection): found event by event.
          if (!(err instanceof Error) || isConnectionError(err)) throw err
          await client.query('ROLLBACK')
          return await this.#locateFailure(r, client, events, err)
        }
      } else await this.#setCheckpointAndCommit(client, p.name, plan.checkpoint)
      await this.#o.hooks?.afterCommit?.(info)
      return { checkpoint: plan.checkpoint }
    } catch (err) {
      broken = err
      await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      client.release(broken instanceof Error && isConnectionError(broken) ? broken : undefined)
    }
  }

  /**
   * A writes-only read model's batch in one round trip, planned on the checkpoint this runner knows
   * (`base`): BEGIN, a check that the row is where it may be (at least `base`, and short of the first
   * event to apply), the statements, the checkpoint's update and COMMIT. Undefined when it did not
   * commit (the check failed, or a statement or `apply` threw): the batch then goes the usual way,
   * which reads the checkpoint first and finds the event at fault.
   */
  async #oneTrip(r: Runner, client: pg.PoolClient, events: RecordedEvent[], base: number): Promise<{ checkpoint: number } | undefined> {
    const { p } = r
    const plan = planBatch(events, base, r.handles)
    const first = plan.apply[0]?.seq
    if (first === undefined) return undefined
    const deferred = new DeferredStatements()
    try {
      await applyAll(p, plan.apply, deferred.client)
    } catch {
      return undefined
    }
    await this.#o.hooks?.beforeCommit?.({ projection: p.name, phase: 'live', firstSeq: base + 1, lastSeq: plan.checkpoint, applied: plan.apply.length })
    const notice: CheckpointNotice = { name: p.name, seq: plan.checkpoint, status: 'running' }
    const name = pg.escapeLiteral(p.name)
    try {
      // A division by zero when the row is not where it may be (or missing): nothing of it is written.
      await client.query(
        `BEGIN; SET LOCAL search_path TO ${ident(schemaOf(p.name))}; SET LOCAL synchronous_commit TO off;
         SELECT 1 / (CASE WHEN (SELECT seq FROM ${CORE_SCHEMA}.projection_checkpoints WHERE name = ${name} FOR UPDATE) BETWEEN ${Number(base)} AND ${Number(first) - 1} THEN 1 ELSE 0 END);
         ${deferred.sql()}WITH u AS (UPDATE ${CORE_SCHEMA}.projection_checkpoints SET seq = ${Number(plan.checkpoint)}, updated_at = now() WHERE name = ${name})
         SELECT pg_notify(${pg.escapeLiteral(CHECKPOINT_CHANNEL)}, ${pg.escapeLiteral(JSON.stringify(notice))}); COMMIT`,
      )
    } catch (err) {
      if (!(err instanceof Error) || isConnectionError(err)) throw err
      await client.query('ROLLBACK')
      return undefined
    }
    await this.#o.hooks?.afterCommit?.({ projection: p.name, phase: 'live', firstSeq: base + 1, lastSeq: plan.checkpoint, applied: plan.apply.length })
    return { checkpoint: plan.checkpoint }
  }

  /**
   * Applies commit by commit (the events of one append), each behind a savepoint, committing up to the
   * commit whose event throws: a commit takes effect whole or not at all, and the checkpoint (a commit's seq) never stops inside one.
   */
  async #locateFailure(r: Runner, client: pg.PoolClient, events: RecordedEvent[], batchErr: unknown): Promise<{ checkpoint: number; failed?: ApplyError }> {
    const { p } = r
    await client.query('BEGIN')
    const checkpoint = await this.#lockCheckpoint(client, p.name)
    await client.query(`SET LOCAL search_path TO ${ident(schemaOf(p.name))}`)
    let good = checkpoint
    let failed: ApplyError | undefined
    for (let i = 0; i < events.length && !failed; ) {
      const seq = events[i]!.seq
      let end = i
      while (end < events.length && events[end]!.seq === seq) end++
      const commit = events.slice(i, end).filter((e) => r.handles.has(e.type))
      i = end
      if (seq <= good) continue
      if (commit.length > 0) {
        await client.query('SAVEPOINT one')
        for (const e of commit) {
          try {
            await p.apply(e, client)
          } catch (err) {
            failed = new ApplyError(e, err)
            break
          }
        }
        await client.query(failed ? 'ROLLBACK TO SAVEPOINT one' : 'RELEASE SAVEPOINT one')
        if (failed) break
      }
      good = seq
    }
    if (!failed) {
      // applyBatch disagrees with apply, the reference: keep apply's result and say so.
      this.#log.warn({ err: batchErr, projection: p.name }, 'applyBatch threw where apply did not; committed event by event')
      await this.#setCheckpoint(client, p.name, good)
    } else {
      await client.query(
        `UPDATE ${CORE_SCHEMA}.projection_checkpoints SET seq = $2, status = 'failed', error = $3, error_seq = $4, updated_at = now() WHERE name = $1`,
        [p.name, good, failed.message, failed.event.seq],
      )
      await notifyCheckpoint(client, { name: p.name, seq: good, status: 'failed' })
    }
    await client.query('COMMIT')
    return failed ? { checkpoint: good, failed } : { checkpoint: good }
  }

  #fail(r: Runner, failure: ApplyError): void {
    r.state = 'failed'
    this.#health.stopped(`projection ${r.p.name}`, `failed at seq ${failure.event.seq}: ${failure.message}`)
    const e = failure.event
    withCorrelation(this.#log, e.correlationId).error(
      { err: failure.cause, projection: r.p.name, seq: e.seq, eventType: e.type, eventId: e.id },
      `projection ${r.p.name} failed at seq ${e.seq}; stopped`,
    )
  }

  /**
   * Begins a live batch's transaction in `name`'s schema and locks its checkpoint row: one round trip.
   * The transaction commits asynchronously (`synchronous_commit off`): a read model is derived data
   * whose checkpoint is in the same transaction, so a commit that a Postgres crash loses (at most
   * ~3 x `wal_writer_delay`) only takes the read model and its checkpoint back together; the projector
   * (which loses its lock connection with that crash) subscribes again from the checkpoint and applies
   * those events again. The commit waits for no WAL flush, and readers see it as soon as it is made.
   */
  async #begin(client: pg.PoolClient, name: string): Promise<number> {
    const results = (await client.query(
      `BEGIN; SET LOCAL search_path TO ${ident(schemaOf(name))}; SET LOCAL synchronous_commit TO off;
       SELECT seq FROM ${CORE_SCHEMA}.projection_checkpoints WHERE name = ${pg.escapeLiteral(name)} FOR UPDATE`,
    )) as unknown as pg.QueryResult[]
    const row = results.at(-1)?.rows[0]
    if (!row) throw new Error(`no checkpoint row for projection ${name}`)
    return Number(row.seq)
  }

  /** {@link #setCheckpoint} and COMMIT in one round trip, after `statements` (a batch's, see {@link DeferredStatements}). */
  async #setCheckpointAndCommit(client: pg.PoolClient, name: string, seq: number, statements = ''): Promise<void> {
    const notice: CheckpointNotice = { name, seq, status: 'running' }
    await client.query(
      `${statements}WITH u AS (UPDATE ${CORE_SCHEMA}.projection_checkpoints SET seq = ${Number(seq)}, updated_at = now() WHERE name = ${pg.escapeLiteral(name)})
       SELECT pg_notify(${pg.escapeLiteral(CHECKPOINT_CHANNEL)}, ${pg.escapeLiteral(JSON.stringify(notice))}); COMMIT`,
    )
  }

  async #lockCheckpoint(client: pg.PoolClient, name: string): Promise<number> {
    const { rows } = await client.query(`SELECT seq FROM ${CORE_SCHEMA}.projection_checkpoints WHERE name = $1 FOR UPDATE`, [name])
    if (!rows[0]) throw new Error(`no checkpoint row for projection ${name}`)
    return Number(rows[0].seq)
  }

  async #setCheckpoint(client: pg.PoolClient, name: string, seq: number): Promise<void> {
    const notice: CheckpointNotice = { name, seq, status: 'running' }
    await client.query(
      `WITH u AS (UPDATE ${CORE_SCHEMA}.projection_checkpoints SET seq = $2, updated_at = now() WHERE name = $1)
       SELECT pg_notify($3, $4)`,
      [name, seq, CHECKPOINT_CHANNEL, JSON.stringify(notice)],
    )
  }

  async #stopLive(r: Runner, next: RunnerState): Promise<void> {
    clearTimeout(r.retry)
    r.stopping = true
    await r.sub?.close().catch(() => {})
    await r.loop
    await this.#flushLazy()
    r.base = undefined
    r.sub = undefined
    r.loop = undefined
    if (r.state !== 'failed' || next === 'stopped') r.state = next
  }

  // ---- rebuild ----

  /**
   * Replays the whole log into the next schema in passes while the live model keeps going, stops
   * live for a last short pass, swaps, and goes live after the swap's checkpoint. The swap's
   * checkpoint is at least the live one, so a reader that waited for a seq still finds it.
   */
  async #rebuildAndGoLive(r: Runner): Promise<void> {
    const { p } = r
    const next = nextSchemaOf(p.name)
    const wasLive = r.state === 'live'
    const oldVersion = (await readCheckpoints(this.#o.pool, [p.name]))[0]?.version
    if (!wasLive) r.state = 'rebuilding'
    await this.#o.pool.query(
      `INSERT INTO ${CORE_SCHEMA}.projection_checkpoints (name, version, seq, status) VALUES ($1, $2, 0, 'rebuilding')
       ON CONFLICT (name) DO UPDATE SET status = CASE WHEN $3 THEN projection_checkpoints.status ELSE 'rebuilding' END, updated_at = now()`,
      [p.name, p.version, wasLive],
    )
    const started = Date.now()
    let last = 0
    try {
      await this.#createNext(p)
      for (let pass = 0; pass < 5; pass++) {
        const before = last
        last = await this.#replay(r, next, last + 1)
        // Close enough to the end: the pass with live stopped will be short.
        if (!wasLive || last - before < this.#o.replayBatch) break
      }
      if (wasLive) await this.#stopLive(r, 'rebuilding')
      last = await this.#replay(r, next, last + 1)
      await this.#swap(p, last)
    } catch (err) {
      await this.#o.pool.query(`DROP SCHEMA IF EXISTS ${ident(next)} CASCADE`).catch(() => {})
      if (err instanceof ApplyError) {
        withCorrelation(this.#log, err.event.correlationId).error(
          { err: err.cause, projection: p.name, seq: err.event.seq, eventType: err.event.type, eventId: err.event.id },
          `projection ${p.name} failed at seq ${err.event.seq} during rebuild`,
        )
      } else {
        this.#log.error({ err, projection: p.name }, 'rebuild failed')
      }
      if (wasLive) {
        // The old read model is intact: keep it live.
        const [row] = await readCheckpoints(this.#o.pool, [p.name])
        if (r.state !== 'live' && row) await this.#goLive(r, row.seq)
      } else {
        // An event that cannot be applied stops it; a database or log that failed is tried again.
        r.state = err instanceof ApplyError ? 'failed' : 'standby'
        const msg = err instanceof Error ? err.message : String(err)
        if (err instanceof ApplyError) this.#health.stopped(`projection ${p.name}`, `rebuild failed at seq ${err.event.seq}: ${msg}`)
        await this.#o.pool
          .query(`UPDATE ${CORE_SCHEMA}.projection_checkpoints SET status = 'failed', error = $2, error_seq = $3, updated_at = now() WHERE name = $1`, [
            p.name,
            `rebuild: ${msg}`,
            err instanceof ApplyError ? err.event.seq : null,
          ])
          .catch(() => {})
      }
      throw err
    }
    this.#log.info({ projection: p.name, version: p.version, seq: last, ms: Date.now() - started }, 'read model rebuilt and swapped in')
    if (oldVersion !== undefined && oldVersion !== p.version) {
      await this.#o.store.deleteSubscription(durableOf({ name: p.name, version: oldVersion })).catch(() => {})
    }
    await this.#goLive(r, last)
  }

  async #createNext(p: Projection): Promise<void> {
    await createShadow(this.#o.pool, p, nextSchemaOf(p.name))
  }

  /**
   * Applies every event from `fromSeq` to the end of the log (as of the call) into `schema`, in
   * transactions of `replayBatch` events (see {@link replayLog}). Returns the last seq read
   * (`fromSeq - 1` when none).
   */
  async #replay(r: Runner, schema: string, fromSeq: number): Promise<number> {
    const { p } = r
    const hooks = this.#o.hooks
    const info = (firstSeq: number, lastSeq: number, applied: number): BatchInfo => ({ projection: p.name, phase: 'replay', firstSeq, lastSeq, applied })
    return replayLog({
      store: this.#o.store,
      pool: this.#o.pool,
      targets: [
        {
          p,
          schema,
          ...(hooks?.beforeCommit ? { beforeCommit: (a: number, b: number, n: number) => hooks.beforeCommit!(info(a, b, n)) } : {}),
          ...(hooks?.afterCommit ? { afterCommit: (a: number, b: number, n: number) => hooks.afterCommit!(info(a, b, n)) } : {}),
        },
      ],
      fromSeq,
      batch: this.#o.replayBatch,
      stopped: () => this.#stopped,
    })
  }

  async #swap(p: Projection, seq: number): Promise<void> {
    await transaction(this.#o.pool, (client) => swapIn(client, p, nextSchemaOf(p.name), seq))
  }
}

function isConnectionError(err: Error): boolean {
  // pg reports a dead connection without a SQLSTATE; an SQL error has one (`code`).
  return !('code' in err) || typeof (err as { code?: unknown }).code !== 'string'
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
