/**
 * The store's admin work as the controller offers it (`/v1/admin/backups`, `/v1/admin/exports`): a
 * port the store service implements (services/store) and the composition root gives the controller.
 * Also the manifests Wharf writes next to each backup and export, as plain data. Pure: no I/O here.
 */
import Type, { type Static } from 'typebox'
import type { EventContext } from '../events/index.js'

export const BACKUP_FORMAT = 'wharf-backup/1'
export const EXPORT_FORMAT = 'wharf-events/1'

/** `YYYYMMDD-HHMMSS-xxxx`, UTC: ids sort by time. */
export const ID_PATTERN = /^[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$/

const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' })
const Id = Type.String({ pattern: ID_PATTERN.source })
const Seq = Type.Integer({ minimum: 0 })
const Data = Type.Object({ key: Type.String({ minLength: 1 }), bytes: Type.Integer({ minimum: 0 }), sha256: Sha256 })

/** The schemas a backup may hold: Wharf's core schema and the read models' (never a rebuild's `__next`). */
export const BACKUP_SCHEMA = /^(wharf|rm_[a-z][a-z0-9_]*)$/

export const BackupManifestSchema = Type.Object({
  format: Type.Literal(BACKUP_FORMAT),
  id: Id,
  createdAt: Type.String({ format: 'date-time' }),
  trigger: Type.Union([Type.Literal('manual'), Type.Literal('schedule')]),
  actor: Type.String(),
  namespace: Type.String(),
  /** The id of the log's first event: which platform (which event log) this is a backup of. */
  platform: Type.String({ minLength: 1 }),
  /** The log's last seq when the backup was taken. */
  lastSeq: Seq,
  /** The checkpoints inside the backup: the read models restored from it catch up from these. */
  checkpoints: Type.Array(Type.Object({ name: Type.String(), version: Type.Integer(), seq: Seq, status: Type.String() })),
  schemas: Type.Array(Type.String({ pattern: BACKUP_SCHEMA.source }), { minItems: 1 }),
  /** The `pg_dump --format=custom` archive. */
  dump: Type.Intersect([Data, Type.Object({ tool: Type.String() })]),
  tookMs: Type.Integer({ minimum: 0 }),
})
export type BackupManifest = Static<typeof BackupManifestSchema>

export const ExportManifestSchema = Type.Object({
  format: Type.Literal(EXPORT_FORMAT),
  id: Id,
  createdAt: Type.String({ format: 'date-time' }),
  actor: Type.String(),
  namespace: Type.String(),
  platform: Type.String({ minLength: 1 }),
  /** Events in the export: every event of the log from seq 1 to `lastSeq` (one commit per seq, of one event or more), one JSON object per line. */
  events: Seq,
  lastSeq: Seq,
  ndjson: Data,
  tookMs: Type.Integer({ minimum: 0 }),
})
export type ExportManifest = Static<typeof ExportManifestSchema>

/** The last event every read model in the backup includes. */
export function includedSeq(m: BackupManifest): number {
  return m.checkpoints.length ? Math.min(...m.checkpoints.map((c) => c.seq)) : 0
}

/** What {@link PlatformStore.restore} answers. */
export interface RestoreResult {
  manifest: BackupManifest
  /** The seq of the `BackupRestored` event, which the read models had reached when the restore answered. */
  seq: number
  tookMs: number
}

/** What {@link PlatformStore.importEvents} answers. */
export interface ImportResult {
  manifest: ExportManifest
  /** Events appended now (fewer than the export's when an interrupted import of it was resumed). */
  imported: number
  lastSeq: number
  tookMs: number
}

export interface BackupRequest extends EventContext {
  trigger: BackupManifest['trigger']
}

/**
 * Backups of the read models and exports of the event log, in the store. Every method fails with
 * `WHARF_UNAVAILABLE` when no store (or no database URL) is configured.
 */
export interface PlatformStore {
  /** This platform's complete backups, newest first. */
  backups(): Promise<BackupManifest[]>
  /** Backs the read-model database up now; answers the manifest. */
  backup(req: BackupRequest): Promise<BackupManifest>
  /** Replaces the read models with backup `id`; they catch up from the event log. */
  restore(id: string, ctx: EventContext): Promise<RestoreResult>
  /** Complete exports of the event log under `namespace` (default this platform's), newest first. */
  exports(namespace?: string): Promise<ExportManifest[]>
  /** Writes the whole event log to the store; answers the manifest. */
  exportEvents(ctx: EventContext): Promise<ExportManifest>
  /** Appends export `id` (of `namespace`, default this platform's) to this platform's event log. */
  importEvents(id: string, opts?: { namespace?: string }): Promise<ImportResult>
}
