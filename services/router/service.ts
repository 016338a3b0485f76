import { setPriority } from 'node:os'
import type pg from 'pg'
import type { Logger } from '../../core/log.js'
import { startConsumer } from '../../events/consumer.js'
import type { EventStore, RecordedEvent } from '../../events/index.js'
import { pathsFor } from '../../core/paths.js'
import { ROUTER_STREAM } from '../../domain/platform/events.js'
import { isEvent } from '../../domain/index.js'
import { lastServedSets, readModelsHandling } from '../../projections/index.js'
import { CheckpointWatcher } from '../../projections/watcher.js'
import { request } from 'undici'
import { consumers } from '../../core/health.js'
import { serveHealthSocket, type HealthSocket } from '../../core/health-socket.js'
import type { HealthReport, ServiceDefinition } from '../runtime.js'
import { PROBE_HOST } from './changes.js'
import { Nginx, type NginxPaths } from './nginx.js'
import type { ContainerChange, DirectChange } from './model.js'
import { HostLiveness } from './liveness.js'
import { Router, type RouterOptions } from './router.js'

/** The nice value of the router's process when it runs alone (see infra/parts/nginx.ts, WORKER_PRIORITY). */
export const ROUTER_PRIORITY = -5

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
  return readModelsHandling(READ_MODELS)
}

/**
 * A web container's change from its event; undefined for another process type's (no route changes);
 * null for any other event.
 */
export function containerChange(e: RecordedEvent): ContainerChange | undefined | null {
  const d = e.data as { app: string; type: string; container: string; host?: string; port?: number; release?: number }
  switch (e.type) {
    case 'ContainerStarted':
      return d.type === 'web'
        ? { kind: 'started', app: d.app, type: d.type, container: d.container, host: d.host ?? '', port: d.port ?? null, release: d.release ?? 0 }
        : undefined
    case 'ContainerStopping':
    case 'ContainerStopped':
    case 'ContainerCrashed':
      return d.type === 'web'
        ? { kind: e.type === 'ContainerStopping' ? 'stopping' : e.type === 'ContainerStopped' ? 'stopped' : 'crashed', app: d.app, container: d.container }
        : undefined
    default:
      return null
  }
}

/** A custom domain's change from its event; null for any other event. */
export function domainChange(e: RecordedEvent): DirectChange | null {
  if (e.type !== 'DomainAdded' && e.type !== 'DomainRemoved') return null
  const d = e.data as { app: string; domain: string }
  return { kind: e.type === 'DomainAdded' ? 'domain-added' : 'domain-removed', app: d.app, domain: d.domain }
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
  /** nginx's HTTP port on 127.0.0.1 (`WHARF_ROUTER_PORT`): the health check asks its probe host there. */
  port: number
  /** The platform domain. */
  domain: string
  /** The largest body any app may take (`WHARF_MAX_BODY_SIZE_CAP`); omitted: no cap. */
  maxBodySizeCap?: string
}

export interface StartRouterOptions extends Pick<RouterOptions, 'windowMs' | 'transform' | 'onApplied'> {
  /** The durable subscription's name, default {@link ROUTER_DURABLE}. */
  durableName?: string
  /**
   * How often nginx is checked, ms, default 1_000; 0: never. An nginx whose epoch is not this
   * router's (it restarted: its dict is empty) gets the full table. The router never starts nginx.
   */
  watchdogMs?: number
  /** Records `RouteServed` on `platform.router` when an app's served containers change, default true. */
  record?: boolean
  /**
   * The check of the hosts the peers run on ({@link HostLiveness}): how often each is probed, ms,
   * default 500; 0: never (a request on a kept-alive connection to a lost host then waits for its
   * read timeout).
   */
  livenessMs?: number
}

export interface RunningRouter {
  router: Router
  nginx: Nginx
  /**
   * Whether nginx serves this router's routes: its master runs, it answers HTTP on the router port,
   * and its dict holds this router's last full table; else why not, in one line (for `/healthz`).
   */
  health(): Promise<HealthReport>
  stop(): Promise<void>
}

/** How long each of the health check's two questions to nginx may take, ms. */
const HEALTH_MS = 1_000

/**
 * Starts the router: renders from the read models (nginx answers the current routes before this
 * resolves, when it runs), then a durable subscription re-renders after each event that changes
 * routes, once the read models have it. A watchdog posts the full table to an nginx that restarted.
 *
 * The router never starts nginx, not even when its master died. One owner starts it: the
 * supervisor of the embedded platform (infra/supervisor.ts; systemd's wharf-nginx.service on a
 * production host), as it does every other real part. It knows the dead master's workers (they
 * keep the ports and must be stopped first), records restarts for `make status`, backs off, and
 * runs when the services process itself is down. A second starter here raced it: both saw no
 * master, both ran nginx, and one failed to bind (or the pid file named the loser).
 */
export async function startRouter(deps: RouterDeps, opts: StartRouterOptions = {}): Promise<RunningRouter> {
  const log = deps.log
  const nginx = new Nginx({ paths: deps.paths, socket: deps.paths.admin, log })
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
    // Everything read anew must not be behind the changes applied from their events.
    beforeFullRead: () =>
      Promise.all(
        [...lastDirect].map(([p, seq]) =>
          watcher
            .waitFor(seq, { projections: [p], timeoutMs: 10_000 })
            .catch((err: unknown) => log.warn({ err, seq, readModel: p }, 'router: a read model is behind; reading what it has')),
        ),
      ).then(() => {}),
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
  /** Read model -> the log sequence of the last change the router applied from its event that it applies. */
  const lastDirect = new Map<string, number>()
  const directApplied = (e: RecordedEvent) => {
    for (const p of e.type === 'DomainRemoved' ? ['domains', 'certs'] : e.type === 'DomainAdded' ? ['domains'] : ['containers'])
      lastDirect.set(p, Math.max(lastDirect.get(p) ?? 0, e.seq))
  }
  const readModelsOf = readModelsByType()
  const consumer = await startConsumer({
    store: deps.store,
    durableName: opts.durableName ?? ROUTER_DURABLE,
    // Events from now on come through the subscription; what came before is in the read models.
    from: 'end',
    types: ROUTE_EVENTS,
    // A pass reads only the apps its events name: what was appended before the subscription started
    // and not yet in the read models at the first read would stay out of the routes of apps no later
    // event names. So once the read models have it all, everything is read once more (not waited for:
    // the routes serve at once).
    catchUp: async () => {
      const upTo = await deps.store.lastSeq()
      await router.sync()
      void watcher.waitFor(upTo, { timeoutMs: 60_000 }).then(
        () => router.kick(),
        (err: unknown) => log.warn({ err, seq: upTo }, 'router: read models are behind; the routes are read again with the next change'),
      )
    },
    log,
    name: 'router',
    // A batch: what arrived while the last one was handled, rendered in one pass (no timer).
    handleBatch: async (batch, signal) => {
      const receivedAt = Date.now()
      // A web container's change and a custom domain's go into the router's rows straight from their
      // events (no wait for the read models, no read), when the router has their app; the other events
      // through the read models, and so do all of an app's events in a batch that creates or destroys
      // it. Another process type's container changes no route.
      const fresh = new Set<string>()
      for (const e of batch) if (e.type === 'AppCreated' || e.type === 'AppDestroyed') fresh.add((e.data as { app: string }).app)
      const direct: { e: RecordedEvent; c: DirectChange }[] = []
      const skip = new Set<RecordedEvent>()
      for (const e of batch) {
        // containerChange: undefined for another process type's container (no route), null for any other event.
        const cc = containerChange(e)
        const c = cc === null ? domainChange(e) : cc
        if (c === undefined) skip.add(e)
        else if (c !== null && !fresh.has(c.app)) direct.push({ e, c })
        // Most releases change config the routes do not read (a burst of config:set makes one each):
        // no wait for the releases read model, no read, no pass. One that changes a router setting
        // goes through the read models, so the rows never hold settings older than one waited for.
        else if (isEvent(e, 'ReleaseCreated') && router.sameRouterSettings(e.data.app, e.data.config)) skip.add(e)
      }
      if (direct.length > 0) {
        const first = direct[0]!.e
        const left = new Set(
          router.applyDirect(
            direct.map((x) => x.c),
            receivedAt,
            { seq: first.seq, appendedAt: Date.parse(first.occurredAt), receivedAt, readModelsAt: receivedAt },
          ),
        )
        for (const x of direct) {
          if (left.has(x.c)) continue
          directApplied(x.e)
          skip.add(x.e)
        }
      }
      const events = batch.filter((e) => !skip.has(e))
      if (events.length === 0) return
      // Each read model up to the last event of the batch it applies (one that applies none of them
      // advances its checkpoint over them only up to 100 ms later: not waited for).
      const upTo = new Map<string, number>()
      for (const e of events) for (const p of readModelsOf.get(e.type) ?? []) upTo.set(p, Math.max(upTo.get(p) ?? 0, e.seq))
      try {
        await Promise.all([...upTo].map(([p, seq]) => watcher.waitFor(seq, { projections: [p], timeoutMs: 30_000, signal })))
      } catch (err) {
        if (signal.aborted) throw err
        // Render anyway: what the read models have is the best there is; the next event catches up.
        log.warn({ err, seq: events.at(-1)!.seq }, 'router: read models are behind; rendering what they have')
      }
      const apps = new Set<string>()
      let everyApp = false
      for (const e of events) {
        const app = (e.data as { app?: unknown } | undefined)?.app
        if (typeof app === 'string') apps.add(app)
        else everyApp = true
      }
      const first = events[0]!
      router.kick(
        receivedAt,
        everyApp ? undefined : apps,
        { seq: first.seq, appendedAt: Date.parse(first.occurredAt), receivedAt, readModelsAt: Date.now() },
        fresh,
      )
    },
  })
  const watchdogMs = opts.watchdogMs ?? 1_000
  let checking: Promise<void> | undefined
  /** nginx was seen down: said once per outage. */
  let sawDown = false
  const watchdog =
    watchdogMs > 0
      ? setInterval(() => {
          if (checking) return
          checking = (async () => {
            if (!nginx.masterPid()) {
              if (!sawDown) log.warn({ pidfile: deps.paths.pid }, 'router: nginx is not running; the full table goes to it once its supervisor started it')
              sawDown = true
              router.invalidate()
              return
            }
            const epoch = await nginx.epoch()
            // undefined: no answer (yet); null: an empty dict; another string: another table.
            if (epoch !== undefined && epoch !== router.epoch) {
              log.warn({ nginx: epoch, router: router.epoch ?? null }, 'router: nginx holds another table (it restarted); posting the full table')
              sawDown = false
              router.invalidate()
              router.kick()
            } else if (epoch !== undefined) sawDown = false
          })().finally(() => (checking = undefined))
        }, watchdogMs)
      : undefined
  watchdog?.unref()
  const livenessMs = opts.livenessMs ?? 500
  const liveness = livenessMs > 0 ? new HostLiveness({ peers: () => router.peers(), log, intervalMs: livenessMs }).start() : undefined
  const health = async (): Promise<HealthReport> => {
    const pid = nginx.masterPid()
    if (!pid) return { ok: false, reason: `nginx is not running (no live master in ${deps.paths.pid})` }
    const probe = request(`http://127.0.0.1:${deps.port}/`, { headers: { host: PROBE_HOST }, headersTimeout: HEALTH_MS, bodyTimeout: HEALTH_MS }).then(
      async (res) => {
        await res.body.dump()
        return res.statusCode === 200 ? undefined : `answered ${res.statusCode}`
      },
      (err: Error) => err.message || err.name,
    )
    const [probeError, epoch] = await Promise.all([probe, nginx.epoch(HEALTH_MS)])
    const detail = { pid, epoch: epoch ?? null }
    if (probeError) return { ok: false, reason: `nginx (pid ${pid}) does not answer on 127.0.0.1:${deps.port}: ${probeError}`, detail }
    if (epoch === undefined) return { ok: false, reason: `nginx (pid ${pid}) does not answer on its admin socket ${deps.paths.admin}`, detail }
    if (epoch !== router.epoch)
      return { ok: false, reason: `nginx (pid ${pid}) does not hold the routes yet (it restarted; the full table is on its way)`, detail }
    return { ok: true, detail }
  }
  let stopped: Promise<void> | undefined
  return {
    router,
    nginx,
    health,
    stop: () =>
      (stopped ??= (async () => {
        clearInterval(watchdog)
        await liveness?.stop()
        await checking
        await consumer.stop()
        await router.stop()
        nginx.close()
        await watcher.close()
      })()),
  }
}

/** The router: events -> nginx routes by Host, changed in nginx's memory (no reload). */
export const router: ServiceDefinition = {
  name: 'router',
  description: 'apps, domains, containers -> nginx routes by Host (change sets to a shared dict, no reload)',
  async start({ cfg, log: root, store, pool, running: names }) {
    const log = root.child({ service: 'router' })
    const paths = pathsFor(cfg.home)
    const running = await startRouter({
      store,
      pool,
      log,
      paths: paths.nginx,
      port: cfg.ports.router,
      domain: cfg.domain,
      maxBodySizeCap: cfg.limits.bodySizeCap,
    })
    // In a process of its own (`make up` runs it so: its event loop shared with no other service), it
    // answers its health on a unix socket, which the controller's /healthz and `make status` ask: its
    // nginx holds its routes, and the consumers of this process (its subscription) keep up.
    let socket: HealthSocket | undefined
    if (!names.includes('controller')) {
      // Alone in its process: it goes before the apps and the platform's batch work for a core, as
      // nginx's workers do (infra/parts/nginx.ts, WORKER_PRIORITY; systemd's unit sets Nice= too).
      try {
        setPriority(ROUTER_PRIORITY)
      } catch (err) {
        log.warn({ err, priority: ROUTER_PRIORITY }, 'router: cannot raise its priority (needs root or CAP_SYS_NICE); running at the default')
      }
      socket = await serveHealthSocket(paths.router.socket, async () => {
        // The log's head bounds the lag; NATS not answering leaves it unknown (the consumer's state still tells).
        const head = Promise.race([store.lastSeq(), new Promise<undefined>((r) => setTimeout(() => r(undefined), HEALTH_MS).unref())]).catch(() => undefined)
        const [h, last] = await Promise.all([running.health(), head])
        const v = consumers.verdict(last, cfg.health)
        const detail = { ...h.detail, consumers: v.consumers }
        if (!h.ok) return { ...h, detail }
        return v.ok ? { ok: true, detail } : { ok: false, reason: `consumers: ${v.reason}`, detail }
      })
      log.info({ socket: paths.router.socket }, 'router: answering its health on a unix socket')
    }
    log.info({ port: cfg.ports.router, tlsPort: cfg.ports.routerTls, domain: cfg.domain }, 'router: routing')
    return {
      stop: async () => {
        await socket?.close()
        await running.stop()
      },
      health: () => running.health(),
    }
  },
}
