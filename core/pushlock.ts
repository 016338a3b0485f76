import type pg from 'pg'
import { setTimeout as sleep } from 'node:timers/promises'
import { WharfError } from './errors.js'
import { pushLockWait, pushLockWaits } from './metrics.js'

/** The advisory-lock key of an app's pushes (a namespace of its own, so tests never share one). */
function lockKey(namespace: string, app: string): string {
  return `wharf.push:${namespace}:${app}`
}

export interface PushLock {
  release(): Promise<void>
}

/**
 * Serializes the pushes (and image builds) of one app across builder processes: a Postgres
 * session advisory lock, held on a connection of its own for the whole push. A builder that dies
 * loses its connection and so its lock: the next push works. A second push waits, after `onWait`
 * says so, up to `timeoutMs` (default 10 min), holding no connection while it waits: every
 * `pollMs` (default 500) it borrows one, tries the lock, and gives the connection back unless the
 * lock was granted. So waiting pushes never drain `pool`.
 */
export async function acquirePushLock(
  pool: pg.Pool,
  namespace: string,
  app: string,
  opts: { onWait?: () => void; timeoutMs?: number; signal?: AbortSignal; pollMs?: number } = {},
): Promise<PushLock> {
  const key = lockKey(namespace, app)
  const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000)
  let told = false
  const started = Date.now()
  for (;;) {
    const client = await pool.connect()
    let granted: boolean
    try {
      const { rows } = await client.query('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [key])
      granted = rows[0].ok === true
    } catch (err) {
      client.release(err as Error)
      throw err
    }
    if (granted) {
      pushLockWait.observe((Date.now() - started) / 1000)
      return heldLock(client, key)
    }
    client.release()
    if (!told) {
      told = true
      pushLockWaits.inc()
      opts.onWait?.()
    }
    if (opts.signal?.aborted) throw new WharfError('WHARF_UNAVAILABLE', 'the push went away while it waited for another push')
    if (Date.now() >= deadline) throw new WharfError('WHARF_TIMEOUT', `another push to ${app} is still running; try again when it is done`)
    try {
      await sleep(Math.min(opts.pollMs ?? 500, Math.max(0, deadline - Date.now())), undefined, opts.signal ? { signal: opts.signal } : {})
    } catch {
      throw new WharfError('WHARF_UNAVAILABLE', 'the push went away while it waited for another push')
    }
  }
}

function heldLock(client: pg.PoolClient, key: string): PushLock {
  let released = false
  return {
    async release() {
      if (released) return
      released = true
      try {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key])
        client.release()
      } catch (err) {
        // A broken connection holds no lock any more: drop it from the pool.
        client.release(err as Error)
      }
    },
  }
}

/** True if nobody holds the app's push lock right now (takes it and gives it back). */
export async function pushLockFree(pool: pg.Pool, namespace: string, app: string): Promise<boolean> {
  try {
    const lock = await acquirePushLock(pool, namespace, app, { timeoutMs: 0 })
    await lock.release()
    return true
  } catch (err) {
    if (err instanceof WharfError && err.code === 'WHARF_TIMEOUT') return false
    throw err
  }
}
