import type pg from 'pg'
import type { PlatformStore } from '../core/backups.js'
import type { WharfConfig } from '../core/config.js'
import type { HealthReport } from '../core/health-socket.js'
import type { Logger } from '../core/log.js'
import type { ObjectStores } from '../core/objectstore/index.js'
import type { Catalogue, EventStore } from '../events/index.js'
import type { LogStream } from '../logs/index.js'

/** What every service gets from the composition root: config read once, and the shared adapters. */
export interface ServiceDeps {
  cfg: WharfConfig
  log: Logger
  store: EventStore
  pool: pg.Pool
  catalogue: Catalogue
  /** The store, one ObjectStore per bucket; undefined when no S3 endpoint is configured. */
  objects: ObjectStores | undefined
  /** Backups and event-log exports in the store (the store service's), for the controller's admin routes. */
  platform: PlatformStore
  /** The log plane's NATS connection (the stream of log lines, the logger's requests). */
  logs: LogStream
  /** The names of the services running in this process. */
  running: readonly string[]
  /**
   * The health of another service of this process (`RunningService.health`), for the controller's
   * `/healthz`: undefined while it has not started (or has no health of its own).
   */
  healthOf(service: string): Promise<HealthReport | undefined>
}

export type { HealthReport } from '../core/health-socket.js'

/** A running service: stops cleanly (finishes in-flight work, releases what it holds). */
export interface RunningService {
  stop(): Promise<void>
  health?(): Promise<HealthReport>
}

/**
 * The services `make up` runs in the workers' process, apart from the controller and the projector
 * (the command path: a `config:set` waits for the projector's read models), so that their consumers,
 * Docker calls and log lines never hold the event loop a command passes through.
 */
export const WORKERS: readonly string[] = ['scheduler', 'publisher', 'logger', 'logspout', 'backups', 'webhooks']

export interface ServiceDefinition {
  name: string
  /** One line for `--help`. */
  description: string
  start(deps: ServiceDeps): Promise<RunningService>
}

/**
 * Parses `--only a,b` against the known services. No `--only`: all of them. Throws on an unknown
 * name, listing the known ones.
 */
export function selectServices(argv: readonly string[], known: readonly ServiceDefinition[]): ServiceDefinition[] {
  const x = argv.findIndex((a) => a === '--except' || a.startsWith('--except='))
  if (x >= 0) {
    // `--except builder`: every service but those (`make up` runs the builder in a process of its own).
    const left = selectServices(['--only', argv[x]!.includes('=') ? argv[x]!.slice('--except='.length) : (argv[x + 1] ?? '')], known)
    return known.filter((s) => !left.includes(s))
  }
  const i = argv.findIndex((a) => a === '--only' || a.startsWith('--only='))
  if (i < 0) return [...known]
  const raw = argv[i]!.includes('=') ? argv[i]!.slice('--only='.length) : argv[i + 1]
  if (!raw) throw new Error(`--only needs a list of services: ${known.map((s) => s.name).join(', ')}`)
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const unknown = names.filter((n) => !known.some((s) => s.name === n))
  if (unknown.length) throw new Error(`unknown service ${unknown.join(', ')}; known: ${known.map((s) => s.name).join(', ')}`)
  // Keep the start order of `known` (dependencies first), whatever order was asked for.
  return known.filter((s) => names.includes(s.name))
}
