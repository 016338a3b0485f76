/** Read models: what other folders may use. */
import type pg from 'pg'
import { accessProjection } from './access.js'
import { appsProjection } from './apps.js'
import { buildsProjection } from './builds.js'
import { certsProjection } from './certs.js'
import { configProjection } from './config.js'
import { containersProjection } from './containers.js'
import { domainsProjection } from './domains.js'
import { drainsProjection } from './drains.js'
import { formationProjection } from './formation.js'
import { releasesProjection } from './releases.js'
import { eventLogProjection } from './eventlog.js'
import { keysProjection } from './keys.js'
import { usersProjection } from './users.js'
import { wharfCatalogue } from '../domain/index.js'
import type { Projection } from './projection.js'
import { CheckpointWatcher, type WaitForOptions } from './watcher.js'

export { appsProjection } from './apps.js'
export { buildsProjection } from './builds.js'
export { attachedCerts, certsProjection, type AttachedCert } from './certs.js'
export { configProjection } from './config.js'
export { keysProjection } from './keys.js'
export { usersProjection } from './users.js'
export { CONTROL_CHANNEL, holdProjections, type ControlNotice, type HoldOptions } from './hold.js'
export { CHECKPOINT_CHANNEL, CORE_SCHEMA, migrateCore, PROJECTION_LOCK_CLASS, readCheckpoints, type CheckpointNotice, type CheckpointRow, type ProjectionStatus } from './checkpoints.js'
export { durableOf, nextSchemaOf, schemaOf, type Projection } from './projection.js'
export { Projector, type BatchInfo, type ProjectorHooks, type ProjectorOptions, type RunnerState } from './projector.js'
export { CheckpointWatcher, type CheckpointWatcherOptions, type WaitForOptions } from './watcher.js'
export type { BatchOptions } from './batch.js'

/** Every read model the platform runs. */
export function wharfProjections(): Projection[] {
  return [appsProjection, configProjection, eventLogProjection(wharfCatalogue().types()), usersProjection, keysProjection, releasesProjection, formationProjection, domainsProjection, certsProjection, containersProjection, accessProjection, buildsProjection, drainsProjection]
}

const watchers = new WeakMap<pg.Pool, CheckpointWatcher>()

/**
 * Waits until read models have applied the log up to `seq` (a command's answer), from any process:
 * one LISTEN connection per pool, given back 1 s after the last wait. `projections` defaults to every
 * one of {@link wharfProjections}; `timeoutMs` to 5_000, then `WHARF_TIMEOUT`.
 */
export function waitFor(pool: pg.Pool, seq: number, opts?: WaitForOptions): Promise<void> {
  let w = watchers.get(pool)
  if (!w) {
    w = new CheckpointWatcher({ pool, projections: wharfProjections().map((p) => p.name), idleMs: 1_000 })
    watchers.set(pool, w)
  }
  return w.waitFor(seq, opts)
}
