/**
 * The container-engine port: what Wharf's services need of Docker (Swarm services and their tasks,
 * containers, their events and logs, images), as plain typed objects. Specs keep the engine API's
 * field names (`Image`, `Labels`, `TaskTemplate`...) because they are what is sent, and what the
 * scheduler hashes; everything read back is Wharf's own shape.
 *
 * Adapters: `docker.ts` (dockerode, a real engine) and `memory.ts` (in-memory, for unit tests); both
 * pass `engine.contract.ts`.
 */
import type { Duplex, Readable } from 'node:stream'

/** Why the engine refused a call: an {@link EngineError}'s `reason`, each with the engine API's HTTP status. */
export const ENGINE_ERRORS = {
  /** No such container, service, image or registry repository (404). */
  not_found: 404,
  /** The name is taken, the container is being removed, the version is stale (409). */
  conflict: 409,
  /** The request is not valid: a bad spec, a command that cannot be run (400). */
  invalid: 400,
  /** The engine (or the registry behind it) failed (500). */
  unavailable: 500,
} as const

export type EngineErrorReason = keyof typeof ENGINE_ERRORS

/** A refusal of the engine. `statusCode` is the engine API's status, as dockerode reports it. */
export class EngineError extends Error {
  override name = 'EngineError'
  readonly reason: EngineErrorReason
  readonly statusCode: number

  constructor(reason: EngineErrorReason, message: string, opts: { cause?: unknown; statusCode?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.reason = reason
    this.statusCode = opts.statusCode ?? ENGINE_ERRORS[reason]
  }
}

/** The HTTP status of an engine error (an {@link EngineError} or a raw dockerode one), if any. */
export function engineStatus(err: unknown): number | undefined {
  return (err as { statusCode?: number } | undefined)?.statusCode
}

/** Whether `err` says the thing asked for is not there (404). */
export function isNotFound(err: unknown): boolean {
  return engineStatus(err) === 404
}

/** Socket errors of a call that did not reach a working engine. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH'])

/**
 * Whether `err` says the engine could not be asked: it is down or restarting (its socket refuses the
 * connection or is gone, the connection broke) or it answered 503 (a restarted swarm manager with no
 * leader yet). A passing failure, worth trying again once the engine is back; unlike a refusal (4xx)
 * or an error the engine reports (500).
 */
export function isEngineUnreachable(err: unknown): boolean {
  const status = engineStatus(err)
  if (status !== undefined) return status === 503
  const e = err as { code?: unknown; syscall?: unknown } | undefined
  if (typeof e?.code !== 'string') return false
  // A socket path that is not there: the engine removed it as it died, or has not made it yet.
  if (e.code === 'ENOENT') return e.syscall === 'connect'
  return UNREACHABLE_CODES.has(e.code)
}

/** Labels every one of which a listed object must carry (`key: value`). */
export type LabelFilter = Record<string, string>

// ---- Swarm services -------------------------------------------------------------------------------

/** A Swarm health check (durations in ns). */
export interface HealthcheckSpec {
  Test: string[]
  Interval?: number
  Timeout?: number
  Retries?: number
  StartPeriod?: number
}

/** The container of a service's tasks. */
export interface ServiceContainerSpec {
  Image: string
  Labels?: Record<string, string>
  Env?: string[]
  Command?: string[]
  /** ns. */
  StopGracePeriod?: number
  /** The signal a stop sends first (default the image's STOPSIGNAL, else SIGTERM). */
  StopSignal?: string
  Healthcheck?: HealthcheckSpec
}

export interface TaskTemplate {
  ContainerSpec?: ServiceContainerSpec
  Resources?: { Limits?: { MemoryBytes?: number; NanoCPUs?: number } }
  RestartPolicy?: { Condition?: 'none' | 'on-failure' | 'any'; Delay?: number; MaxAttempts?: number }
  /** A counter: raising it replaces every task (a restart). */
  ForceUpdate?: number
  /** Which nodes may run the tasks (`node.labels.zone==a`), and labels to spread them over. */
  Placement?: { Constraints?: string[]; Preferences?: { Spread: { SpreadDescriptor: string } }[] }
}

/** How Swarm rolls an update (or a rollback); durations in ns. */
export interface UpdatePolicy {
  Parallelism?: number
  Delay?: number
  Order?: 'start-first' | 'stop-first'
  FailureAction?: 'pause' | 'continue' | 'rollback'
  Monitor?: number
  MaxFailureRatio?: number
}

export interface EndpointPort {
  Protocol?: 'tcp' | 'udp'
  TargetPort: number
  PublishedPort?: number
  PublishMode?: 'ingress' | 'host'
}

/** A Swarm service spec (what is created and updated). */
export interface ServiceSpec {
  Name: string
  Labels?: Record<string, string>
  TaskTemplate?: TaskTemplate
  Mode?: { Replicated?: { Replicas?: number } }
  UpdateConfig?: UpdatePolicy
  RollbackConfig?: UpdatePolicy
  EndpointSpec?: { Mode?: 'vip' | 'dnsrr'; Ports?: EndpointPort[] }
}

/** A service as the engine has it. */
export interface ServiceInfo {
  id: string
  /** The version an update must name (a stale one is refused with `conflict`). */
  version: number
  spec: ServiceSpec
  /** The last rolling update: `updating`, `completed`, `paused`, `rollback_started`, `rollback_completed`... */
  updateStatus?: { state: string; message?: string; startedAt?: string }
  /** The spec before the last update (what a rollback goes back to), when the engine keeps one. */
  previousSpec?: ServiceSpec
}

/** One task of a service (one container, once scheduled). */
export interface TaskInfo {
  id: string
  serviceId: string
  /** `running` or `shutdown`. */
  desiredState: string
  /** `new`, `pending`, `starting`, `running`, `complete`, `failed`, `rejected`, `shutdown`... */
  state: string
  /** When `state` was reached (RFC 3339). */
  timestamp: string
  err?: string
  message?: string
  /** The service's task template the task was made from (its labels and ForceUpdate tell which spec). */
  spec: TaskTemplate
  /** Its slot in a replicated service (1, 2, ...); undefined for a global service. */
  slot?: number
  /** The node it was given to. */
  nodeId?: string
  /** Its container, once the node has reported creating it (empty before). */
  containerId?: string
}

// ---- Containers -----------------------------------------------------------------------------------

/** What `create` takes (the engine API's names). */
export interface ContainerSpec {
  Image: string
  Cmd?: string[]
  Env?: string[]
  Labels?: Record<string, string>
  Tty?: boolean
  OpenStdin?: boolean
  StdinOnce?: boolean
  AttachStdin?: boolean
  AttachStdout?: boolean
  AttachStderr?: boolean
  HostConfig?: {
    /** The engine removes the container when it exits. */
    AutoRemove?: boolean
    NetworkMode?: string
    /** bytes. */
    Memory?: number
    /** Memory plus swap, bytes (equal to `Memory`: no swap). */
    MemorySwap?: number
    NanoCpus?: number
    /** The most processes the container may have. */
    PidsLimit?: number
    PortBindings?: Record<string, { HostPort?: string }[]>
    LogConfig?: { Type: string; Config: Record<string, string> }
  }
}

/** A container in a list. */
export interface ContainerSummary {
  id: string
  labels: Record<string, string>
  /** `created`, `running`, `exited`... */
  state: string
  /** When it was created, unix seconds. */
  created: number
}

/** A container as `inspect` tells it. */
export interface ContainerInfo {
  id: string
  image: string
  labels: Record<string, string>
  running: boolean
  exitCode: number
  oomKilled: boolean
  tty: boolean
  /** The image's STOPSIGNAL, when it names one. */
  stopSignal?: string
  /** Its health (`starting`, `healthy`, `unhealthy`) when it has a health check; undefined when not. */
  health?: string
  /** The host ports its ports are published on: `{ '5000/tcp': [41235] }`. */
  ports: Record<string, number[]>
}

/** A container event (the engine's `Type: container` events). */
export interface ContainerEvent {
  /** `create`, `start`, `kill`, `oom`, `die`, `destroy`... */
  action: string
  id: string
  /** unix seconds. */
  time: number
  /** unix ns, when the engine tells. */
  timeNano?: number
  /** The container's labels, and per action: `signal` (kill), `exitCode` (die). */
  attributes: Record<string, string>
}

export interface EventFilter {
  labels?: LabelFilter
  /** Only these actions; default all. */
  actions?: string[]
  /** Replay from this engine time (unix seconds) before following; default from now on. */
  since?: number
}

/** A followed events feed. */
export interface EventFeed {
  /** Settles when the feed ends (closed, the engine went away, or a failure). */
  readonly ended: Promise<void>
  /** Ends the feed. */
  close(): void
}

/** Options of a container's log stream. */
export interface LogOptions {
  follow: boolean
  /** From this engine time, inclusive: `<unix seconds>.<nanoseconds>` (or unix seconds); default from the start. */
  since?: string | number
}

// ---- Images ---------------------------------------------------------------------------------------

export interface ImageInfo {
  /** `sha256:<hex>`. */
  id: string
  tags: string[]
  labels: Record<string, string>
  /** The config's EXPOSEd ports: `5000/tcp`. */
  exposedPorts: string[]
}

export interface BuildOptions {
  /** The tag the built image gets. */
  tag: string
  labels?: Record<string, string>
  buildArgs?: Record<string, string>
  /** The Dockerfile's path in the context, default `Dockerfile`. */
  dockerfile?: string
  /** Aborts the build (the engine stops it). */
  signal?: AbortSignal
}

/** Where progress goes: readable lines (a layer step, a build output chunk), never byte ticks. */
/**
 * Takes one line of output. A promise it answers is backpressure: the engine's stream is paused
 * until it settles (the build's output goes no faster than the pusher reads it).
 */
export type OnLine = (line: string) => void | Promise<void>

/** What the engine says of itself (the status page). */
export interface EngineInfo {
  version?: string
  apiVersion?: string
  os?: string
  arch?: string
  swarm?: { state?: string; nodeAddr?: string; nodeId?: string; nodes?: number; managers?: number; controlAvailable?: boolean }
}

/** One node of the swarm (a Docker host). */
export interface NodeInfo {
  id: string
  hostname: string
  role: 'manager' | 'worker'
  /** `ready`, `down`, `unknown`, `disconnected`. */
  state: string
  /** `active`, `pause`, `drain`. */
  availability: string
  /** Where the node is reached (its advertised address): the host of its published ports. */
  address: string
  labels: Record<string, string>
  /** A manager that leads the swarm's Raft. */
  leader: boolean
  engineVersion?: string
}

// ---- The port -------------------------------------------------------------------------------------

/**
 * One container engine (a Swarm manager). Every call that names a missing thing throws an
 * {@link EngineError} `not_found`; a taken name or a stale version `conflict`.
 */
export interface ContainerEngine {
  /** The engine's version and Swarm state. */
  info(): Promise<EngineInfo>

  /** The swarm's nodes (its hosts), in the order the engine lists them. */
  listNodes(): Promise<NodeInfo[]>

  /** The services carrying every label of `labels` (all when none). */
  listServices(labels?: LabelFilter): Promise<ServiceInfo[]>
  /** Service `nameOrId`. */
  inspectService(nameOrId: string): Promise<ServiceInfo>
  /** Creates a service; `conflict` when its name is taken. Answers its id. */
  createService(spec: ServiceSpec): Promise<string>
  /** Replaces service `nameOrId`'s spec; `conflict` when `version` is not its current one. */
  updateService(nameOrId: string, version: number, spec: ServiceSpec): Promise<void>
  /** Removes a service (its tasks are stopped). */
  removeService(nameOrId: string): Promise<void>
  /** The tasks of service `serviceId`, old ones included. */
  listTasks(serviceId: string): Promise<TaskInfo[]>
  /** Task `id` (a Swarm manager's record of it, not the container's labels); `not_found` when there is none. */
  inspectTask(id: string): Promise<TaskInfo>

  /** Containers carrying every label of `labels`: running ones, or all with `all`. */
  listContainers(opts?: { labels?: LabelFilter; all?: boolean }): Promise<ContainerSummary[]>
  inspectContainer(id: string): Promise<ContainerInfo>
  /** Creates a container (not started); `not_found` when the image is not in the engine. Answers its id. */
  createContainer(spec: ContainerSpec): Promise<string>
  /**
   * Attaches to a created container's stdio: output as the engine sends it (frames of an 8-byte header
   * and the bytes without a TTY, raw with one); with `stdin`, what is written goes to its stdin.
   */
  attachContainer(id: string, opts: { stdin: boolean }): Promise<Duplex>
  /**
   * Registers a wait for the container's removal; answers once the engine has it (so a container
   * started afterwards cannot end unseen). `exited` is its exit code.
   */
  waitRemoved(id: string): Promise<{ exited: Promise<number> }>
  startContainer(id: string): Promise<void>
  /** Resizes the TTY. */
  resizeContainer(id: string, size: { rows: number; cols: number }): Promise<void>
  /** Sends `signal` (`SIGTERM`, `15`) to a container's main process; `conflict` when it is not running. */
  killContainer(id: string, signal: string): Promise<void>
  /** Removes a container; `force` kills a running one first. `conflict` when its removal is under way. */
  removeContainer(id: string, opts?: { force?: boolean }): Promise<void>
  /** The container's stdout and stderr, each message prefixed with its RFC 3339 timestamp, framed as `attachContainer`'s. */
  containerLogs(id: string, opts: LogOptions): Promise<Readable>
  /**
   * Follows container events; answers once the feed is open. `onEvent` gets each one, `onError` an
   * event it could not read (with its text) or the failure that ended the feed (with `''`).
   */
  containerEvents(filter: EventFilter, onEvent: (e: ContainerEvent) => void, onError: (err: unknown, line: string) => void): Promise<EventFeed>

  /** Image `ref` (a reference or an id). */
  inspectImage(ref: string): Promise<ImageInfo>
  /** The images whose reference matches `reference` (`<registry>/<app>`: every tag of it). */
  listImages(reference: string): Promise<ImageInfo[]>
  /** Tags image `ref` as `<repo>:<tag>`. */
  tagImage(ref: string, repo: string, tag: string): Promise<void>
  /** Removes tag (or image) `ref`; `force` even when containers use it. */
  removeImage(ref: string, opts?: { force?: boolean }): Promise<void>
  /**
   * Builds the tar `context`, its output lines to `onLine`. Refused requests throw (`invalid`); a
   * build that fails answers its error; an abort rejects.
   */
  buildImage(context: Readable, opts: BuildOptions, onLine?: OnLine): Promise<{ error?: string }>
  /**
   * Pushes `ref` (`<registry>/<repo>:<tag>`) to its registry (no auth); answers the manifest digest.
   * `not_found` when the engine has no such image; `unavailable` when the registry refuses it.
   */
  pushImage(ref: string, onLine?: OnLine): Promise<string>
  /** Pulls `ref` from its registry (no auth); `not_found` when the registry cannot give it. */
  pullImage(ref: string, onLine?: OnLine): Promise<void>
}
