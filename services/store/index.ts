/** The store's admin work: backups and restores of the read models, event-log exports and imports. */
import type pg from 'pg'
import type { PlatformStore } from '../../core/backups.js'
import type { WharfConfig } from '../../core/config.js'
import { WharfError } from '../../core/errors.js'
import type { Logger } from '../../core/log.js'
import type { ObjectStores } from '../../core/objectstore/index.js'
import type { Catalogue, EventStore } from '../../events/index.js'
import { wharfProjections } from '../../projections/index.js'
import { createBackup, listBackups, restoreBackup, type BackupDeps } from './backups.js'
import { exportEvents, importEvents, listExports, type EventLogDeps } from './eventlog.js'

export { BACKUPS_STREAM, createBackup, listBackups, pruneBackups, restoreBackup, type BackupDeps } from './backups.js'
export { exportEvents, importEvents, listExports, type EventLogDeps } from './eventlog.js'

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

/**
 * The store's admin work as a port, for the controller's admin routes. The store is looked up on each
 * call, so a platform without one rejects each call with `WHARF_UNAVAILABLE`, not at start.
 */
export function platformStore(w: Wiring): PlatformStore {
  return {
    backups: async () => listBackups(backupDeps(w)),
    backup: async (req) => createBackup(backupDeps(w), req),
    restore: async (id, ctx) => restoreBackup(backupDeps(w), id, ctx),
    exports: async (namespace) => listExports(eventLogDeps(w), namespace),
    exportEvents: async (ctx) => exportEvents(eventLogDeps(w), ctx),
    importEvents: async (id, opts) => importEvents(eventLogDeps(w), id, opts),
  }
}
