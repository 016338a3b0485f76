import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import type { InfraContext, Part } from '../part.js'
import { livePid, portOpen, startDaemon, stopPidfile, tail, waitUntil } from '../proc.js'
import { dockerHost } from './docker.js'
import { databaseUrl } from './postgres.js'

/** The compiled entry point of the Wharf services (`npm run build` makes it). */
const MAIN = fileURLToPath(new URL('../../services/main.js', import.meta.url))

async function healthy(port: number): Promise<boolean> {
  const res = await request(`http://127.0.0.1:${port}/healthz`, { headersTimeout: 2000, bodyTimeout: 2000 })
  await res.body.dump()
  return res.statusCode === 200
}

/** The environment the services process reads its config from (see core/config.ts). */
export function servicesEnv(ctx: InfraContext): NodeJS.ProcessEnv {
  const { cfg, paths } = ctx
  return {
    WHARF_HOME: paths.home,
    WHARF_CONTROLLER_PORT: String(cfg.ports.controller),
    WHARF_BUILDER_PORT: String(cfg.ports.builder),
    WHARF_ROUTER_PORT: String(cfg.ports.router),
    WHARF_REGISTRY_PORT: String(cfg.ports.registry),
    WHARF_NATS_PORT: String(cfg.ports.nats),
    WHARF_NATS_MONITOR_PORT: String(cfg.ports.natsMonitor),
    WHARF_PG_PORT: String(cfg.ports.postgres),
    WHARF_NATS_URL: cfg.natsUrl,
    WHARF_DATABASE_URL: cfg.databaseUrl ?? databaseUrl(cfg, paths),
    WHARF_DOCKER_HOST: dockerHost(ctx),
    WHARF_DOMAIN: cfg.domain,
    WHARF_NAMESPACE: cfg.namespace,
    WHARF_LOG_LEVEL: cfg.logLevel,
  }
}

/** All Wharf services in one Node process (`services/main.ts`), logging pino JSON to $WHARF_HOME/logs/wharf.log. */
export const services: Part = {
  name: 'wharf',
  async status({ cfg, paths }) {
    const address = `http://127.0.0.1:${cfg.ports.controller}`
    const pid = livePid(paths.services.pid)
    if (!pid) return { up: false, address }
    try {
      return { up: await healthy(cfg.ports.controller), address, pid }
    } catch (err) {
      return { up: false, address, pid, detail: (err as Error).message }
    }
  },
  async start(ctx: InfraContext) {
    const { cfg, paths } = ctx
    if (livePid(paths.services.pid)) {
      await waitUntil('Wharf services', () => healthy(cfg.ports.controller), 20_000)
      return 'running'
    }
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`)
    if (await portOpen(cfg.ports.controller)) throw new Error(`controller: port ${cfg.ports.controller} is already taken by another process (set WHARF_CONTROLLER_PORT)`)
    startDaemon({
      cmd: process.execPath,
      args: ['--enable-source-maps', MAIN],
      logFile: paths.services.log,
      pidfile: paths.services.pid,
      env: { PATH: process.env.PATH, ...servicesEnv(ctx) },
    })
    await waitUntil('Wharf services', () => healthy(cfg.ports.controller), 30_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${tail(paths.services.log)}`)
    })
    return 'started'
  },
  async stop({ paths }) {
    return (await stopPidfile(paths.services.pid, { timeoutMs: 20_000 })) ? 'stopped' : 'not running'
  },
}
