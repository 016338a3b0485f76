import type { WharfConfig } from '../core/config.js'
import type { Paths } from '../core/paths.js'

/** What every part of the platform needs to start: the config and where its files go. */
export interface InfraContext {
  cfg: WharfConfig
  paths: Paths
  /** Progress lines for the person running `make up`. */
  say(line: string): void
}

export interface PartStatus {
  up: boolean
  /** Where it answers: a URL or socket. */
  address: string
  pid?: number
  version?: string
  detail?: string
}

/**
 * One real part (NATS, Postgres, nginx, registry, Docker engine, the Wharf services). `start` is
 * idempotent: a running part is left alone and reported as such.
 */
export interface Part {
  name: string
  /** Names of the parts that must be up before this one starts (the registry needs the store). */
  after?(ctx: InfraContext): readonly string[]
  status(ctx: InfraContext): Promise<PartStatus>
  /** Starts the part unless it already runs; waits until it answers. */
  start(ctx: InfraContext): Promise<'started' | 'running'>
  /** Stops what Wharf started, by recorded pid; keeps the data. */
  stop(ctx: InfraContext): Promise<'stopped' | 'not running'>
  /**
   * For the supervisor: the pid of each of its processes, undefined for one that is not running (then
   * `start` brings it back). Omitted, or an empty list, for a part Wharf does not run (an external one).
   */
  processes?(ctx: InfraContext): (number | undefined)[]
  /**
   * Its main process forks workers that outlive it and keep its ports (nginx): the supervisor stops
   * them, by the pids it saw, before it starts the part again.
   */
  orphanedWorkers?: boolean
}
