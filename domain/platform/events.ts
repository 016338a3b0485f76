import Type, { type Static } from 'typebox'
import type { EventDefinition } from '../../events/catalogue.js'
import type { RecordedEvent } from '../../events/envelope.js'
import { AppName, Port, Strict, UserName } from '../schema.js'
import { STORE_OBJECT_ID_PATTERN } from './names.js'

/** A backup or event-log export id: `YYYYMMDD-HHMMSS-xxxx` (UTC, 4 random hex digits). */
export const StoreObjectId = Type.String({ pattern: STORE_OBJECT_ID_PATTERN })
const BackupTrigger = Type.Union([Type.Literal('manual'), Type.Literal('schedule')])

export const AdminGrantedSchema = Type.Object({ username: UserName }, Strict)
export type AdminGrantedData = Static<typeof AdminGrantedSchema>

export const AdminRevokedSchema = Type.Object({ username: UserName }, Strict)
export type AdminRevokedData = Static<typeof AdminRevokedSchema>

export const BackupCompletedSchema = Type.Object(
  { id: StoreObjectId, trigger: BackupTrigger, bytes: Type.Integer({ minimum: 0 }), seq: Type.Integer({ minimum: 0 }) },
  Strict,
)
export type BackupCompletedData = Static<typeof BackupCompletedSchema>

export const BackupFailedSchema = Type.Object({ id: StoreObjectId, trigger: BackupTrigger, reason: Type.String({ maxLength: 2000 }) }, Strict)
export type BackupFailedData = Static<typeof BackupFailedSchema>

export const BackupRestoredSchema = Type.Object({ id: StoreObjectId, seq: Type.Integer({ minimum: 0 }) }, Strict)
export type BackupRestoredData = Static<typeof BackupRestoredSchema>

export const BackupDeletedSchema = Type.Object({ id: StoreObjectId }, Strict)
export type BackupDeletedData = Static<typeof BackupDeletedSchema>

export const EventsExportedSchema = Type.Object(
  { id: StoreObjectId, events: Type.Integer({ minimum: 0 }), seq: Type.Integer({ minimum: 0 }), bytes: Type.Integer({ minimum: 0 }) },
  Strict,
)
export type EventsExportedData = Static<typeof EventsExportedSchema>

/** One container the router sends an app's requests to. */
export const ServedContainerSchema = Type.Object(
  {
    container: Type.String({ minLength: 1, maxLength: 128 }),
    release: Type.Integer({ minimum: 1 }),
    host: Type.String({ minLength: 1, maxLength: 255 }),
    port: Port,
  },
  Strict,
)
export type ServedContainer = Static<typeof ServedContainerSchema>

/** At most this many servers per app in one `RouteServed` (a process type runs at most 100; a rolling deploy doubles that). */
export const MAX_SERVED = 1000

export const RouteServedSchema = Type.Object({ app: AppName, servers: Type.Array(ServedContainerSchema, { maxItems: MAX_SERVED }) }, Strict)
export type RouteServedData = Static<typeof RouteServedSchema>

/** The stream the router records what it serves on: one writer, no decider, apart from the scheduler's and publisher's `runtime.<app>`. */
export const ROUTER_STREAM = 'platform.router'

/** An event of a `platform.<name>` stream as readers see it: the newest version of its type. */
export type PlatformEvent =
  | RecordedEvent<'AdminGranted', AdminGrantedData>
  | RecordedEvent<'AdminRevoked', AdminRevokedData>
  | RecordedEvent<'BackupCompleted', BackupCompletedData>
  | RecordedEvent<'BackupFailed', BackupFailedData>
  | RecordedEvent<'BackupRestored', BackupRestoredData>
  | RecordedEvent<'BackupDeleted', BackupDeletedData>
  | RecordedEvent<'EventsExported', EventsExportedData>
  | RecordedEvent<'RouteServed', RouteServedData>

/**
 * Events of `platform.<name>` streams. The admin set lives on the one `platform.accounts` stream, so
 * that "the first user is the admin" and "never revoke the last admin" are decided on one stream,
 * race-free. What happens to the store (backups, restores, exports) is recorded on
 * `platform.backups`, for the audit log: facts, appended without an expected version.
 */
export const platformEvents: EventDefinition[] = [
  {
    type: 'AdminGranted',
    version: 1,
    stream: 'platform',
    description: 'A user became an admin (on `platform.accounts`; the first registration grants it).',
    schema: AdminGrantedSchema,
  },
  {
    type: 'AdminRevoked',
    version: 1,
    stream: 'platform',
    description: 'A user stopped being an admin (on `platform.accounts`; never the last admin).',
    schema: AdminRevokedSchema,
  },
  {
    type: 'BackupCompleted',
    version: 1,
    stream: 'platform',
    description: 'The read-model database was backed up to the store (on `platform.backups`); `seq`: the last event the backup includes.',
    schema: BackupCompletedSchema,
  },
  {
    type: 'BackupFailed',
    version: 1,
    stream: 'platform',
    description: 'A backup did not complete; nothing of it is listed or restorable (on `platform.backups`).',
    schema: BackupFailedSchema,
  },
  {
    type: 'BackupRestored',
    version: 1,
    stream: 'platform',
    description: 'The read models were replaced by a backup and catch up from its checkpoints (on `platform.backups`).',
    schema: BackupRestoredSchema,
  },
  {
    type: 'BackupDeleted',
    version: 1,
    stream: 'platform',
    description: 'A backup was deleted from the store by the retention rule (on `platform.backups`).',
    schema: BackupDeletedSchema,
  },
  {
    type: 'EventsExported',
    version: 1,
    stream: 'platform',
    description: 'The event log up to `seq` was written to the store as newline-delimited JSON (on `platform.backups`).',
    schema: EventsExportedSchema,
  },
  {
    type: 'RouteServed',
    version: 1,
    stream: 'platform',
    description:
      "The router serves an app's requests on these containers (on `platform.router`): written once nginx answers with the new routes and no worker of the old ones takes new connections, and only when the app's set of containers changed.",
    schema: RouteServedSchema,
  },
]
