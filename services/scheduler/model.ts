/**
 * The scheduler's pure part: from an app's current release and formation, the Swarm services that
 * should run (one per process type with a quantity above 0), and the hash that tells whether a
 * running service already is what should run. No I/O here.
 */
import { createHash } from 'node:crypto'
import type { ServiceContainerSpec, ServiceSpec } from '../../core/engine/engine.js'
import { DRAIN_SIGNAL, LABELS, processLabels } from '../../domain/runtime/labels.js'
import { placementOf } from '../../domain/runtime/placement.js'
import { DEFAULT_PORT, envList, memoryBytes, processEnv } from '../../domain/runtime/process.js'
import { canonicalJson as canonical } from '../../core/canonical.js'

/** What the scheduler needs of an app's current release (the newest row of the releases read model). */
export interface ReleaseView {
  app: string
  version: number
  image: string
  digest?: string | undefined
  procfile: Record<string, string>
  port?: number | undefined
  config: Record<string, string>
  limits: { memory: Record<string, string>; cpu: Record<string, number> }
}

/** Tunables of the desired specs; every field has a default ({@link DEFAULT_SPEC_OPTIONS}). */
export interface SpecOptions {
  /** How long Swarm waits after SIGTERM before SIGKILL, ms, default 10_000 (in-flight requests drain). */
  stopGraceMs: number
  /**
   * `web` only: how long a container asked to stop serves on before it gets SIGTERM, ms
   * (`WHARF_DRAIN_TIME`, default 5_000; 0: SIGTERM at once). Meanwhile routers take it out of the
   * peers and what it has in flight finishes. See {@link DRAIN_SIGNAL}.
   */
  drainMs: number
  /**
   * `web` with a drain time only: the drain lasts until the routers have taken the container out
   * (their last `RouteServed` no longer lists it), at least `drainMs`, at most this long, ms
   * (`WHARF_DRAIN_MAX_TIME`, default 30_000). The stop grace period counts from its end.
   */
  drainMaxMs: number
  /** How long Swarm watches an updated task for failure before the next one, ms, default 5_000. */
  updateMonitorMs: number
  /** Same, during a rollback, ms, default 1_000. */
  rollbackMonitorMs: number
  /** Health check interval for `HEALTHCHECK_URL`, ms, default 1_000. */
  healthIntervalMs: number
  /** Health check timeout, ms, default 2_000. */
  healthTimeoutMs: number
  /** Failed probes in a row before a container is unhealthy, default 3. */
  healthRetries: number
}

export const DEFAULT_SPEC_OPTIONS: SpecOptions = {
  stopGraceMs: 10_000,
  drainMs: 5_000,
  drainMaxMs: 30_000,
  updateMonitorMs: 5_000,
  rollbackMonitorMs: 1_000,
  healthIntervalMs: 1_000,
  healthTimeoutMs: 2_000,
  healthRetries: 3,
}

/** One service that should run. */
export interface DesiredService {
  name: string
  app: string
  type: string
  release: number
  replicas: number
  /** The Swarm spec without the scheduler's bookkeeping labels (`wharf.spec`, `wharf.restart`, `wharf.failed-spec`). */
  spec: ServiceSpec
  /** {@link specHash} of `spec`. */
  hash: string
}

/** Swarm service names are DNS labels: at most 63 characters of `[a-z0-9-]`. */
const MAX_SERVICE_NAME = 63

/**
 * The prefix of service names of a namespace: `wharf` for the platform's own (`wharf-<app>-<type>`),
 * else the namespace made DNS-safe, or a short hash of it when it is long (test namespaces), so a
 * test never touches the platform's services.
 */
export function servicePrefix(namespace: string): string {
  if (namespace === 'wharf') return 'wharf'
  const safe = namespace
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
  if (safe && safe.length <= 16) return safe
  return `w${createHash('sha256').update(namespace).digest('hex').slice(0, 10)}`
}

export function serviceName(namespace: string, app: string, type: string): string {
  const name = `${servicePrefix(namespace)}-${app}-${type.replace(/_/g, '-')}`
  if (name.length > MAX_SERVICE_NAME) throw new Error(`service name ${name} is longer than ${MAX_SERVICE_NAME} characters`)
  return name
}

/** The process types of a release: the Procfile's, and always `web` (the image's CMD when the Procfile has none). */
export function processTypes(release: Pick<ReleaseView, 'procfile'>): string[] {
  return [...new Set(['web', ...Object.keys(release.procfile)])].sort()
}

/**
 * The path `HEALTHCHECK_URL` names: a path (`/health`) or a URL whose path and query are taken
 * (the probe always goes to the container itself). Undefined when unset or unusable.
 */
export function healthPath(value: string | undefined): string | undefined {
  if (!value) return undefined
  if (value.startsWith('/')) return /^\/[\x21-\x7e]*$/.test(value) && !/['"\\`$]/.test(value) ? value : undefined
  try {
    const u = new URL(value)
    return healthPath(`${u.pathname}${u.search}`)
  } catch {
    return undefined
  }
}

/** sha256 (first 16 hex digits) of a spec's canonical JSON. */
export function specHash(spec: ServiceSpec): string {
  return createHash('sha256').update(canonical(spec)).digest('hex').slice(0, 16)
}

/**
 * The services an app should run: one per process type whose formation quantity is above 0.
 * `release` undefined (no release with an image, or the app is gone): none.
 */
export function desiredServices(
  namespace: string,
  release: ReleaseView | undefined,
  formation: Record<string, number>,
  opts: Partial<SpecOptions> = {},
): DesiredService[] {
  if (!release) return []
  const o = { ...DEFAULT_SPEC_OPTIONS, ...opts }
  const port = release.port ?? DEFAULT_PORT
  const out: DesiredService[] = []
  for (const type of processTypes(release)) {
    const replicas = formation[type] ?? 0
    if (replicas <= 0) continue
    const name = serviceName(namespace, release.app, type)
    const labels = processLabels(namespace, release.app, type, release.version)
    const command = release.procfile[type]
    const health = type === 'web' ? healthPath(release.config.HEALTHCHECK_URL) : undefined
    const memory = memoryBytes(release.limits.memory[type])
    const cpu = release.limits.cpu[type]
    const drain = type === 'web' && o.drainMs > 0
    const drainMax = Math.max(o.drainMs, o.drainMaxMs)
    const containerSpec: ServiceContainerSpec = {
      Image: release.digest ? `${release.image}@${release.digest}` : release.image,
      Labels: drain ? { ...labels, [LABELS.drain]: String(o.drainMs), [LABELS.drainMax]: String(drainMax) } : labels,
      Env: envList(processEnv(release, type)),
      // Draining: the drain signal, SIGTERM once out of the routes (the publisher: after the drain
      // time, at the latest after the longest drain), SIGKILL after the grace.
      StopGracePeriod: (drain ? drainMax + o.stopGraceMs : o.stopGraceMs) * 1e6,
      ...(drain ? { StopSignal: DRAIN_SIGNAL } : {}),
      ...(command ? { Command: ['sh', '-c', command] } : {}),
      ...(health
        ? {
            Healthcheck: {
              Test: ['CMD-SHELL', `wget -q -O /dev/null "http://127.0.0.1:$PORT${health}" || exit 1`],
              Interval: o.healthIntervalMs * 1e6,
              Timeout: o.healthTimeoutMs * 1e6,
              Retries: o.healthRetries,
              StartPeriod: 0,
            },
          }
        : {}),
    }
    const placement = placementOf(release.config, type)
    const spec = {
      Name: name,
      Labels: labels,
      TaskTemplate: {
        ContainerSpec: containerSpec,
        Resources: { Limits: { ...(memory ? { MemoryBytes: memory } : {}), ...(cpu ? { NanoCPUs: Math.round(cpu * 1e9) } : {}) } },
        // Any exit, as Heroku restarts its dynos: a process that exits 0 at SIGTERM (as the engine's stop at
        // its restart) would otherwise be "complete" to Swarm and the app stay below its formation.
        RestartPolicy: { Condition: 'any', Delay: 1e9 },
        // Only when set: an app without placement keeps the spec (and hash) it had before placement existed.
        ...(placement.constraints.length || placement.spread.length
          ? {
              Placement: {
                ...(placement.constraints.length ? { Constraints: placement.constraints } : {}),
                ...(placement.spread.length ? { Preferences: placement.spread.map((l) => ({ Spread: { SpreadDescriptor: `node.labels.${l}` } })) } : {}),
              },
            }
          : {}),
      },
      Mode: { Replicated: { Replicas: replicas } },
      // All new tasks start at once (start-first, health-gated); each old one then drains (taken out of the
      // routes, SIGTERM only after the drain time) and stops.
      UpdateConfig: {
        Parallelism: 0,
        Delay: 0,
        Order: 'start-first',
        FailureAction: 'rollback',
        Monitor: o.updateMonitorMs * 1e6,
        MaxFailureRatio: 0,
      },
      RollbackConfig: { Parallelism: 0, Delay: 0, Order: 'start-first', FailureAction: 'pause', Monitor: o.rollbackMonitorMs * 1e6, MaxFailureRatio: 0 },
      // Host mode without a published port: each task gets a free host port on its node (the router reaches <node address>:<port>).
      EndpointSpec: { Mode: 'vip', Ports: type === 'web' ? [{ Protocol: 'tcp', TargetPort: port, PublishMode: 'host' }] : [] },
    } satisfies ServiceSpec
    out.push({ name, app: release.app, type, release: release.version, replicas, spec, hash: specHash(spec) })
  }
  return out
}

/** What runs now, as the scheduler reads it from a Swarm service's labels. */
export interface ActualService {
  id: string
  name: string
  app: string
  type: string
  release: number
  hash: string | undefined
  failedHash: string | undefined
  restart: string | undefined
  replicas: number
}

/** One change to apply. */
export type Change =
  | { kind: 'create'; desired: DesiredService }
  | { kind: 'update'; desired: DesiredService; actual: ActualService }
  | { kind: 'remove'; actual: ActualService }

/**
 * The changes that make `actual` (an app's services) into `desired`: create what is missing,
 * update what differs (by spec hash; a spec that failed and was rolled back is not tried again),
 * remove what should not run. A service of the right name without the scheduler's labels (made by
 * hand) is updated into shape.
 */
export function diff(desired: readonly DesiredService[], actual: readonly ActualService[]): Change[] {
  const changes: Change[] = []
  const byName = new Map(actual.map((a) => [a.name, a]))
  for (const d of desired) {
    const a = byName.get(d.name)
    if (!a) changes.push({ kind: 'create', desired: d })
    else if (a.hash !== d.hash && a.failedHash !== d.hash) changes.push({ kind: 'update', desired: d, actual: a })
  }
  const wanted = new Set(desired.map((d) => d.name))
  for (const a of actual) if (!wanted.has(a.name)) changes.push({ kind: 'remove', actual: a })
  return changes
}

/** The formation a deploy runs: every process type of the release with its quantity (0 included). */
export function deployFormation(release: ReleaseView, formation: Record<string, number>): Record<string, number> {
  return Object.fromEntries(processTypes(release).map((t) => [t, formation[t] ?? 0]))
}
