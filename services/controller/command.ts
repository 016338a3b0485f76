import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { fold, type Decider } from '../../core/decider.js'
import { ConcurrencyError, WharfError } from '../../core/errors.js'
import type { EventContext, EventStore, NewEvent } from '../../events/index.js'
import { waitFor } from '../../projections/index.js'

/** How many times a command is decided again after the stream moved under it. */
const MAX_ATTEMPTS = 12
/** After the first two immediate retries, a random pause of up to this many ms times the attempt. */
const BACKOFF_MS = 5

export interface CommandResult<S> {
  /** The events the decision appended (none when it decided nothing needs to change). */
  events: NewEvent[]
  /** The stream's version after the command. */
  version: number
  /** The state the decision was made on (before the new events). */
  state: S
}

/**
 * Loads `stream`, decides `command` on its state, appends with the version the decision was made
 * on, and retries (reload, decide again) on a ConcurrencyError up to 12 times, with a small random
 * pause after the first two, then answers `WHARF_CONFLICT`. Afterwards it waits until the read models in `waitFor` (default: all) include
 * the new events, so the caller's next query sees them (read your writes).
 */
export async function runCommand<S, C>(
  deps: { store: EventStore; pool: pg.Pool },
  opts: { stream: string; decider: Decider<S, C>; command: C; ctx: EventContext; waitFor?: string[]; timeoutMs?: number },
): Promise<CommandResult<S>> {
  const wait = { ...(opts.waitFor ? { projections: opts.waitFor } : {}), ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) }
  let lastErr: unknown
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    // A burst of writers on one stream: past the first retries, spread them out so each lands.
    if (attempt >= 2) await sleep(Math.random() * BACKOFF_MS * attempt)
    const { version, events: history } = await deps.store.readStream(opts.stream)
    const state = fold(opts.decider, history)
    const events = opts.decider.decide(opts.command, state)
    if (events.length === 0) {
      // Nothing to write can mean an earlier attempt of this same command wrote it (a retry after a
      // partial append): the answer must include what the stream holds, so wait for it too.
      await waitFor(deps.pool, version, wait)
      return { events, version, state }
    }
    try {
      const res = await deps.store.append(opts.stream, events, { ...opts.ctx, expectedVersion: version })
      await waitFor(deps.pool, res.lastSeq, wait)
      return { events, version: res.lastSeq, state }
    } catch (err) {
      if (!(err instanceof ConcurrencyError)) throw err
      lastErr = err
    }
  }
  throw new WharfError('WHARF_CONFLICT', `${opts.stream} kept changing while the command was decided; try again`, { cause: lastErr })
}
