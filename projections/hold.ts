import type pg from 'pg'
import { WharfError } from '../core/errors.js'
import { PROJECTION_LOCK_CLASS, readCheckpoints } from './checkpoints.js'

/**
 * The NOTIFY channel on which projectors, in any process, are asked to let go of their projections
 * (`yield`) and to take them back (`resume`). Payload {@link ControlNotice} as JSON.
 */
export const CONTROL_CHANNEL = 'wharf_projector_control'

export interface ControlNotice {
  op: 'yield' | 'resume'
}

export interface HoldOptions {
  /** Projections to hold besides those with a checkpoint row. */
  names?: readonly string[]
  /** How long the projectors may take to let go, ms, default 30_000; then `WHARF_UNAVAILABLE` and `fn` never runs. */
  timeoutMs?: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Runs `fn` while no projector applies events to any read model: asks every projector to let go
 * (NOTIFY `yield`; a projector finishes the batch in hand, then releases its ownership lock and stands
 * by), takes every projection's ownership lock itself, runs `fn`, then releases them and asks the
 * projectors to take over again (`resume`), each from its checkpoint as it then stands. Ownership is
 * the advisory lock the projector already uses, so this holds across processes and hosts; a
 * projector that starts meanwhile stands by.
 */
export async function holdProjections<T>(pool: pg.Pool, fn: () => Promise<T>, opts: HoldOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000
  const client = await pool.connect()
  let broken: Error | undefined
  const ask = (op: ControlNotice['op']) => client.query('SELECT pg_notify($1, $2)', [CONTROL_CHANNEL, JSON.stringify({ op } satisfies ControlNotice)])
  try {
    const rows = await readCheckpoints(client).catch(() => [])
    let waiting = [...new Set([...(opts.names ?? []), ...rows.map((r) => r.name)])]
    const deadline = Date.now() + timeoutMs
    let askedAt = 0
    while (waiting.length > 0) {
      // Asked again now and then: a projector that took a projection up after the first ask lets go too.
      if (Date.now() - askedAt >= 1_000) {
        await ask('yield')
        askedAt = Date.now()
      }
      const { rows: got } = await client.query<{ n: string; ok: boolean }>(
        'SELECT n, pg_try_advisory_lock($1, hashtext(n)) AS ok FROM unnest($2::text[]) AS n',
        [PROJECTION_LOCK_CLASS, waiting],
      )
      waiting = got.filter((g) => !g.ok).map((g) => g.n)
      if (waiting.length === 0) break
      if (Date.now() >= deadline) {
        throw new WharfError('WHARF_UNAVAILABLE', `a projector did not let go of ${waiting.join(', ')} within ${timeoutMs / 1000} s; nothing was changed`, {
          details: { projections: waiting },
        })
      }
      await sleep(100)
    }
    return await fn()
  } finally {
    await client.query('SELECT pg_advisory_unlock_all()').catch((err: Error) => (broken = err))
    await ask('resume').catch((err: Error) => (broken = err))
    client.release(broken)
  }
}
