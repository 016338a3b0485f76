/**
 * Per-user quotas (`WHARF_APPS_PER_USER`, `WHARF_REPLICAS_PER_USER`): checked before a command is
 * run, from the read models, so a refused command appends nothing. Admins have none.
 *
 * Check and append are one step per user: the command runs holding the user's quota lock (in this
 * process a queue per user, across controllers a Postgres advisory lock in a transaction of its own),
 * and the lock is let go only once the read models the check reads include the command's events
 * (`runCommand` waits for them), so the next command of that user counts this one. Why not an
 * expected-version append on a per-user stream: a commit is one message on one stream's subject, so
 * a reservation on the user's stream and the `AppCreated` on the app's would be two appends, and a
 * failure between them would hold quota that no app uses.
 */
import { Turns } from '../../../core/turns.js'
import type pg from 'pg'
import { WharfError } from '../../../core/errors.js'
import { appsOwnedBy, getFormation, replicasOf, visibleApp } from '../../../projections/index.js'
import type { AuthUser, ControllerDeps } from '../context.js'

/** The advisory-lock class of the per-user quota locks ("wquo"); the user's name is hashed into the second key. */
const QUOTA_LOCK_CLASS = 0x7771756f

/** Quota-bound commands of one user in this process take turns: at most one pool connection per user waits for the lock. */
const turns = new Turns<pg.Pool>()

/**
 * Runs `check` then `run` holding `username`'s quota lock. `run` must wait for the read models that
 * `check` reads (as `runCommand` does with `waitFor`) before it returns.
 */
async function underQuotaLock<T>(deps: ControllerDeps, username: string, check: () => Promise<void>, run: () => Promise<T>): Promise<T> {
  return turns.run(deps.pool, username, async () => {
    const client = await deps.pool.connect()
    let broken: Error | undefined
    try {
      await client.query('BEGIN')
      // A transaction's lock: let go at COMMIT, or by the server if this connection dies.
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [QUOTA_LOCK_CLASS, username])
      await check()
      return await run()
    } finally {
      await client.query('COMMIT').catch((err: Error) => (broken = err))
      client.release(broken)
    }
  })
}

/** Refuses with `WHARF_QUOTA` when `user` owns `WHARF_APPS_PER_USER` apps already. */
async function checkAppQuota(deps: ControllerDeps, user: AuthUser): Promise<void> {
  const max = deps.cfg.limits.appsPerUser
  const owned = await appsOwnedBy(deps.pool, user.username)
  if (owned.length >= max) {
    throw new WharfError('WHARF_QUOTA', `${user.username} owns ${owned.length} apps, the most a user may (WHARF_APPS_PER_USER=${max}): destroy one first`, {
      details: { quota: 'WHARF_APPS_PER_USER', limit: max },
    })
  }
}

/**
 * Runs `create` (the command that makes `user` the owner of one more app, waiting for the `apps` read
 * model) unless `user` owns `WHARF_APPS_PER_USER` apps already (`WHARF_QUOTA`); two at once of one
 * user never pass the quota together.
 */
export async function withinAppQuota<T>(deps: ControllerDeps, user: AuthUser, create: () => Promise<T>): Promise<T> {
  if (user.admin) return create()
  return underQuotaLock(deps, user.username, () => checkAppQuota(deps, user), create)
}

/**
 * Refuses with `WHARF_QUOTA` when scaling `app` to `formation` (merged over what it runs now) would
 * make the apps of `owner` run more than `WHARF_REPLICAS_PER_USER` processes together.
 */
async function checkReplicaQuota(deps: ControllerDeps, owner: string, app: string, formation: Record<string, number>): Promise<void> {
  const max = deps.cfg.limits.replicasPerUser
  const owned = await appsOwnedBy(deps.pool, owner)
  const counts = await replicasOf(deps.pool, owned)
  const next = Object.values({ ...(await getFormation(deps.pool, app)), ...formation }).reduce((a, b) => a + b, 0)
  const others = owned.filter((a) => a !== app).reduce((n, a) => n + (counts.get(a) ?? 0), 0)
  if (next > (counts.get(app) ?? 0) && others + next > max) {
    throw new WharfError(
      'WHARF_QUOTA',
      `${owner}'s apps would run ${others + next} processes, more than a user's apps may (WHARF_REPLICAS_PER_USER=${max}); they run ${others} beside ${app}`,
      { details: { quota: 'WHARF_REPLICAS_PER_USER', limit: max, app } },
    )
  }
}

/**
 * Runs `scale` (the command that sets `app`'s formation, waiting for the `formation` read model)
 * unless the apps of `app`'s owner would then run more than `WHARF_REPLICAS_PER_USER` processes
 * together (`WHARF_QUOTA`); commands of the owner's apps at once never pass the quota together.
 */
export async function withinReplicaQuota<T>(
  deps: ControllerDeps,
  user: AuthUser,
  app: string,
  formation: Record<string, number>,
  scale: () => Promise<T>,
): Promise<T> {
  if (user.admin) return scale()
  const { owner } = await visibleApp(deps.pool, user, app)
  return underQuotaLock(deps, owner, () => checkReplicaQuota(deps, owner, app, formation), scale)
}
