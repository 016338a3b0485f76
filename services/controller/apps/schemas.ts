import Type from 'typebox'
import {
  AppName,
  ConfigKey,
  ConfigKeyPattern,
  ConfigValue,
  CpuLimit,
  DomainName,
  MemoryLimit,
  ProcessType,
  Quantity,
  Strict,
  UserName,
} from '../../../domain/index.js'

/** API schemas of the app routes: every body, param, query and answer is closed (no unknown fields). */

export const AppParams = Type.Object({ app: AppName }, Strict)
export const ErrorOut = Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) })

/** Most keys one config:set or config:unset may name. */
export const MAX_KEYS_PER_CALL = 100

export const ConfigValues = Type.Record(ConfigKeyPattern, ConfigValue, { additionalProperties: false, maxProperties: MAX_KEYS_PER_CALL })
export const ConfigOut = Type.Object({ values: Type.Record(Type.String(), Type.String()) }, Strict)

export const LimitsIn = Type.Object(
  {
    memory: Type.Optional(Type.Record(ProcessType, MemoryLimit, { additionalProperties: false, maxProperties: 100 })),
    cpu: Type.Optional(Type.Record(ProcessType, CpuLimit, { additionalProperties: false, maxProperties: 100 })),
  },
  Strict,
)
export const LimitsOut = Type.Object({ memory: Type.Record(Type.String(), Type.String()), cpu: Type.Record(Type.String(), Type.Number()) }, Strict)
export const LimitsUnsetIn = Type.Object(
  {
    memory: Type.Optional(Type.Array(ProcessType, { maxItems: 100 })),
    cpu: Type.Optional(Type.Array(ProcessType, { maxItems: 100 })),
  },
  Strict,
)

export const FormationIn = Type.Record(ProcessType, Quantity, { additionalProperties: false, minProperties: 1, maxProperties: 100 })
export const FormationOut = Type.Object({ formation: Type.Record(Type.String(), Type.Integer()) }, Strict)

export const ReleaseOut = Type.Object(
  {
    app: Type.String(),
    version: Type.Integer(),
    image: Type.Union([Type.String(), Type.Null()]),
    digest: Type.Union([Type.String(), Type.Null()]),
    port: Type.Union([Type.Integer(), Type.Null()]),
    procfile: Type.Record(Type.String(), Type.String()),
    configKeys: Type.Array(Type.String()),
    /** sha256 of the sorted KEY=value lines, 16 hex digits: equal configs have equal hashes. */
    configHash: Type.String(),
    limits: LimitsOut,
    by: Type.String(),
    summary: Type.String(),
    build: Type.Union([Type.String(), Type.Null()]),
    rollbackOf: Type.Union([Type.Integer(), Type.Null()]),
    created: Type.String(),
  },
  Strict,
)
export const ReleaseInfoOut = Type.Object({ ...ReleaseOut.properties, config: Type.Record(Type.String(), Type.String()) }, Strict)

export const AppOut = Type.Object(
  {
    name: Type.String(),
    owner: Type.String(),
    created: Type.String(),
    url: Type.String(),
  },
  Strict,
)
export const AppInfoOut = Type.Object(
  {
    ...AppOut.properties,
    maintenance: Type.Boolean(),
    release: Type.Union([ReleaseOut, Type.Null()]),
    domains: Type.Array(Type.String()),
    formation: Type.Record(Type.String(), Type.Integer()),
    collaborators: Type.Array(Type.String()),
  },
  Strict,
)

export { AppName, DomainName, ProcessType, UserName, ConfigKey }
