import type pg from 'pg'
import type { Logger } from '../../core/log.js'
import { startConsumer } from '../../events/consumer.js'
import type { EventStore } from '../../events/index.js'
import { pathsFor } from '../../core/paths.js'
import { ROUTER_STREAM } from '../../domain/platform/events.js'
import { lastServedSets, wharfProjections } from '../../projections/index.js'
import { CheckpointWatcher } from '../../projections/watcher.js'
import type { ServiceDefinition } from '../runtime.js'
import { Nginx, type NginxPaths } from './nginx.js'
import { Router, type RouterOptions } from './router.js'

/** The durable subscription of the router. */
export const ROUTER_DURABLE = 'router'

/** The read models a render reads. */
const READ_MODELS = ['apps', 'domains', 'containers', 'access', 'releases', 'certs'] as const

/**
 * Event type -> the read models of {@link READ_MODELS} that apply it: an event is rendered once they
 * have. Waiting for the others too would wait for their skip-only checkpoints, which the projector
 * writes up to 100 ms later.
 */
export function readModelsByType(): Map<string, string[]> {
  const byType = new Map<string, string[]>()
  for (const p of wharfProjections()) {
    if (!(READ_MODELS as readonly string[]).includes(p.name)) continue
    for (const type of p.handles) byType.set(type, [...(byType.get(type) ?? []), p.name])
  }
  return byType
}

/** Events that change routes. */
export const ROUTE_EVENTS = new Set([
  'AppCreated',
  'AppDestroyed',
  'DomainAdded',
  'DomainRemoved',
  'ContainerStarted',
  'ContainerStopping',
  'ContainerStopped',
  'ContainerCrashed',
  'MaintenanceSet',
  'ReleaseCreated',
  'CertAttached',
  'CertDetached',
  'CertRemoved',
])

export interface RouterDeps {
  store: EventStore
  pool: pg.Pool
  log: Logger
  /** nginx's files (`pathsFor(home).nginx`): pid file, log, admin socket. */
  paths: NginxPaths & { admin: string }
  /** Starts nginx when it is not running (infra's nginx part). */
  startNginx: () => Promise<void>
  /** The platform domain. */
  domain: string
  /** The largest body any app may take (`WHARF_MAX_BODY_SIZE_CAP`); omitted: no cap. */
  maxBodySizeCap?: string
}

export interface StartRouterOptions extends Pick<RouterOptions, 'windowMs' | 'transform' | 'onApplied'> {
  /** The durable subscription's name, default {@link ROUTER_DURABLE}. */
  durableName?: string
  /**
   * How often nginx is checked, ms, default 1_000; 0: never. A master gone is started again; an
   * epoch not this router's (nginx restarted by anyone: its dict is empty) gets the full table.
   */
  watchdogMs?: number
  /** Records `RouteServed` on `platform.router` when an app's served containers change, default true. */
  record?: boolean
}

export interface RunningRouter {
  router: Router
  nginx: Nginx
  stop(): Promise<void>
}

/**
 * Starts the router: renders from the read models (nginx answers the current routes before this
 * resolves), then a durable subscription re-renders after each event that changes routes, once the
 * read models have it. A watchdog starts nginx again with the current routes when its master dies.
 */
export async function startRouter(deps: RouterDeps, opts: StartRouterOptions = {}): Promise<RunningRouter> {
  const log = deps.log
  const nginx = new Nginx({ paths: deps.paths, socket: deps.paths.admin, log, start: deps.startNginx })
  const record = opts.record ?? true
  const router = new Router({
    pool: deps.pool,
    nginx,
    log,
    domain: deps.domain,
    // nginx answers the controller's host itself (a server block of its own).
    reserved: [`wharf.${deps.domain}`],
    ...(deps.maxBodySizeCap ? { maxBodySizeCap: deps.maxBodySizeCap } : {}),
    ...(opts.windowMs !== undefined ? { windowMs: opts.windowMs } : {}),
    ...(opts.transform ? { transform: opts.transform } : {}),
    ...(opts.onApplied ? { onApplied: opts.onApplied } : {}),
    ...(record
      ? {
          // From the log: a restarted router records only what changed since the last router's record.
          served: await lastServedSets(deps.pool),
          onServed: async (changes) => {
            await deps.store.append(
              ROUTER_STREAM,
              changes.map((c) => ({ type: 'RouteServed', data: { app: c.app, servers: c.servers } })),
              { expectedVersion: 'any', actor: 'system:router' },
            )
            log.info({ apps: changes.map((c) => c.app) }, 'router: recorded what it serves')
          },
        }
      : {}),
  })
  const watcher = new CheckpointWatcher({ pool: deps.pool, projections: READ_MODELS })
  const readModelsOf = readModelsByType()
  const consumer = await startConsumer({
    store: deps.store,
    durableName: opts.durableName ?? ROUTER_DURABLE,
    // Events from now on come through the subscription; what came before is in the read models.
    from: 'end',
    types: ROUTE_EVENTS,
    catchUp: () => router.sync(),
    log,
    name: 'router',
    handle: async (e, signal) => {
      const asked = Date.now()
      try {
        await watcher.waitFor(e.seq, { projections: readModelsOf.get(e.type) ?? [], timeoutMs: 30_000 })
      } catch (err) {
        if (signal.aborted) throw err
        // Render anyway: what the read models have is the best there is; the next event catches up.
        log.warn({ err, seq: e.seq, type: e.type }, 'router: read models are behind; rendering what they have')
      }
      router.kick(asked)
    },
  })
  const watchdogMs = opts.watchdogMs ?? 1_000
  let checking: Promise<void> | undefined
  const watchdog =
    watchdogMs > 0
      ? setInterval(() => {
          if (checking) return
          checking = (async () => {
            if (!nginx.masterPid()) {
              log.warn('router: nginx is gone; starting it again with the full table')
              router.invalidate()
              router.kick()
              return
            }
            const epoch = await nginx.epoch()
            if (epoch !== undefined && router.epoch !== undefined && epoch !== router.epoch) {
              log.warn({ nginx: epoch, router: router.epoch }, 'router: nginx holds another table (it restarted); posting the full table')
              router.invalidate()
              router.kick()
            }
          })().finally(() => (checking = undefined))
        }, watchdogMs)
      : undefined
  watchdog?.unref()
  let stopped: Promise<void> | undefined
  return {
    router,
    nginx,
    stop: () =>
      (stopped ??= (async () => {
        clearInterval(watchdog)
        await checking
        await consumer.stop()
        await router.stop()
        await watcher.close()
      })()),
  }
}

/** The router: events -> nginx routes by Host, changed in nginx's memory (no reload). */
export const router: ServiceDefinition = {
  name: 'router',
  description: 'apps, domains, containers -> nginx routes by Host (change sets to a shared dict, no reload)',
  async start({ cfg, log: root, store, pool, startNginx }) {
    const log = root.child({ service: 'router' })
    const paths = pathsFor(cfg.home)
    const running = await startRouter({
      store,
      pool,
      log,
      paths: paths.nginx,
      startNginx: () => startNginx((line) => log.info(line)),
      domain: cfg.domain,
      maxBodySizeCap: cfg.limits.bodySizeCap,
    })
    log.info({ port: cfg.ports.router, tlsPort: cfg.ports.routerTls, domain: cfg.domain }, 'router: routing')
    return { stop: () => running.stop() }
  },
}
