/** The store's admin work: backups and restores of the read models, event-log exports and imports. */
import type pg from 'pg'
import type { WharfConfig } from '../../core/config.js'
import { WharfError } from '../../core/errors.js'
import type { Logger } from '../../core/log.js'
import type { ObjectStores } from '../../core/objectstore/index.js'
import type { Catalogue, EventStore } from '../../events/index.js'
import { wharfProjections } from '../../projections/index.js'
import type { BackupDeps } from './backups.js'
import type { EventLogDeps } from './eventlog.js'

export { BACKUPS_STREAM, createBackup, includedSeq, listBackups, pruneBackups, restoreBackup, type BackupDeps, type RestoreResult } from './backups.js'
export { exportEvents, importEvents, listExports, type EventLogDeps, type ImportResult } from './eventlog.js'
export { ID_PATTERN, type BackupManifest, type ExportManifest } from './manifest.js'

interface Wiring {
  cfg: WharfConfig
  pool: pg.Pool
  store: EventStore
  catalogue: Catalogue
  log: Logger
  objects?: ObjectStores | undefined
}

function objectsOf(w: Wiring): ObjectStores {
  if (!w.objects) throw new WharfError('WHARF_UNAVAILABLE', 'no store is configured: set WHARF_S3_ENDPOINT and its keys, or let make up start the Ceph gateway')
  return w.objects
}

/** What backups and restores work with, from a service's dependencies. */
export function backupDeps(w: Wiring): BackupDeps {
  const objects = objectsOf(w)
  if (!w.cfg.databaseUrl) throw new WharfError('WHARF_UNAVAILABLE', 'WHARF_DATABASE_URL is not set: no database to back up')
  return {
    pool: w.pool,
    databaseUrl: w.cfg.databaseUrl,
    store: w.store,
    objects: objects.backups,
    endpoint: objects.endpoint,
    namespace: w.cfg.namespace,
    log: w.log,
    projections: wharfProjections().map((p) => p.name),
    keep: w.cfg.backups.keep,
  }
}

/** What event-log exports and imports work with, from a service's dependencies. */
export function eventLogDeps(w: Wiring): EventLogDeps {
  const objects = objectsOf(w)
  return { store: w.store, catalogue: w.catalogue, objects: objects.events, endpoint: objects.endpoint, namespace: w.cfg.namespace, log: w.log }
}
