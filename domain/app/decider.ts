import { createHash } from 'node:crypto'
import type { Decider } from '../decider.js'
import { WharfError } from '../../core/errors.js'
import { covers, defaultCertName, type ValidatedPair } from '../../core/tls.js'
import type { AppEvent, ReleaseCreatedData } from './events.js'
import type { NewEvent, RecordedEvent } from '../../events/index.js'
import { drainId, parseDrainUrl } from './drains.js'
import { isReservedAppName } from './names.js'
import { narrow } from '../catalogue.js'
import { checkPlacement, isPlacementKey } from '../runtime/placement.js'

/** Who runs a command: a signed-in user, or the platform itself (the release manager). */
export type Actor = { kind: 'user'; username: string; admin: boolean } | { kind: 'system' }

export type Config = Record<string, string>
export interface Limits {
  memory: Record<string, string>
  cpu: Record<string, number>
}

/** One release as the app stream knows it. */
export interface Release {
  version: number
  image?: string
  digest?: string
  procfile: Record<string, string>
  port?: number
  config: Config
  limits: Limits
  build?: string
}

/** What an app's stream says now. `exists` is false before creation and after destruction. */
export interface AppState {
  exists: boolean
  name: string
  /**
   * The seq of the `AppCreated` that began this app (0 before): a name reused after `apps:destroy` is
   * a new app, and what was pushed to the earlier one is never released into it.
   */
  incarnation: number
  owner: string
  collaborators: string[]
  config: Config
  limits: Limits
  formation: Record<string, number>
  domains: string[]
  /** TLS certificates by name (what decisions need; the chain and key stay in the events). */
  certs: Record<string, CertState>
  /** Domain -> the name of the certificate the router serves it with. */
  tls: Record<string, string>
  maintenance: boolean
  /** Log drains: id -> URL. */
  drains: Record<string, string>
  releases: Release[]
  /** Build ids already released: the release manager's idempotency. */
  builds: string[]
  /**
   * A change that is not in a release yet. An append of several events is not atomic: a command
   * may write its change (`ConfigSet`) and lose the race for its `ReleaseCreated`; the next command
   * on the stream then makes that release first, so no change goes unreleased.
   */
  pending: { by: string; summary: string } | undefined
}

/** A certificate as the app stream knows it. */
export interface CertState {
  commonName: string
  sans: string[]
  notBefore: string
  notAfter: string
  fingerprint: string
}

/** Most certificates one app may hold. */
export const MAX_CERTS_PER_APP = 100

/** Most log drains one app may have. */
export const MAX_DRAINS_PER_APP = 10

/** Most processes of one type an app may run (the event schema's `Quantity` bound too). */
export const MAX_PROCESSES_PER_TYPE = 100

/** Total size of an app's config (keys and values), bytes: keeps a release event well under NATS's 1 MiB. */
export const MAX_CONFIG_BYTES = 256 * 1024

export type AppCommand =
  | { type: 'CreateApp'; by: Actor; name: string }
  | { type: 'DestroyApp'; by: Actor; confirm: string }
  | { type: 'TransferApp'; by: Actor; to: string }
  | { type: 'SetConfig'; by: Actor; values: Config }
  | { type: 'UnsetConfig'; by: Actor; keys: string[] }
  | { type: 'Rollback'; by: Actor; version?: number }
  | { type: 'Scale'; by: Actor; formation: Record<string, number> }
  | { type: 'AddDomain'; by: Actor; domain: string }
  | { type: 'RemoveDomain'; by: Actor; domain: string }
  /** A certificate already validated (core/tls.ts validatePair); no `name`: one made from its host name. */
  | { type: 'AddCert'; by: Actor; name?: string; cert: ValidatedPair }
  /** `now` (ISO 8601): an expired certificate is not attached. */
  | { type: 'AttachCert'; by: Actor; name: string; domain: string; now: string }
  | { type: 'DetachCert'; by: Actor; name: string; domain: string }
  | { type: 'RemoveCert'; by: Actor; name: string }
  | { type: 'SetLimits'; by: Actor; memory: Record<string, string>; cpu: Record<string, number> }
  | { type: 'UnsetLimits'; by: Actor; memory: string[]; cpu: string[] }
  | { type: 'AddCollaborator'; by: Actor; username: string }
  | { type: 'RemoveCollaborator'; by: Actor; username: string }
  | { type: 'SetMaintenance'; by: Actor; enabled: boolean }
  /** A URL as given (checked here: syslog://, syslog+tls:// or https://). */
  | { type: 'AddDrain'; by: Actor; url: string }
  /** By id (`d.<hex>`) or by URL. */
  | { type: 'RemoveDrain'; by: Actor; drain: string }
  /** Restart the processes of one type, or of every type; the scheduler restarts them one by one. */
  | { type: 'RequestRestart'; by: Actor; processType?: string }
  /** From the release manager; `pushedBy` (the user of the push) names the release's author. */
  | {
      type: 'ReleaseBuild'
      by: Actor
      build: string
      image: string
      digest?: string
      procfile: Record<string, string>
      port: number
      pushedBy?: string
      /** The seq of the build's first event: a build begun before the app's incarnation is not released. */
      pushedAt?: number
    }
  /** Only checks that the actor may use the app; decides nothing. */
  | { type: 'CheckAccess'; by: Actor; level: Access }

/**
 * What an actor may do with an app: `use` (config, releases, scale, domains, limits, maintenance,
 * push: owner, collaborators, admins) or `manage` (destroy, transfer, perms: owner and admins).
 */
export type Access = 'use' | 'manage'

export type { AppEvent, ReleaseCreatedData }

export function initialAppState(): AppState {
  return {
    exists: false,
    name: '',
    incarnation: 0,
    owner: '',
    collaborators: [],
    config: {},
    limits: { memory: {}, cpu: {} },
    formation: {},
    domains: [],
    certs: {},
    tls: {},
    maintenance: false,
    drains: {},
    releases: [],
    builds: [],
    pending: undefined,
  }
}

/** Stable hash of a config: sha256 of the sorted `KEY=value` lines, first 16 hex digits. */
export function configHash(config: Config): string {
  const h = createHash('sha256')
  for (const k of Object.keys(config).sort()) h.update(`${k}=${config[k]}\n`)
  return h.digest('hex').slice(0, 16)
}

function actorName(by: Actor): string {
  return by.kind === 'user' ? by.username : 'system'
}

function notFound(name: string): WharfError {
  return new WharfError('WHARF_NOT_FOUND', `no app ${name}`, { details: { app: name } })
}

/**
 * Throws unless `by` may act on the app at `level`. Someone who may not see the app gets
 * `WHARF_NOT_FOUND` (so an app's existence does not leak); a collaborator asking to manage gets
 * `WHARF_FORBIDDEN`.
 */
export function checkAccess(state: AppState, by: Actor, level: Access, name = state.name): void {
  if (!state.exists) throw notFound(name)
  if (by.kind === 'system' || by.admin || by.username === state.owner) return
  if (!state.collaborators.includes(by.username)) throw notFound(name)
  if (level === 'manage') throw new WharfError('WHARF_FORBIDDEN', `only the owner of ${state.name} (or an admin) may do this`, { details: { app: state.name } })
}

function latest(state: AppState): Release | undefined {
  return state.releases[state.releases.length - 1]
}

/** The release event that follows a change of config or limits (Deis: each change is a release). */
function nextRelease(state: AppState, by: Actor | string, summary: string, change: Partial<Omit<Release, 'version'>> & { rollbackOf?: number }): NewEvent {
  const prev = latest(state)
  const data: ReleaseCreatedData = {
    app: state.name,
    version: (prev?.version ?? 0) + 1,
    procfile: prev?.procfile ?? {},
    config: state.config,
    limits: state.limits,
    by: typeof by === 'string' ? by : actorName(by),
    summary,
  }
  const image = 'image' in change ? change.image : prev?.image
  const digest = 'digest' in change ? change.digest : prev?.digest
  const port = 'port' in change ? change.port : prev?.port
  if (image !== undefined) data.image = image
  if (digest !== undefined) data.digest = digest
  if (port !== undefined) data.port = port
  if (change.procfile) data.procfile = change.procfile
  if (change.config) data.config = change.config
  if (change.limits) data.limits = change.limits
  if (change.build) data.build = change.build
  if (change.rollbackOf) data.rollbackOf = change.rollbackOf
  return { type: 'ReleaseCreated', data }
}

function list(items: readonly string[]): string {
  return items.length <= 5 ? items.join(', ') : `${items.slice(0, 5).join(', ')} and ${items.length - 5} more`
}

function configBytes(config: Config): number {
  let n = 0
  for (const [k, v] of Object.entries(config)) n += Buffer.byteLength(k) + Buffer.byteLength(v)
  return n
}

function decide(command: AppCommand, state: AppState): NewEvent[] {
  if (command.type === 'CreateApp' || !state.exists || !state.pending) return decideOn(command, state)
  // Access first: a caller who may not see the app must not complete anything on it.
  checkAccess(state, command.by, 'use')
  const completion = nextRelease(state, state.pending.by, state.pending.summary, {})
  const completed = evolve(state, { ...(completion as RecordedEvent), seq: 0 })
  return [completion, ...decideOn(command, completed)]
}

function decideOn(command: AppCommand, state: AppState): NewEvent[] {
  const by = command.by
  if (command.type === 'CreateApp') {
    const who = actorName(by)
    if (state.exists) throw new WharfError('WHARF_EXISTS', `app ${command.name} exists already`, { details: { app: command.name } })
    if (by.kind !== 'user') throw new WharfError('WHARF_FORBIDDEN', 'only a user may create an app')
    if (isReservedAppName(command.name)) {
      throw new WharfError('WHARF_RESERVED', `the app name ${command.name} is reserved for the platform: choose another`, { details: { app: command.name } })
    }
    const created: AppState = { ...initialAppState(), exists: true, name: command.name, owner: by.username }
    return [{ type: 'AppCreated', data: { app: command.name, owner: by.username } }, nextRelease(created, by, `${who} created ${command.name}`, {})]
  }
  checkAccess(state, by, accessFor(command))
  switch (command.type) {
    case 'CheckAccess':
      return []
    case 'DestroyApp':
    case 'TransferApp':
    case 'AddCollaborator':
    case 'RemoveCollaborator':
      return decideOwnership(command, state)
    case 'SetConfig':
    case 'UnsetConfig':
    case 'SetLimits':
    case 'UnsetLimits':
      return decideSettings(command, state)
    case 'Rollback':
    case 'ReleaseBuild':
      return decideRelease(command, state)
    case 'Scale':
    case 'RequestRestart':
      return decideProcesses(command, state)
    case 'AddDomain':
    case 'RemoveDomain':
    case 'SetMaintenance':
    case 'AddDrain':
    case 'RemoveDrain':
      return decideRouting(command, state)
    case 'AddCert':
    case 'AttachCert':
    case 'DetachCert':
    case 'RemoveCert':
      return decideCert(command, state)
    default:
      return unhandledCommand(command)
  }
}

/** The access a command needs: `manage` to destroy, transfer or change collaborators, else `use`. */
function accessFor(command: Exclude<AppCommand, { type: 'CreateApp' }>): Access {
  switch (command.type) {
    case 'CheckAccess':
      return command.level
    case 'DestroyApp':
    case 'TransferApp':
    case 'AddCollaborator':
    case 'RemoveCollaborator':
      return 'manage'
    default:
      return 'use'
  }
}

type OwnershipCommand = Extract<AppCommand, { type: 'DestroyApp' | 'TransferApp' | 'AddCollaborator' | 'RemoveCollaborator' }>

/** Destroy, transfer and collaborators (`manage`), once access is checked. */
function decideOwnership(command: OwnershipCommand, state: AppState): NewEvent[] {
  const app = state.name
  switch (command.type) {
    case 'DestroyApp':
      if (command.confirm !== app) throw new WharfError('WHARF_INVALID', `confirm with the app's name: ${app}`, { details: { app } })
      return [{ type: 'AppDestroyed', data: { app } }]
    case 'TransferApp':
      if (command.to === state.owner) return []
      return [{ type: 'AppTransferred', data: { app, from: state.owner, to: command.to } }]
    case 'AddCollaborator':
      if (command.username === state.owner) throw new WharfError('WHARF_INVALID', `${command.username} owns ${app} already`, { details: { app } })
      if (state.collaborators.includes(command.username)) {
        throw new WharfError('WHARF_EXISTS', `${command.username} is a collaborator on ${app} already`, { details: { app, username: command.username } })
      }
      return [{ type: 'CollaboratorAdded', data: { app, username: command.username } }]
    case 'RemoveCollaborator':
      if (!state.collaborators.includes(command.username)) {
        throw new WharfError('WHARF_NOT_FOUND', `${command.username} is not a collaborator on ${app}`, { details: { app, username: command.username } })
      }
      return [{ type: 'CollaboratorRemoved', data: { app, username: command.username } }]
    default:
      return unhandledCommand(command)
  }
}

type SettingsCommand = Extract<AppCommand, { type: 'SetConfig' | 'UnsetConfig' | 'SetLimits' | 'UnsetLimits' }>

/** Config and limits: each change is also a release, once access is checked. */
function decideSettings(command: SettingsCommand, state: AppState): NewEvent[] {
  const by = command.by
  const who = actorName(by)
  const app = state.name
  switch (command.type) {
    case 'SetConfig': {
      for (const [k, v] of Object.entries(command.values)) {
        const why = isPlacementKey(k) ? checkPlacement(k, v) : undefined
        if (why) throw new WharfError('WHARF_INVALID', why, { details: { app, key: k } })
      }
      const changed = Object.keys(command.values).filter((k) => state.config[k] !== command.values[k])
      if (changed.length === 0) return []
      const config = { ...state.config, ...command.values }
      if (configBytes(config) > MAX_CONFIG_BYTES) {
        throw new WharfError('WHARF_TOO_LARGE', `the config of ${app} would be larger than ${MAX_CONFIG_BYTES / 1024} KiB`, { details: { app } })
      }
      const values = Object.fromEntries(changed.map((k) => [k, command.values[k]!]))
      return [{ type: 'ConfigSet', data: { app, values } }, nextRelease(state, by, `${who} set ${list(changed)}`, { config })]
    }
    case 'UnsetConfig': {
      // Keys that are not set are ignored (Heroku's behaviour); nothing set -> no new release.
      const keys = [...new Set(command.keys)].filter((k) => k in state.config)
      if (keys.length === 0) return []
      const config = { ...state.config }
      for (const k of keys) delete config[k]
      return [{ type: 'ConfigUnset', data: { app, keys } }, nextRelease(state, by, `${who} unset ${list(keys)}`, { config })]
    }
    case 'SetLimits': {
      const memory = Object.fromEntries(Object.entries(command.memory).filter(([t, v]) => state.limits.memory[t] !== v))
      const cpu = Object.fromEntries(Object.entries(command.cpu).filter(([t, v]) => state.limits.cpu[t] !== v))
      const names = [...Object.keys(memory).map((t) => `memory ${t}=${memory[t]}`), ...Object.keys(cpu).map((t) => `cpu ${t}=${cpu[t]}`)]
      if (names.length === 0) return []
      const limits = { memory: { ...state.limits.memory, ...memory }, cpu: { ...state.limits.cpu, ...cpu } }
      return [{ type: 'LimitsSet', data: { app, memory, cpu } }, nextRelease(state, by, `${who} set limits ${list(names)}`, { limits })]
    }
    case 'UnsetLimits': {
      const memory = [...new Set(command.memory)].filter((t) => t in state.limits.memory)
      const cpu = [...new Set(command.cpu)].filter((t) => t in state.limits.cpu)
      if (memory.length + cpu.length === 0) return []
      const limits = { memory: { ...state.limits.memory }, cpu: { ...state.limits.cpu } }
      for (const t of memory) delete limits.memory[t]
      for (const t of cpu) delete limits.cpu[t]
      const names = [...memory.map((t) => `memory ${t}`), ...cpu.map((t) => `cpu ${t}`)]
      return [{ type: 'LimitsUnset', data: { app, memory, cpu } }, nextRelease(state, by, `${who} unset limits ${list(names)}`, { limits })]
    }
    default:
      return unhandledCommand(command)
  }
}

type ReleaseCommand = Extract<AppCommand, { type: 'Rollback' | 'ReleaseBuild' }>

/** A rollback, or the release of a build (the release manager), once access is checked. */
function decideRelease(command: ReleaseCommand, state: AppState): NewEvent[] {
  const by = command.by
  const who = actorName(by)
  const app = state.name
  switch (command.type) {
    case 'Rollback': {
      const current = latest(state)
      if (!current) throw new WharfError('WHARF_INVALID', `${app} has no release`)
      const target = command.version ?? current.version - 1
      if (target < 1) throw new WharfError('WHARF_INVALID', `${app} has no release before v${current.version} to roll back to`, { details: { app } })
      const to = state.releases.find((r) => r.version === target)
      if (!to) throw new WharfError('WHARF_NOT_FOUND', `${app} has no release v${target}`, { details: { app, version: target } })
      if (to.version === current.version)
        throw new WharfError('WHARF_INVALID', `v${target} is the current release of ${app}`, { details: { app, version: target } })
      // A release from before the first build has no image: rolling back to it would stop every process.
      if (to.image === undefined && current.image !== undefined) {
        throw new WharfError('WHARF_INVALID', `v${target} of ${app} has no image (it is from before the first build): roll back to a release with one`, {
          details: { app, version: target },
        })
      }
      // One event (an append of several is not atomic): the release's config and limits snapshot is the new state.
      return [
        nextRelease(state, by, `${who} rolled back to v${to.version}`, {
          image: to.image,
          digest: to.digest,
          port: to.port,
          procfile: to.procfile,
          config: to.config,
          limits: to.limits,
          rollbackOf: to.version,
        }),
      ]
    }
    case 'ReleaseBuild': {
      if (state.builds.includes(command.build)) return []
      if (command.pushedAt !== undefined && command.pushedAt < state.incarnation) {
        throw new WharfError('WHARF_NOT_FOUND', `the build ${command.build} was pushed to an earlier app named ${app}, since destroyed`, {
          details: { app, build: command.build },
        })
      }
      const change: Partial<Release> = { image: command.image, digest: command.digest, procfile: command.procfile, port: command.port, build: command.build }
      const author = command.pushedBy ?? who
      const events: NewEvent[] = [nextRelease(state, author, `${author} deployed ${command.image}`, change)]
      // The first build runs one web process, as Deis did.
      if (Object.keys(state.formation).length === 0) events.push({ type: 'FormationScaled', data: { app, formation: { web: 1 } } })
      return events
    }
    default:
      return unhandledCommand(command)
  }
}

type ProcessesCommand = Extract<AppCommand, { type: 'Scale' | 'RequestRestart' }>

/** The formation and restarts, once access is checked. */
function decideProcesses(command: ProcessesCommand, state: AppState): NewEvent[] {
  const app = state.name
  switch (command.type) {
    case 'Scale': {
      const procfile = latest(state)?.procfile ?? {}
      const built = latest(state)?.image !== undefined
      const outOfRange = Object.entries(command.formation).filter(([, n]) => !Number.isInteger(n) || n < 0 || n > MAX_PROCESSES_PER_TYPE)
      if (outOfRange.length) {
        throw new WharfError(
          'WHARF_INVALID',
          `a process type runs 0 to ${MAX_PROCESSES_PER_TYPE} processes; not ${list(outOfRange.map(([t, n]) => `${t}=${n}`))}`,
          {
            details: { app, types: outOfRange.map(([t]) => t), maximum: MAX_PROCESSES_PER_TYPE },
          },
        )
      }
      // With a build, the types are the Procfile's (plus `web`, the image's CMD); before any build, any valid type.
      if (built) {
        const unknown = Object.keys(command.formation).filter((t) => t !== 'web' && !(t in procfile))
        if (unknown.length) {
          throw new WharfError('WHARF_INVALID', `the Procfile of ${app} has no process type ${list(unknown)}`, { details: { app, types: unknown } })
        }
      }
      const formation = Object.fromEntries(Object.entries(command.formation).filter(([t, n]) => (state.formation[t] ?? 0) !== n || !(t in state.formation)))
      if (Object.keys(formation).length === 0) return []
      return [{ type: 'FormationScaled', data: { app, formation } }]
    }
    case 'RequestRestart': {
      const t = command.processType
      if (t !== undefined && !(t in state.formation)) {
        throw new WharfError('WHARF_INVALID', `${app} has no process type ${t} (it has: ${Object.keys(state.formation).join(', ') || 'none yet'})`, {
          details: { app, type: t },
        })
      }
      return [{ type: 'RestartRequested', data: t === undefined ? { app } : { app, type: t } }]
    }
    default:
      return unhandledCommand(command)
  }
}

type RoutingCommand = Extract<AppCommand, { type: 'AddDomain' | 'RemoveDomain' | 'SetMaintenance' | 'AddDrain' | 'RemoveDrain' }>

/** Domains, maintenance mode and log drains, once access is checked. */
function decideRouting(command: RoutingCommand, state: AppState): NewEvent[] {
  const app = state.name
  switch (command.type) {
    case 'AddDomain':
      if (state.domains.includes(command.domain)) return []
      return [{ type: 'DomainAdded', data: { app, domain: command.domain } }]
    case 'RemoveDomain':
      if (!state.domains.includes(command.domain)) {
        throw new WharfError('WHARF_NOT_FOUND', `${app} has no domain ${command.domain}`, { details: { app, domain: command.domain } })
      }
      return [{ type: 'DomainRemoved', data: { app, domain: command.domain } }]
    case 'SetMaintenance':
      if (state.maintenance === command.enabled) return []
      return [{ type: 'MaintenanceSet', data: { app, enabled: command.enabled } }]
    case 'AddDrain': {
      const { url } = parseDrainUrl(command.url)
      const id = drainId(url)
      if (state.drains[id] !== undefined) throw new WharfError('WHARF_EXISTS', `${app} drains to ${url} already (${id})`, { details: { app, id } })
      if (Object.keys(state.drains).length >= MAX_DRAINS_PER_APP) {
        throw new WharfError('WHARF_INVALID', `${app} has ${MAX_DRAINS_PER_APP} drains, the most an app may have: remove one first`, { details: { app } })
      }
      return [{ type: 'DrainAdded', data: { app, id, url } }]
    }
    case 'RemoveDrain': {
      const id = command.drain in state.drains ? command.drain : Object.keys(state.drains).find((k) => state.drains[k] === command.drain.trim())
      if (!id) throw new WharfError('WHARF_NOT_FOUND', `${app} has no drain ${command.drain}`, { details: { app, drain: command.drain } })
      return [{ type: 'DrainRemoved', data: { app, id } }]
    }
    default:
      return unhandledCommand(command)
  }
}

function noCert(app: string, name: string): WharfError {
  return new WharfError('WHARF_NOT_FOUND', `${app} has no certificate ${name}`, { details: { app, name } })
}

type CertCommand = Extract<AppCommand, { type: 'AddCert' | 'AttachCert' | 'DetachCert' | 'RemoveCert' }>

/** certs:add|attach|detach|remove, once access is checked. */
function decideCert(command: CertCommand, state: AppState): NewEvent[] {
  const app = state.name
  switch (command.type) {
    case 'AddCert': {
      const { cert } = command
      const same = Object.entries(state.certs).find(([, c]) => c.fingerprint === cert.fingerprint)
      // The same certificate again: a no-op (under its name, or when no name is asked for).
      if (same && (command.name === undefined || command.name === same[0])) return []
      if (same) throw new WharfError('WHARF_EXISTS', `this certificate is on ${app} already, as ${same[0]}`, { details: { app, name: same[0] } })
      if (command.name !== undefined && command.name in state.certs) {
        throw new WharfError('WHARF_EXISTS', `${app} has a certificate named ${command.name} already`, { details: { app, name: command.name } })
      }
      if (Object.keys(state.certs).length >= MAX_CERTS_PER_APP) {
        throw new WharfError('WHARF_INVALID', `${app} has ${MAX_CERTS_PER_APP} certificates, the most an app may have: remove one first`, { details: { app } })
      }
      const name = command.name ?? freeName(state, defaultCertName(cert))
      const { commonName, sans, notBefore, notAfter, fingerprint, certificate, privateKey } = cert
      return [{ type: 'CertAdded', data: { app, name, commonName, sans, notBefore, notAfter, fingerprint, certificate, privateKey } }]
    }
    case 'AttachCert': {
      const { name, domain } = command
      const cert = state.certs[name]
      if (!cert) throw noCert(app, name)
      if (!state.domains.includes(domain)) {
        throw new WharfError('WHARF_INVALID', `${domain} is not a domain of ${app} (add it first: wharf domains:add ${domain})`, { details: { app, domain } })
      }
      if (!covers(cert, domain)) {
        const names = cert.sans.length ? cert.sans : [cert.commonName]
        throw new WharfError('WHARF_INVALID', `the certificate ${name} is not valid for ${domain} (it is for ${list(names)})`, {
          details: { app, name, domain },
        })
      }
      if (Date.parse(cert.notAfter) <= Date.parse(command.now)) {
        throw new WharfError('WHARF_INVALID', `the certificate ${name} expired on ${cert.notAfter}`, { details: { app, name, notAfter: cert.notAfter } })
      }
      if (state.tls[domain] === name) return []
      return [{ type: 'CertAttached', data: { app, name, domain } }]
    }
    case 'DetachCert': {
      const { name, domain } = command
      if (!(name in state.certs)) throw noCert(app, name)
      if (state.tls[domain] !== name) {
        throw new WharfError('WHARF_NOT_FOUND', `the certificate ${name} is not attached to ${domain}`, { details: { app, name, domain } })
      }
      return [{ type: 'CertDetached', data: { app, name, domain } }]
    }
    case 'RemoveCert':
      if (!(command.name in state.certs)) throw noCert(app, command.name)
      // Heroku's way: removing detaches it from its domains (they go back to plain HTTP).
      return [{ type: 'CertRemoved', data: { app, name: command.name } }]
    default:
      return unhandledCommand(command)
  }
}

/** `base`, else `base-2`, `base-3`... whichever is free first. */
function freeName(state: AppState, base: string): string {
  if (!(base in state.certs)) return base
  for (let i = 2; ; i++) {
    const suffix = `-${i}`
    const name = base.slice(0, 50 - suffix.length).replace(/-+$/, '') + suffix
    if (!(name in state.certs)) return name
  }
}

/** The user name of an event's actor (`user:alice` -> `alice`, anything else -> `system`). */
function actorOfEvent(event: RecordedEvent): string {
  return event.actor.startsWith('user:') ? event.actor.slice('user:'.length) : 'system'
}

/** Notes a change that needs a release (joined to one already pending). */
function pend(state: AppState, event: RecordedEvent, what: string): AppState['pending'] {
  const summary = `${actorOfEvent(event)} ${what}`
  return state.pending ? { by: state.pending.by, summary: `${state.pending.summary}; ${summary}`.slice(0, 1000) } : { by: actorOfEvent(event), summary }
}

function evolve(state: AppState, event: RecordedEvent): AppState {
  const e = narrow<AppEvent>(event)
  switch (e.type) {
    case 'AppCreated':
      return {
        ...initialAppState(),
        exists: true,
        name: e.data.app,
        incarnation: event.seq,
        owner: e.data.owner,
        pending: { by: actorOfEvent(event), summary: `${actorOfEvent(event)} created ${e.data.app}` },
      }
    case 'AppDestroyed':
      return { ...initialAppState(), name: e.data.app }
    case 'AppTransferred':
      return { ...state, owner: e.data.to, collaborators: state.collaborators.filter((u) => u !== e.data.to) }
    case 'ConfigSet':
      return { ...state, config: { ...state.config, ...e.data.values }, pending: pend(state, event, `set ${list(Object.keys(e.data.values))}`) }
    case 'ConfigUnset': {
      const config = { ...state.config }
      for (const k of e.data.keys) delete config[k]
      return { ...state, config, pending: pend(state, event, `unset ${list(e.data.keys)}`) }
    }
    case 'CollaboratorAdded':
      return { ...state, collaborators: [...state.collaborators, e.data.username] }
    case 'CollaboratorRemoved':
      return { ...state, collaborators: state.collaborators.filter((u) => u !== e.data.username) }
    case 'ReleaseCreated': {
      const d = e.data
      const release: Release = { version: d.version, procfile: d.procfile, config: d.config, limits: d.limits }
      if (d.image !== undefined) release.image = d.image
      if (d.digest !== undefined) release.digest = d.digest
      if (d.port !== undefined) release.port = d.port
      if (d.build !== undefined) release.build = d.build
      const next: AppState = {
        ...state,
        releases: [...state.releases, release],
        builds: d.build ? [...state.builds, d.build] : state.builds,
        pending: undefined,
      }
      // A rollback brings back the config and limits of the release it rolls back to.
      return d.rollbackOf === undefined ? next : { ...next, config: d.config, limits: d.limits }
    }
    case 'FormationScaled':
      return { ...state, formation: { ...state.formation, ...e.data.formation } }
    case 'DomainAdded':
      return { ...state, domains: [...state.domains, e.data.domain] }
    case 'DomainRemoved': {
      // A removed domain is no longer served over TLS either.
      const { [e.data.domain]: _detached, ...tls } = state.tls
      return { ...state, domains: state.domains.filter((d) => d !== e.data.domain), tls }
    }
    case 'CertAdded': {
      const { commonName, sans, notBefore, notAfter, fingerprint } = e.data
      return { ...state, certs: { ...state.certs, [e.data.name]: { commonName, sans, notBefore, notAfter, fingerprint } } }
    }
    case 'CertAttached':
      return { ...state, tls: { ...state.tls, [e.data.domain]: e.data.name } }
    case 'CertDetached': {
      const { [e.data.domain]: _detached, ...tls } = state.tls
      return { ...state, tls }
    }
    case 'CertRemoved': {
      const { [e.data.name]: _removed, ...certs } = state.certs
      return { ...state, certs, tls: Object.fromEntries(Object.entries(state.tls).filter(([, n]) => n !== e.data.name)) }
    }
    case 'LimitsSet': {
      const names = [
        ...Object.keys(e.data.memory).map((t) => `memory ${t}=${e.data.memory[t]}`),
        ...Object.keys(e.data.cpu).map((t) => `cpu ${t}=${e.data.cpu[t]}`),
      ]
      const limits = { memory: { ...state.limits.memory, ...e.data.memory }, cpu: { ...state.limits.cpu, ...e.data.cpu } }
      return { ...state, limits, pending: pend(state, event, `set limits ${list(names)}`) }
    }
    case 'LimitsUnset': {
      const limits = { memory: { ...state.limits.memory }, cpu: { ...state.limits.cpu } }
      for (const t of e.data.memory) delete limits.memory[t]
      for (const t of e.data.cpu) delete limits.cpu[t]
      const names = [...e.data.memory.map((t) => `memory ${t}`), ...e.data.cpu.map((t) => `cpu ${t}`)]
      return { ...state, limits, pending: pend(state, event, `unset limits ${list(names)}`) }
    }
    case 'MaintenanceSet':
      return { ...state, maintenance: e.data.enabled }
    case 'RestartRequested':
      return state
    case 'DrainAdded':
      return { ...state, drains: { ...state.drains, [e.data.id]: e.data.url } }
    case 'DrainRemoved': {
      const { [e.data.id]: _removed, ...drains } = state.drains
      return { ...state, drains }
    }
    default:
      return unhandledEvent(e)
  }
}

function unhandledCommand(c: never): never {
  throw new Error(`app decider cannot decide ${(c as { type: string }).type}`)
}

/** Events of the app stream this decider does not know are a bug: the catalogue names them all. */
function unhandledEvent(e: never): never {
  throw new Error(`app decider cannot evolve ${(e as { type: string }).type}`)
}

/** The decider of `app.<name>` streams. */
export const appDecider: Decider<AppState, AppCommand> = { initialState: initialAppState, evolve, decide }
