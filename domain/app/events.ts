import Type, { type Static } from 'typebox'
import type { EventDefinition } from '../../events/catalogue.js'
import type { RecordedEvent } from '../../events/envelope.js'
import { HOST_NAME_PATTERN } from '../host/names.js'
import { AppName, ConfigKey, ConfigValue, Port, ProcessType, Strict, UserName, Uuid } from '../schema.js'
import type { CertEvent } from './certs.js'

/** A config key as a record key: a record keeps only a key schema's pattern, so the length is in it. */
export const ConfigKeyPattern = Type.String({ pattern: '^[A-Z_][A-Z0-9_]{0,127}$' })
/** Config as events carry it: only valid keys (a pattern record alone lets other keys through). */
export const ConfigValues = Type.Record(ConfigKeyPattern, ConfigValue, { additionalProperties: false })
/** A memory limit per process type, Docker style: `512M`, `1G`, `65536` (bytes). */
export const MemoryLimit = Type.String({ pattern: '^[1-9][0-9]{0,9}[KMG]?$' })
/** A CPU limit per process type, in CPUs (0.5 = half a core). */
export const CpuLimit = Type.Number({ minimum: 0.01, maximum: 256 })
/** How many processes of one type run: 0..100. */
export const Quantity = Type.Integer({ minimum: 0, maximum: 100 })
/** A host name: lower-case LDH labels separated by dots, at most 253 characters. */
export const DomainName = Type.String({ pattern: HOST_NAME_PATTERN })
/** A log drain's id: `d.` and 12 hex digits of its URL's hash. */
export const DrainId = Type.String({ pattern: '^d\\.[0-9a-f]{12}$' })
/** Process type -> command, from the Procfile (empty: the image's CMD is `web`). */
export const Procfile = Type.Record(ProcessType, Type.String({ minLength: 1, maxLength: 4096 }), { additionalProperties: false })
export const Limits = Type.Object(
  {
    memory: Type.Record(ProcessType, MemoryLimit, { additionalProperties: false }),
    cpu: Type.Record(ProcessType, CpuLimit, { additionalProperties: false }),
  },
  Strict,
)

/** `ReleaseCreated` v1: an image (none for v1) with the config and limits it runs with. */
export const ReleaseCreatedSchema = Type.Object(
  {
    app: AppName,
    version: Type.Integer({ minimum: 1 }),
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    digest: Type.Optional(Type.String({ maxLength: 200 })),
    procfile: Procfile,
    port: Type.Optional(Port),
    config: ConfigValues,
    limits: Limits,
    /** Who made it: a user name, or `system` for the release manager. */
    by: Type.String({ minLength: 1, maxLength: 64 }),
    summary: Type.String({ maxLength: 1024 }),
    /** The build it releases (the release manager is idempotent by build id). */
    build: Type.Optional(Uuid),
    /** The release it rolls back to. */
    rollbackOf: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  Strict,
)
export type ReleaseCreatedData = Static<typeof ReleaseCreatedSchema>

export const AppCreatedSchema = Type.Object({ app: AppName, owner: UserName }, Strict)
export type AppCreatedData = Static<typeof AppCreatedSchema>

export const AppDestroyedSchema = Type.Object({ app: AppName }, Strict)
export type AppDestroyedData = Static<typeof AppDestroyedSchema>

export const ConfigSetSchema = Type.Object({ app: AppName, values: ConfigValues }, Strict)
export type ConfigSetData = Static<typeof ConfigSetSchema>

export const ConfigUnsetSchema = Type.Object({ app: AppName, keys: Type.Array(ConfigKey, { minItems: 1 }) }, Strict)
export type ConfigUnsetData = Static<typeof ConfigUnsetSchema>

export const AppTransferredSchema = Type.Object({ app: AppName, from: UserName, to: UserName }, Strict)
export type AppTransferredData = Static<typeof AppTransferredSchema>

export const CollaboratorAddedSchema = Type.Object({ app: AppName, username: UserName }, Strict)
export type CollaboratorAddedData = Static<typeof CollaboratorAddedSchema>

export const CollaboratorRemovedSchema = Type.Object({ app: AppName, username: UserName }, Strict)
export type CollaboratorRemovedData = Static<typeof CollaboratorRemovedSchema>

export const FormationScaledSchema = Type.Object(
  { app: AppName, formation: Type.Record(ProcessType, Quantity, { additionalProperties: false, minProperties: 1 }) },
  Strict,
)
export type FormationScaledData = Static<typeof FormationScaledSchema>

export const DomainAddedSchema = Type.Object({ app: AppName, domain: DomainName }, Strict)
export type DomainAddedData = Static<typeof DomainAddedSchema>

export const DomainRemovedSchema = Type.Object({ app: AppName, domain: DomainName }, Strict)
export type DomainRemovedData = Static<typeof DomainRemovedSchema>

export const LimitsSetSchema = Type.Object({ app: AppName, memory: Limits.properties.memory, cpu: Limits.properties.cpu }, Strict)
export type LimitsSetData = Static<typeof LimitsSetSchema>

export const LimitsUnsetSchema = Type.Object({ app: AppName, memory: Type.Array(ProcessType), cpu: Type.Array(ProcessType) }, Strict)
export type LimitsUnsetData = Static<typeof LimitsUnsetSchema>

export const MaintenanceSetSchema = Type.Object({ app: AppName, enabled: Type.Boolean() }, Strict)
export type MaintenanceSetData = Static<typeof MaintenanceSetSchema>

export const DrainAddedSchema = Type.Object({ app: AppName, id: DrainId, url: Type.String({ minLength: 1, maxLength: 2048 }) }, Strict)
export type DrainAddedData = Static<typeof DrainAddedSchema>

export const DrainRemovedSchema = Type.Object({ app: AppName, id: DrainId }, Strict)
export type DrainRemovedData = Static<typeof DrainRemovedSchema>

export const RestartRequestedSchema = Type.Object({ app: AppName, type: Type.Optional(ProcessType) }, Strict)
export type RestartRequestedData = Static<typeof RestartRequestedSchema>

/** An event of an `app.<name>` stream as readers see it: the newest version of its type (certificate events are in `CertEvent`). */
export type AppEvent =
  | RecordedEvent<'AppCreated', AppCreatedData>
  | RecordedEvent<'AppDestroyed', AppDestroyedData>
  | RecordedEvent<'ConfigSet', ConfigSetData>
  | RecordedEvent<'ConfigUnset', ConfigUnsetData>
  | RecordedEvent<'AppTransferred', AppTransferredData>
  | RecordedEvent<'CollaboratorAdded', CollaboratorAddedData>
  | RecordedEvent<'CollaboratorRemoved', CollaboratorRemovedData>
  | RecordedEvent<'ReleaseCreated', ReleaseCreatedData>
  | RecordedEvent<'FormationScaled', FormationScaledData>
  | RecordedEvent<'DomainAdded', DomainAddedData>
  | RecordedEvent<'DomainRemoved', DomainRemovedData>
  | RecordedEvent<'LimitsSet', LimitsSetData>
  | RecordedEvent<'LimitsUnset', LimitsUnsetData>
  | RecordedEvent<'MaintenanceSet', MaintenanceSetData>
  | RecordedEvent<'DrainAdded', DrainAddedData>
  | RecordedEvent<'DrainRemoved', DrainRemovedData>
  | RecordedEvent<'RestartRequested', RestartRequestedData>
  | CertEvent

/** Events of `app.<name>` streams. */
export const appEvents: EventDefinition[] = [
  {
    type: 'AppCreated',
    version: 1,
    stream: 'app',
    description: 'An app was created.',
    schema: AppCreatedSchema,
  },
  {
    type: 'AppDestroyed',
    version: 1,
    stream: 'app',
    description: 'An app was destroyed.',
    schema: AppDestroyedSchema,
  },
  {
    type: 'ConfigSet',
    version: 1,
    stream: 'app',
    description: 'Config values were set.',
    schema: ConfigSetSchema,
  },
  {
    type: 'ConfigUnset',
    version: 1,
    stream: 'app',
    description: 'Config keys were removed.',
    schema: ConfigUnsetSchema,
  },
  {
    type: 'AppTransferred',
    version: 1,
    stream: 'app',
    description: 'An app got a new owner.',
    schema: AppTransferredSchema,
  },
  {
    type: 'CollaboratorAdded',
    version: 1,
    stream: 'app',
    description: 'A user may now use the app (config, releases, scale, domains, push).',
    schema: CollaboratorAddedSchema,
  },
  {
    type: 'CollaboratorRemoved',
    version: 1,
    stream: 'app',
    description: 'A user may no longer use the app.',
    schema: CollaboratorRemovedSchema,
  },
  {
    type: 'ReleaseCreated',
    version: 1,
    stream: 'app',
    description: 'A new release: an image (none for v1) with a config and limits snapshot; the scheduler runs it.',
    schema: ReleaseCreatedSchema,
  },
  {
    type: 'FormationScaled',
    version: 1,
    stream: 'app',
    description: 'How many processes of each named type should run (types not named keep theirs).',
    schema: FormationScaledSchema,
  },
  {
    type: 'DomainAdded',
    version: 1,
    stream: 'app',
    description: 'A custom domain routes to the app.',
    schema: DomainAddedSchema,
  },
  {
    type: 'DomainRemoved',
    version: 1,
    stream: 'app',
    description: 'A custom domain no longer routes to the app.',
    schema: DomainRemovedSchema,
  },
  {
    type: 'LimitsSet',
    version: 1,
    stream: 'app',
    description: 'Memory and CPU limits per process type were set.',
    schema: LimitsSetSchema,
  },
  {
    type: 'LimitsUnset',
    version: 1,
    stream: 'app',
    description: 'Memory and CPU limits per process type were removed.',
    schema: LimitsUnsetSchema,
  },
  {
    type: 'MaintenanceSet',
    version: 1,
    stream: 'app',
    description: 'Maintenance mode was turned on or off (the router answers 503 while on).',
    schema: MaintenanceSetSchema,
  },
  {
    type: 'DrainAdded',
    version: 1,
    stream: 'app',
    description: "A log drain: the app's lines are also sent to this URL (syslog://, syslog+tls:// or https://).",
    schema: DrainAddedSchema,
  },
  {
    type: 'DrainRemoved',
    version: 1,
    stream: 'app',
    description: 'A log drain was removed.',
    schema: DrainRemovedSchema,
  },
  {
    type: 'RestartRequested',
    version: 1,
    stream: 'app',
    description: "Restart an app's processes (one type, or all): the scheduler starts new ones together, then drains and stops the old ones.",
    schema: RestartRequestedSchema,
  },
]
