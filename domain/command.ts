/**
 * The command handler (emmett's): the one way to append to a stream that has a decider. It is the
 * I/O edge of the domain layer: it reads the stream, appends with the version the decision was made on,
 * and waits for the read models, so it is the one file of domain/ that imports the log's store and the
 * projections' checkpoint watcher.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { ConcurrencyError, WharfError } from '../core/errors.js'
import type { EventContext, EventStore, NewEvent, RecordedEvent } from '../events/index.js'
import type { Decider } from './decider.js'
import { waitFor } from '../projections/index.js'

export type { Decider } from './decider.js'
export { fold } from './decider.js'

/** How many times a command is decided again after the stream moved under it. */
const MAX_ATTEMPTS = 12
/** After the first two immediate retries, a random pause of up to this many ms times the attempt. */
const BACKOFF_MS = 5
/** Streams whose folded state is kept, per decider (least recently used go first). */
const CACHE_SIZE = 5_000

export interface CommandResult<S> {
  /** The events the decision appended (none when it decided nothing needs to change). */
  events: NewEvent[]
  /** The stream's version after the command. */
  version: number
  /** The state the decision was made on (before the new events). */
  state: S
}

interface Folded<S> {
  version: number
  state: S
}

/**
 * Each stream's state as last folded here, per decider. Only a shortcut: it is checked against the
 * stream's version (one cheap look-up) before every decision, and brought up to date by reading
 * just the events after it, so writers in other processes are never missed.
 */
const folded = new WeakMap<EventStore, WeakMap<Decider<any, any>, Map<string, Folded<any>>>>()
/** Commands on one stream in this process take turns, so they do not conflict with each other. */
const turns = new WeakMap<EventStore, Map<string, Promise<unknown>>>()

function cacheOf<S>(store: EventStore, decider: Decider<S, any>): Map<string, Folded<S>> {
  let byDecider = folded.get(store)
  if (!byDecider) folded.set(store, (byDecider = new WeakMap()))
  let m = byDecider.get(decider)
  if (!m) byDecider.set(decider, (m = new Map()))
  return m
}

function foldOn<S>(decider: Decider<S, any>, from: Folded<S>, events: readonly RecordedEvent[]): Folded<S> {
  let { state, version } = from
  for (const e of events) {
    state = decider.evolve(state, e)
    version = e.seq
  }
  return { state, version }
}

/** The stream's current state: the cached fold if still current, else caught up (or read whole). */
async function current<S>(store: EventStore, decider: Decider<S, any>, stream: string): Promise<Folded<S>> {
  const cache = cacheOf(store, decider)
  const cached = cache.get(stream)
  const version = cached ? await store.streamVersion(stream) : undefined
  let now: Folded<S>
  if (cached && version === cached.version) now = cached
  else if (cached && version !== undefined && version > cached.version)
    now = foldOn(decider, cached, (await store.readStream(stream, { fromSeq: cached.version + 1 })).events)
  else now = foldOn(decider, { state: decider.initialState(), version: 0 }, (await store.readStream(stream)).events)
  cache.delete(stream)
  cache.set(stream, now)
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value!)
  return now
}

/** Runs `fn` after every earlier turn on `key` of `store` in this process has finished. */
async function inTurn<T>(store: EventStore, key: string, fn: () => Promise<T>): Promise<T> {
  let queue = turns.get(store)
  if (!queue) turns.set(store, (queue = new Map()))
  const before = queue.get(key) ?? Promise.resolve()
  const mine = before.then(fn, fn)
  const settled = mine.then(
    () => {},
    () => {},
  )
  queue.set(key, settled)
  try {
    return await mine
  } finally {
    if (queue.get(key) === settled) queue.delete(key)
  }
}

/**
 * The stream's current state and version as {@link runCommand} folds them (from its cache, caught up),
 * for a writer that looks before it asks (a scheduler resuming a deploy, a publisher reconciling).
 * Takes its turn with the commands on the stream in this process.
 */
export function readState<S>(store: EventStore, decider: Decider<S, any>, stream: string): Promise<{ state: S; version: number }> {
  return inTurn(store, stream, () => current(store, decider, stream))
}

/**
 * Decides `command` on `stream`'s current state and appends the events with the version the
 * decision was made on. Commands on one stream in this process take turns; a writer elsewhere
 * that got in first (ConcurrencyError) means deciding again on the new state, up to 12 times with a
 * small random pause after two, then `WHARF_CONFLICT`. After the append (outside the turn) it waits
 * until the read models in `waitFor` (default: all) include the events, so the caller's next query
 * sees them (read your writes). `waitFor: []` does not wait (writers that never read a read model
 * right after, such as the builder, scheduler and publisher); only then may `deps.pool` be left out.
 */
export async function runCommand<S, C>(
  deps: { store: EventStore; pool?: pg.Pool },
  opts: {
    stream: string
    decider: Decider<S, C>
    command: C
    ctx: EventContext
    waitFor?: string[]
    timeoutMs?: number
    /** Told the time of each step, ms: `turn` (the commands before it on the stream), `decide`, `append`, `readmodels`. */
    timed?: (step: 'turn' | 'decide' | 'append' | 'readmodels', ms: number) => void
  },
): Promise<CommandResult<S>> {
  const pool = deps.pool
  if (!pool && opts.waitFor?.length !== 0) throw new Error('runCommand: waiting for read models needs a pool (or waitFor: [])')
  const wait = { ...(opts.waitFor ? { projections: opts.waitFor } : {}), ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) }
  const cache = cacheOf(deps.store, opts.decider)
  let lastErr: unknown
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt >= 2) await sleep(Math.random() * BACKOFF_MS * attempt)
    const queued = performance.now()
    const outcome = await inTurn(deps.store, opts.stream, async () => {
      const t0 = performance.now()
      opts.timed?.('turn', t0 - queued)
      const { state, version } = await current(deps.store, opts.decider, opts.stream)
      const events = opts.decider.decide(opts.command, state)
      const t1 = performance.now()
      opts.timed?.('decide', t1 - t0)
      if (events.length === 0) return { events, version, state }
      try {
        const res = await deps.store.append(opts.stream, events, { ...opts.ctx, expectedVersion: version })
        opts.timed?.('append', performance.now() - t1)
        cache.set(opts.stream, foldOn(opts.decider, { state, version }, res.events))
        return { events, version: res.lastSeq, state }
      } catch (err) {
        if (!(err instanceof ConcurrencyError)) throw err
        lastErr = err
        return undefined
      }
    })
    if (outcome) {
      // Nothing new can also mean an earlier attempt of this same command wrote it (a retry after a
      // partial append): the answer must include what the stream holds either way.
      if (pool && opts.waitFor?.length !== 0) {
        const t0 = performance.now()
        await waitFor(pool, outcome.version, wait)
        opts.timed?.('readmodels', performance.now() - t0)
      }
      return outcome
    }
  }
  throw new WharfError('WHARF_CONFLICT', `${opts.stream} kept changing while the command was decided; try again`, { cause: lastErr })
}
