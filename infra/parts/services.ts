import { createHash } from 'node:crypto'
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { durationText } from '../../core/config.js'
import { VERSION } from '../../core/version.js'
import { daemonPart } from '../daemon.js'
import { askHealthSocket } from '../../core/health-socket.js'
import { request } from 'undici'
import type { InfraContext } from '../part.js'
import { execFileP, livePid, portOpen } from '../proc.js'
import { s3Settings } from './ceph.js'
import { dockerHost } from './docker.js'
import { natsClientUrl } from './nats.js'
import { databaseUrl } from './postgres.js'
import { registryCredentials } from './registry.js'
import { generatedSecret } from '../secrets.js'
import { WORKERS } from '../../services/runtime.js'

/** The compiled entry point of the Wharf services (`npm run build` makes it). */
const MAIN = fileURLToPath(new URL('../../services/main.js', import.meta.url))
/** The services' `--max-semi-space-size`, MB (see where the controller's process is started; `npm run bench:replay` runs with the same). */
const SEMI_SPACE_MB = 64

/** The compiler's record of the build: it changes whenever the compiled output does. */
const BUILD_INFO = fileURLToPath(new URL('../../.tsbuildinfo', import.meta.url))

/** An id of the build in dist/ (a hash of the compiler's build info). */
export function currentBuild(): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(BUILD_INFO)).digest('hex').slice(0, 16)
  } catch {
    return undefined
  }
}

const buildFile = (ctx: InfraContext) => join(ctx.paths.run, 'wharf.build')

/** True when the running services were started from another build than the one in dist/ now. */
export function servicesOutdated(ctx: InfraContext): boolean {
  let running: string | undefined
  try {
    running = readFileSync(buildFile(ctx), 'utf8').trim()
  } catch {
    return false
  }
  const now = currentBuild()
  return now !== undefined && running !== now
}

/** The environment the services process reads its config from (see core/config.ts). */
export function servicesEnv(ctx: InfraContext): NodeJS.ProcessEnv {
  const { cfg, paths } = ctx
  return {
    WHARF_HOME: paths.home,
    WHARF_CONTROLLER_PORT: String(cfg.ports.controller),
    WHARF_BUILDER_PORT: String(cfg.ports.builder),
    WHARF_ROUTER_PORT: String(cfg.ports.router),
    WHARF_ROUTER_TLS_PORT: String(cfg.ports.routerTls),
    WHARF_REGISTRY_PORT: String(cfg.ports.registry),
    WHARF_NATS_PORT: String(cfg.ports.nats),
    WHARF_NATS_MONITOR_PORT: String(cfg.ports.natsMonitor),
    WHARF_PG_PORT: String(cfg.ports.postgres),
    WHARF_S3_PORT: String(cfg.ports.s3),
    WHARF_CEPH_MON_PORT: String(cfg.ports.cephMon),
    WHARF_REDIS_PORT: String(cfg.ports.redis),
    WHARF_REGISTRY_CACHE: cfg.registryCache,
    ...registryEnv(ctx),
    WHARF_BACKUP_INTERVAL: durationText(cfg.backups.intervalMs),
    WHARF_BACKUP_KEEP: String(cfg.backups.keep),
    WHARF_SYSLOG_PORT: String(cfg.ports.syslog),
    WHARF_LOG_LINES: String(cfg.logs.appLines),
    WHARF_LOG_RATE: String(cfg.logs.appRate),
    WHARF_LOG_STREAM_HOURS: String(cfg.logs.streamHours),
    WHARF_LOG_STREAM_MB: String(cfg.logs.streamMb),
    WHARF_LOG_INPUT_SECRET: cfg.logs.inputSecret ?? generatedSecret(paths, paths.logInputSecret),
    ...s3Env(ctx),
    WHARF_NATS_URL: natsClientUrl(cfg, paths),
    WHARF_NATS_REPLICAS: String(cfg.natsReplicas),
    WHARF_HOST_ADDRESS: cfg.hostAddress,
    WHARF_DATABASE_URL: cfg.databaseUrl ?? databaseUrl(cfg, paths),
    WHARF_DOCKER_HOST: dockerHost(ctx),
    // Only when named apart from the engine (it defaults to WHARF_DOCKER_HOST).
    ...(cfg.swarmManager && cfg.swarmManager !== cfg.dockerHost ? { WHARF_SWARM_MANAGER: cfg.swarmManager } : {}),
    WHARF_DOMAIN: cfg.domain,
    WHARF_DRAIN_TIME: `${cfg.drainMs / 1000}s`,
    WHARF_DRAIN_MAX_TIME: `${cfg.drainMaxMs / 1000}s`,
    WHARF_NAMESPACE: cfg.namespace,
    WHARF_LOG_LEVEL: cfg.logLevel,
    // The router and the workers run in processes of their own (see `router` and `workers` below); the controller's /healthz asks them there.
    WHARF_ROUTER_HEALTH_SOCKET: paths.router.socket,
    WHARF_WORKERS_HEALTH_SOCKET: paths.workers.socket,
    ...(cfg.npmRegistry ? { WHARF_NPM_REGISTRY: cfg.npmRegistry } : {}),
    ...(cfg.outboundAllow.length ? { WHARF_OUTBOUND_ALLOW: cfg.outboundAllow.map((r) => r.text).join(',') } : {}),
  }
}

/** The registry's user and password (the operator's, or the one `make up` generated). */
function registryEnv(ctx: InfraContext): NodeJS.ProcessEnv {
  const { username, password } = registryCredentials(ctx)
  return { WHARF_REGISTRY_USER: username, WHARF_REGISTRY_PASSWORD: password }
}

/**
 * The store's endpoint and keys. Left out while Wharf's own gateway has not made its keys yet (a
 * platform started without the store, as some tests do).
 */
function s3Env(ctx: InfraContext): NodeJS.ProcessEnv {
  if (!ctx.cfg.s3.external && !existsSync(ctx.paths.ceph.s3Keys)) return {}
  const s3 = s3Settings(ctx)
  return { WHARF_S3_ENDPOINT: s3.endpoint, WHARF_S3_ACCESS_KEY: s3.accessKey, WHARF_S3_SECRET_KEY: s3.secretKey, WHARF_S3_REGION: s3.region }
}

/**
 * The environment of the supervisor: the platform's settings as `make up` has them (ports, home), but
 * not the store's keys or the database URL that infra derives itself (with them set, the store would
 * count as an operator's external S3, which no supervisor starts).
 */
export function supervisorEnv(ctx: InfraContext): NodeJS.ProcessEnv {
  const env = servicesEnv(ctx)
  if (!ctx.cfg.s3.external) for (const k of ['WHARF_S3_ENDPOINT', 'WHARF_S3_ACCESS_KEY', 'WHARF_S3_SECRET_KEY', 'WHARF_S3_REGION']) delete env[k]
  if (!ctx.cfg.databaseUrl) delete env.WHARF_DATABASE_URL
  // Generated by infra: the supervisor reads it from $WHARF_HOME/secrets as `make up` does.
  if (ctx.cfg.registryAuth.password === undefined) delete env.WHARF_REGISTRY_PASSWORD
  if (ctx.cfg.logs.inputSecret === undefined) delete env.WHARF_LOG_INPUT_SECRET
  if (!ctx.cfg.dockerHost) delete env.WHARF_DOCKER_HOST
  return env
}

/**
 * The command path in one Node process: the controller and the projector whose read models a command
 * waits for (`services/main.ts --except builder,router,scheduler,...`: every service but the builder,
 * the router and the workers, which run apart), logging pino JSON to $WHARF_HOME/logs/wharf.log.
 */
export const services = daemonPart({
  name: 'wharf',
  address: ({ cfg }) => `http://127.0.0.1:${cfg.ports.controller}`,
  pidfile: ({ paths }) => paths.services.pid,
  log: ({ paths }) => paths.services.log,
  ports: ({ cfg }) => [{ port: cfg.ports.controller, env: 'WHARF_CONTROLLER_PORT' }],
  // Healthy but for the router and the workers, which run apart and start after this process (the
  // projector makes the read models' tables they read): their health is their parts' own.
  healthy: ({ cfg }) => healthyButApart(`http://127.0.0.1:${cfg.ports.controller}/healthz`),
  // The Node the running services were started on: the pinned one unless started another way.
  describe: async ({ paths }) => ({ version: VERSION, detail: `node ${await nodeOf(livePid(paths.services.pid))}` }),
  prepare(ctx) {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`)
    writeFileSync(buildFile(ctx), `${currentBuild() ?? 'unknown'}\n`)
    return {
      cmd: process.execPath,
      // A young generation of up to 64 MB a semi-space (Node 26's own grows to about 32 MB here): a replay
      // (`admin:replay`, a projection's rebuild) decodes a million events that are garbage once their chunk of
      // 1,000 is folded, and scavenges less often, each copying about as much (1M events, loaded machine: 101
      // scavenges -> 64, the replay's Node CPU 11.9 -> 10.4 s). V8 grows it only while allocation runs high.
      args: ['--enable-source-maps', `--max-semi-space-size=${SEMI_SPACE_MB}`, MAIN, '--except', SERVICES_APART],
      logFile: ctx.paths.services.log,
      pidfile: ctx.paths.services.pid,
      env: { PATH: process.env.PATH, ...servicesEnv(ctx) },
    }
  },
})

/** The services that run in processes of their own (the builder, the router, the workers), not in the services process. */
export const SERVICES_APART = ['builder', 'router', ...WORKERS].join(',')

/** `/healthz` answers 200, or 503 with no failing check but the router's and the workers'. */
async function healthyButApart(url: string): Promise<boolean> {
  const res = await request(url, { headersTimeout: 3000, bodyTimeout: 3000 })
  const body = (await res.body.json().catch(() => ({}))) as { checks?: Record<string, { ok?: boolean }> }
  if (res.statusCode === 200) return true
  if (res.statusCode !== 503 || !body.checks) return false
  return Object.entries(body.checks).every(([name, c]) => name === 'router' || name === 'workers' || c.ok === true)
}

/**
 * The workers in a Node process of their own (`services/main.ts --only scheduler,publisher,logger,
 * logspout,backups,webhooks`): what reacts to the log off the command path (deploys, container
 * events, log lines, backups, webhook deliveries), so that none of it holds the event loop a command
 * passes through twice (the controller's and the projector's). Started after the services process
 * (the projector makes the tables they read); answers its health on a unix socket
 * (`$WHARF_HOME/run/workers.sock`), which the controller's `/healthz` asks; serves its `/metrics` on
 * `WHARF_WORKERS_METRICS_PORT`; its logger takes syslog on `WHARF_SYSLOG_PORT`; logs to
 * $WHARF_HOME/logs/workers.log.
 */
export const workers = daemonPart({
  name: 'workers',
  address: ({ paths }) => paths.workers.socket,
  pidfile: ({ paths }) => paths.workers.pid,
  log: ({ paths }) => paths.workers.log,
  ports: ({ cfg }) => [{ port: cfg.ports.syslog, env: 'WHARF_SYSLOG_PORT' }],
  // Up once its consumers run and its publisher follows the engine.
  healthy: async ({ paths }) => (await askHealthSocket(paths.workers.socket)).ok,
  describe: async ({ paths }) => {
    const h = await askHealthSocket(paths.workers.socket)
    return { version: VERSION, ...(h.ok ? {} : { detail: h.reason }) }
  },
  prepare(ctx) {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`)
    const port = ctx.cfg.metrics.workersPort
    return {
      cmd: process.execPath,
      args: ['--enable-source-maps', MAIN, '--only', WORKERS.join(',')],
      logFile: ctx.paths.workers.log,
      pidfile: ctx.paths.workers.pid,
      env: { PATH: process.env.PATH, ...servicesEnv(ctx), WHARF_METRICS_PORT: port === undefined ? 'off' : String(port) },
    }
  },
})

/**
 * The router in a Node process of its own (`services/main.ts --only router`): its event loop is
 * shared with no other service, so the controller's and the projector's work and garbage never delay
 * a route change. Started after the services process (the projector makes the tables it reads);
 * answers its health on a unix socket (`$WHARF_HOME/run/router.sock`), which the controller's
 * `/healthz` asks; serves its `/metrics` on `WHARF_ROUTER_METRICS_PORT`; logs to
 * $WHARF_HOME/logs/router.log.
 */
export const router = daemonPart({
  name: 'router',
  address: ({ paths }) => paths.router.socket,
  pidfile: ({ paths }) => paths.router.pid,
  log: ({ paths }) => paths.router.log,
  ports: () => [],
  // Up once its nginx holds its full table (it posts it on start).
  healthy: async ({ paths }) => (await askHealthSocket(paths.router.socket)).ok,
  describe: async ({ paths }) => {
    const h = await askHealthSocket(paths.router.socket)
    return { version: VERSION, ...(h.ok ? {} : { detail: h.reason }) }
  },
  prepare(ctx) {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`)
    const port = ctx.cfg.metrics.routerPort
    return {
      cmd: process.execPath,
      args: ['--enable-source-maps', MAIN, '--only', 'router'],
      logFile: ctx.paths.router.log,
      pidfile: ctx.paths.router.pid,
      env: { PATH: process.env.PATH, ...servicesEnv(ctx), WHARF_METRICS_PORT: port === undefined ? 'off' : String(port) },
    }
  },
})

/** The version of the Node binary process `pid` runs (this process's own when it is the same binary). */
async function nodeOf(pid: number | undefined): Promise<string> {
  if (!pid) return 'unknown'
  try {
    const exe = realpathSync(`/proc/${pid}/exe`)
    if (exe === realpathSync(process.execPath)) return process.version
    const { stdout } = await execFileP(exe, ['--version'], { timeout: 5000 })
    return stdout.trim()
  } catch {
    return 'unknown'
  }
}

/**
 * The builder (git push over SSH, docker build) in a Node process of its own
 * (`services/main.ts --only builder`), so that a push that exhausts it takes no other service down;
 * logs to $WHARF_HOME/logs/builder.log.
 */
export const builder = daemonPart({
  name: 'builder',
  address: ({ cfg }) => `ssh://git@127.0.0.1:${cfg.ports.builder}`,
  pidfile: ({ paths }) => paths.builder.pid,
  log: ({ paths }) => paths.builder.log,
  ports: ({ cfg }) => [{ port: cfg.ports.builder, env: 'WHARF_BUILDER_PORT' }],
  healthy: ({ cfg }) => portOpen(cfg.ports.builder),
  prepare(ctx) {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`)
    return {
      cmd: process.execPath,
      args: ['--enable-source-maps', MAIN, '--only', 'builder'],
      logFile: ctx.paths.builder.log,
      pidfile: ctx.paths.builder.pid,
      // The scheduler runs in the services process: a push waits for its deploy all the same.
      env: { PATH: process.env.PATH, ...servicesEnv(ctx), WHARF_PUSH_WAITS_FOR_DEPLOY: '1' },
    }
  },
})

/** The compiled infra entry point, whose `supervise` command is the supervisor. */
const INFRA_MAIN = fileURLToPath(new URL('../main.js', import.meta.url))

/** The supervisor (infra/supervisor.ts): starts again any part that died; its record is `make status`'s restarts. */
export const supervisor = daemonPart({
  name: 'supervisor',
  address: ({ paths }) => paths.supervisor.state,
  pidfile: ({ paths }) => paths.supervisor.pid,
  log: ({ paths }) => paths.supervisor.log,
  ports: () => [],
  // Up once it has written its record (it does at its first look at the parts).
  healthy: async ({ paths }) => {
    try {
      return (JSON.parse(readFileSync(paths.supervisor.state, 'utf8')) as { pid?: number }).pid === livePid(paths.supervisor.pid)
    } catch {
      return false
    }
  },
  prepare(ctx) {
    if (!existsSync(INFRA_MAIN)) throw new Error(`${INFRA_MAIN} is missing: run \`npm run build\` first`)
    return {
      cmd: process.execPath,
      args: ['--enable-source-maps', INFRA_MAIN, 'supervise'],
      logFile: ctx.paths.supervisor.log,
      pidfile: ctx.paths.supervisor.pid,
      env: { PATH: process.env.PATH, ...supervisorEnv(ctx) },
    }
  },
})
