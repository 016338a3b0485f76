import { registryLogin } from '../../core/config.js'
import { DockerEngine } from '../../core/engine/docker.js'
import { partsUpGauge } from '../../core/metrics.js'
import { VERSION } from '../../core/version.js'
import { platformStatus } from './admin/status.js'
import { LoggerClient } from '../../logs/index.js'
import type { ServiceDefinition } from '../runtime.js'
import { tokenAuthenticator } from './auth.js'
import type { ControllerDeps } from './context.js'
import { dashboardDir } from './dashboard.js'
import { buildHttp } from './http.js'
import { consumersVerdict } from './admin/consumers.js'
import { ROUTES } from './routes/index.js'
import { askHealthSocket } from '../../core/health-socket.js'
import type { HealthReport } from '../runtime.js'

/**
 * The health of services in a process of their own on this host, asked on its unix socket: the router
 * (`WHARF_ROUTER_HEALTH_SOCKET`), the workers (`WHARF_WORKERS_HEALTH_SOCKET`: scheduler, publisher,
 * logger, ...; their consumers keep up and the publisher follows its Docker engine).
 */
function processApart(socket: string): () => Promise<HealthReport> {
  return async () => {
    const h = await askHealthSocket(socket)
    const detail = { ...h.detail, socket }
    return h.ok ? { ok: true, detail } : { ok: false, reason: h.reason ?? 'not ok', detail }
  }
}

/** The controller: HTTP API on 127.0.0.1:<controller port>, `/healthz` for the whole process. */
export const controller: ServiceDefinition = {
  name: 'controller',
  description: 'HTTP API (commands and queries) and /healthz',
  async start({ cfg, log, store, pool, catalogue, objects, platform, logs, running, healthOf }) {
    const deps: ControllerDeps = {
      cfg,
      log: log.child({ service: 'controller' }),
      store,
      pool,
      catalogue,
      objects,
      platform,
      logger: new LoggerClient(logs),
      engine: cfg.dockerHost ? DockerEngine.at(cfg.dockerHost, registryLogin(cfg)) : undefined,
    }
    const app = await buildHttp({
      log: deps.log,
      deps,
      routes: ROUTES,
      authenticate: tokenAuthenticator(deps),
      version: VERSION,
      dashboard: dashboardDir(),
      checks: {
        nats: async () => ({ ok: true, detail: { lastSeq: await store.lastSeq() } }),
        postgres: async () => {
          await pool.query('select 1')
          return { ok: true, detail: { totalConnections: pool.totalCount } }
        },
        services: async () => ({ ok: true, detail: { running } }),
        // Every consumer of the log and of Postgres in this process: running, caught up or moving.
        consumers: async () => {
          const v = await consumersVerdict(store, cfg.health)
          return { ok: v.ok, ...(v.reason ? { reason: v.reason } : {}), detail: { head: v.head, consumers: v.consumers } }
        },
        // The router of this process: its nginx runs, answers and holds the routes (started after the
        // controller); or the router in a process of its own on this host (`make up` runs it so), asked on its socket.
        ...(running.includes('router')
          ? { router: async () => (await healthOf('router')) ?? { ok: false, reason: 'the router has not started yet' } }
          : cfg.routerHealthSocket
            ? { router: processApart(cfg.routerHealthSocket) }
            : {}),
        // The publisher of this process follows its Docker engine's events (not while the engine is down or restarting).
        ...(running.includes('publisher')
          ? {
              publisher: async () => {
                const h = await healthOf('publisher')
                if (!h) return { ok: false, reason: 'the publisher has not started yet' }
                return h.ok ? h : { ...h, reason: h.reason ?? `not following the Docker engine's events at ${cfg.dockerHost} (down or restarting)` }
              },
            }
          : cfg.workersHealthSocket
            ? { workers: processApart(cfg.workersHealthSocket) }
            : {}),
      },
    })
    // Probed at most every 10 s however often Prometheus scrapes (each probe is a real request to the part).
    let probed: { at: number; parts: Promise<{ name: string; up: boolean }[]> } | undefined
    partsUpGauge(() => {
      if (!probed || Date.now() - probed.at > 10_000)
        probed = {
          at: Date.now(),
          parts: platformStatus(deps).then(
            (ps) => ps.map((p) => ({ name: p.part, up: p.up })),
            () => [],
          ),
        }
      return probed.parts
    })
    await app.listen({ host: cfg.host, port: cfg.ports.controller })
    return {
      // Stops accepting connections and waits for in-flight requests.
      stop: () => app.close(),
    }
  },
}
