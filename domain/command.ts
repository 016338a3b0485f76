/**
 * The command handler (emmett's): the one way to append to a stream that has a decider. It is the
 * I/O edge of the domain layer: it reads the stream, appends with the version the decision was made on,
 * and waits for the read models, so it is the one file of domain/ that imports the log's store and the
 * projections' checkpoint watcher.
 */
import { Turns } from '../core/turns.js'
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { ConcurrencyError, WharfError } from '../core/errors.js'
import { newEventId, type EventContext, type EventStore, type NewEvent, type RecordedEvent } from '../events/index.js'
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
/** Most commands of one stream decided together and appended as one commit. */
const MAX_GROUP = 100
/** About the most input (JSON bytes) of one group: a commit is one NATS message (1 MiB by default). */
const MAX_GROUP_BYTES = 256 * 1024

export interface CommandResult<S> {
  /** The events the decision appended (none when it decided nothing needs to change). */
  events: NewEvent[]
  /** The stream's version after the command. */
  version: number
  /** The state the decision was made on (before the new events). */
  state: S
  /** The state the command left: its own events folded on {@link state} (later commands of its group not included). */
  after: S
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
const turns = new Turns<EventStore>()

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

/**
 * The stream's current state and version as {@link runCommand} folds them (from its cache, caught up),
 * for a writer that looks before it asks (a scheduler resuming a deploy, a publisher reconciling).
 * Takes its turn with the commands on the stream in this process.
 */
export function readState<S>(store: EventStore, decider: Decider<S, any>, stream: string): Promise<{ state: S; version: number }> {
  return turns.run(store, stream, () => current(store, decider, stream))
}

/**
 * Decides `command` on `stream`'s current state and appends the events with the version the
 * decision was made on. Commands on one stream in this process take turns; those that wait while a
 * turn runs are decided together in the next one, each on the state the ones before it leave, and
 * appended as one commit (see {@link inGroup}). A writer elsewhere that got in first
 * (ConcurrencyError) means deciding again on the new state, up to 12 times with a small random pause
 * after two, then `WHARF_CONFLICT`. After the append (outside the turn) it waits
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
  const outcome = await inGroup<S>(deps.store, opts.stream, {
    decider: opts.decider,
    command: opts.command,
    ctx: opts.ctx,
    queued: performance.now(),
    ...(opts.timed ? { timed: opts.timed } : {}),
  })
  // Nothing new can also mean an earlier attempt of this same command wrote it (a retry after a
  // partial append): the answer must include what the stream holds either way.
  if (pool && opts.waitFor?.length !== 0) {
    const t0 = performance.now()
    await waitFor(pool, outcome.version, wait)
    opts.timed?.('readmodels', performance.now() - t0)
  }
  return outcome
}

/** One command waiting for its stream's next group. */
interface Entry<S> {
  decider: Decider<S, any>
  command: unknown
  ctx: EventContext
  /** When it was asked (performance.now()). */
  queued: number
  timed?: (step: 'turn' | 'decide' | 'append', ms: number) => void
  resolve(outcome: CommandResult<S>): void
  reject(err: unknown): void
}

/** Commands waiting for a turn, per store and stream. */
const waiting = new WeakMap<EventStore, Map<string, Entry<any>[]>>()

/**
 * Runs `entry` in the stream's next group: the commands waiting when a turn comes are decided one
 * after another, each on the state the ones before it leave, and appended as one commit (all or
 * nothing; each event keeps its own command's context). So the commands of a busy stream cost one
 * read of its version and one append per turn, not per command.
 */
function inGroup<S>(store: EventStore, stream: string, entry: Omit<Entry<S>, 'resolve' | 'reject'>): Promise<CommandResult<S>> {
  return new Promise((resolve, reject) => {
    let byStream = waiting.get(store)
    if (!byStream) waiting.set(store, (byStream = new Map()))
    const queue = byStream.get(stream)
    if (queue) {
      queue.push({ ...entry, resolve, reject })
      return
    }
    byStream.set(stream, [{ ...entry, resolve, reject }])
    nextTurn(store, stream, byStream)
  })
}

function nextTurn(store: EventStore, stream: string, byStream: Map<string, Entry<any>[]>): void {
  void turns.run(store, stream, async () => {
    const queue = byStream.get(stream)!
    const group = takeGroup(queue)
    try {
      await runGroup(store, stream, group)
    } catch (err) {
      for (const e of group) e.reject(err)
    } finally {
      if (queue.length === 0) byStream.delete(stream)
      else nextTurn(store, stream, byStream)
    }
  })
}

/** Takes the next group off `queue`: commands of one decider, at most MAX_GROUP of them and about MAX_GROUP_BYTES of input. */
function takeGroup(queue: Entry<any>[]): Entry<any>[] {
  let n = 0
  let bytes = 0
  while (n < queue.length && n < MAX_GROUP && queue[n]!.decider === queue[0]!.decider) {
    bytes += sizeOf(queue[n]!.command)
    if (n > 0 && bytes > MAX_GROUP_BYTES) break
    n++
  }
  return queue.splice(0, Math.max(1, n))
}

function sizeOf(command: unknown): number {
  try {
    return JSON.stringify(command)?.length ?? 0
  } catch {
    return MAX_GROUP_BYTES
  }
}

/**
 * The events a decision made, as the decider's `evolve` sees them before they are in the log, for the
 * decisions after it in the same group. Their seq is not known yet: it is after everything in the log.
 */
function provisional(stream: string, events: readonly NewEvent[], ctx: EventContext): RecordedEvent[] {
  const at = new Date().toISOString()
  return events.map((e) => ({
    id: e.id ?? newEventId(),
    type: e.type,
    version: e.version ?? 1,
    stream,
    occurredAt: e.occurredAt ?? at,
    actor: ctx.actor,
    causationId: ctx.causationId ?? null,
    correlationId: ctx.correlationId ?? '',
    data: e.data,
    seq: Number.MAX_SAFE_INTEGER,
  }))
}

/**
 * Decides a group on the stream's current state and appends what it decided with the version the
 * decisions were made on. A writer elsewhere that got in first (ConcurrencyError) means deciding the
 * whole group again on the new state, up to MAX_ATTEMPTS times with a small random pause after two,
 * then `WHARF_CONFLICT` for all. A command the decider refuses gets its error once the others are written.
 */
async function runGroup<S>(store: EventStore, stream: string, group: Entry<S>[]): Promise<void> {
  const decider = group[0]!.decider
  const cache = cacheOf(store, decider)
  const start = performance.now()
  for (const e of group) e.timed?.('turn', start - e.queued)
  let lastErr: unknown
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt >= 2) await sleep(Math.random() * BACKOFF_MS * attempt)
    const t0 = performance.now()
    // The first attempt decides on this process's fold without asking the stream's version: the
    // append checks it anyway (expected version), so a writer elsewhere is found there and the group
    // decided again on what it wrote. Only a decision that is not appended (a refusal, or nothing to
    // change) asks for the version before it is answered.
    const unchecked = attempt === 0 ? cache.get(stream) : undefined
    const { state, version } = unchecked ?? (await current(store, decider, stream))
    let next = state
    const decided: { e: Entry<S>; events: NewEvent[]; before: S; after: S | undefined }[] = []
    const refused: { e: Entry<S>; err: unknown }[] = []
    for (const e of group) {
      let events: NewEvent[]
      try {
        events = decider.decide(e.command, next)
      } catch (err) {
        refused.push({ e, err })
        continue
      }
      const before = next
      if (events.length > 0 && group.length > 1) next = foldOn(decider, { state: next, version }, provisional(stream, events, e.ctx)).state
      // Alone in its group, a command that decided something leaves the state folded from the log below.
      decided.push({ e, events, before, after: events.length > 0 && group.length === 1 ? undefined : next })
    }
    const all = decided.flatMap((d) => d.events.map((ev) => ({ ...ev, context: d.e.ctx })))
    if (unchecked && (all.length === 0 || refused.length > 0) && (await store.streamVersion(stream)) !== version) continue
    const t1 = performance.now()
    for (const e of group) e.timed?.('decide', t1 - t0)
    let lastSeq = version
    let folded = state
    if (all.length > 0) {
      try {
        const res = await store.append(stream, all, { ...group[0]!.ctx, expectedVersion: version })
        const now = foldOn(decider, { state, version }, res.events)
        cache.set(stream, now)
        folded = now.state
        lastSeq = res.lastSeq
        const t2 = performance.now()
        for (const d of decided) d.e.timed?.('append', t2 - t1)
      } catch (err) {
        if (!(err instanceof ConcurrencyError)) throw err
        lastErr = err
        continue
      }
    }
    for (const r of refused) r.e.reject(r.err)
    for (const d of decided) d.e.resolve({ events: d.events, version: lastSeq, state: d.before, after: d.after ?? folded })
    return
  }
  throw new WharfError('WHARF_CONFLICT', `${stream} kept changing while the command was decided; try again`, { cause: lastErr })
}
