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
import { hooksProjection } from './hooks.js'
import { usersProjection } from './users.js'
import { wharfCatalogue } from '../domain/index.js'
import type { Projection } from './projection.js'
import { CheckpointWatcher, type UntilOptions, type WaitForOptions } from './watcher.js'

export { canSeeApp, getCollaborators, listApps, maintenanceApps, visibleApp, type AppRow } from './access.js'
export { appsOwnedBy, appsProjection, countLiveApps, liveApps } from './apps.js'
export { buildsProjection, findBuildRows, listBuildRows, releasedVersion, unfinishedBuilds, type BuildRow } from './builds.js'
export { attachedCerts, certsProjection, listCerts, type AttachedCert, type CertView } from './certs.js'
export { configProjection, getConfig } from './config.js'
export { countContainers, getProcesses, upCounts, hostContainers, listProcesses, upWebContainers, webContainers, type PsView } from './containers.js'
export { allDomains, getDomains } from './domains.js'
export { allDrains, getDrains, type DrainView } from './drains.js'
export {
  appOf,
  countEvents,
  deployVerdict,
  lastDeploys,
  lastServed,
  lastServedSets,
  lastSeqAt,
  publicEvent,
  redactEvent,
  TRACE_REF,
  traceOf,
  visibleEvents,
  type DeployVerdict,
  type EventFilter,
  type EventView,
} from './eventlog.js'
export { formations, getFormation, replicasOf } from './formation.js'
export { ATTEMPTS_KEPT, getHook, hookAttempts, hookTargets, hooksProjection, listHooks, type AttemptView, type HookTarget, type HookView } from './hooks.js'
export { keyOwner, keysProjection, listKeys, type KeyView } from './keys.js'
export {
  appsWithImage,
  newestReleases,
  currentConfigs,
  deployableRelease,
  getReleaseRow,
  listReleaseRows,
  newestImageVersion,
  releaseOfBuild,
  type DeployableRow,
  type ReleaseRow,
} from './releases.js'
export { getUser, listAdmins, listUsers, tokensOf, userByTokenHash, userExists, usersProjection, type UserView } from './users.js'
export { CONTROL_CHANNEL, holdProjections, type ControlNotice, type HoldOptions } from './hold.js'
export {
  announceCheckpointReset,
  CHECKPOINT_CHANNEL,
  CORE_SCHEMA,
  migrateCore,
  PROJECTION_LOCK_CLASS,
  readCheckpoints,
  type CheckpointNotice,
  type CheckpointRow,
  type ProjectionStatus,
} from './checkpoints.js'
export { durableOf, nextSchemaOf, schemaOf, type Projection, type Queryable } from './projection.js'
export { Projector, type BatchInfo, type ProjectorHooks, type ProjectorOptions, type RunnerState } from './projector.js'
export {
  getReplay,
  shadowSchemaOf,
  startReplay,
  type ModelDiff,
  type ReplayJob,
  type ReplayJobProgress,
  type ReplayJobResult,
  type ReplayPhase,
  type RowDiff,
  type StartReplayOptions,
} from './replay.js'
export { CheckpointWatcher, type CheckpointWatcherOptions, type UntilOptions, type WaitForOptions } from './watcher.js'
export type { BatchOptions } from './batch.js'
export { asOf, AT_PATTERN, parseAt, PAST_MODELS, type At, type AtPoint, type PastModel, type TimeTravelSource } from './timetravel.js'

/** Every read model the platform runs. */
export function wharfProjections(): Projection[] {
  return [
    appsProjection,
    configProjection,
    eventLogProjection(wharfCatalogue().types()),
    usersProjection,
    keysProjection,
    releasesProjection,
    formationProjection,
    domainsProjection,
    certsProjection,
    containersProjection,
    accessProjection,
    buildsProjection,
    drainsProjection,
    hooksProjection,
  ]
}

const watchers = new WeakMap<pg.Pool, CheckpointWatcher>()

/**
 * Waits until read models have applied the log up to `seq` (a command's answer), from any process:
 * one LISTEN connection per pool, given back 1 s after the last wait. `projections` defaults to every
 * one of {@link wharfProjections}; `timeoutMs` to 5_000, then `WHARF_TIMEOUT`.
 */
export function waitFor(pool: pg.Pool, seq: number, opts?: WaitForOptions): Promise<void> {
  return watcherOf(pool).waitFor(seq, opts)
}

/**
 * Waits until a read model shows what `probe` looks for, when the sequence of the event that brings it
 * is not known (another service appends it): `probe` runs once, then again each time a checkpoint of
 * `opts.projections` moves, on the LISTEN connection {@link waitFor} uses. Answers the probe's first
 * defined result, or undefined after `timeoutMs` (default 5_000) or when `signal` aborts.
 */
export function waitUntil<T>(pool: pg.Pool, probe: () => Promise<T | undefined>, opts: UntilOptions): Promise<T | undefined> {
  return watcherOf(pool).until(probe, opts)
}

function watcherOf(pool: pg.Pool): CheckpointWatcher {
  let w = watchers.get(pool)
  if (!w) {
    w = new CheckpointWatcher({ pool, projections: wharfProjections().map((p) => p.name), idleMs: 1_000 })
    watchers.set(pool, w)
  }
  return w
}

/**
 * Event type -> which of the read models `names` apply it: what a consumer that reads those read models
 * waits for before it handles an event (waiting for the others too would wait for their skip-only
 * checkpoints, which the projector writes up to 100 ms later).
 */
export function readModelsHandling(names: readonly string[]): Map<string, string[]> {
  const byType = new Map<string, string[]>()
  for (const p of wharfProjections()) {
    if (!names.includes(p.name)) continue
    for (const type of p.handles) byType.set(type, [...(byType.get(type) ?? []), p.name])
  }
  return byType
}
