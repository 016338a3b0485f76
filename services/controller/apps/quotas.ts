/**
 * Per-user quotas (`WHARF_APPS_PER_USER`, `WHARF_REPLICAS_PER_USER`): checked before a command is
 * run, from the read models, so a refused command appends nothing. Admins have none. Two commands
 * of one user at the same instant may pass one over (the read models are read, not locked).
 */
import { WharfError } from '../../../core/errors.js'
import { appsOwnedBy, getFormation, replicasOf, visibleApp } from '../../../projections/index.js'
import type { AuthUser, ControllerDeps } from '../context.js'

/** Refuses with `WHARF_QUOTA` when `user` owns `WHARF_APPS_PER_USER` apps already. */
export async function checkAppQuota(deps: ControllerDeps, user: AuthUser): Promise<void> {
  if (user.admin) return
  const max = deps.cfg.limits.appsPerUser
  const owned = await appsOwnedBy(deps.pool, user.username)
  if (owned.length >= max) {
    throw new WharfError('WHARF_QUOTA', `${user.username} owns ${owned.length} apps, the most a user may (WHARF_APPS_PER_USER=${max}): destroy one first`, {
      details: { quota: 'WHARF_APPS_PER_USER', limit: max },
    })
  }
}

/**
 * Refuses with `WHARF_QUOTA` when scaling `app` to `formation` (merged over what it runs now) would
 * make the apps of its owner run more than `WHARF_REPLICAS_PER_USER` processes together.
 */
export async function checkReplicaQuota(deps: ControllerDeps, user: AuthUser, app: string, formation: Record<string, number>): Promise<void> {
  if (user.admin) return
  const { owner } = await visibleApp(deps.pool, user, app)
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
