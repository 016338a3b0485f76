import { resolve } from 'node:path'
import type { HealthThresholds } from './health.js'
import { parseOutboundAllow, type OutboundRule } from './outbound.js'

/**
 * Everything Wharf reads from the environment, read once by a `main.ts` (services, infra, CLI) and
 * passed down as this object. Every port is overridable; the README lists the variables.
 */
export interface WharfConfig {
  /** Where every part keeps its data: `WHARF_HOME`, default `./.wharf` (absolute here). */
  home: string
  /** Interface everything binds to and connects to: 127.0.0.1. */
  host: '127.0.0.1'
  ports: {
    /** Controller HTTP API and /healthz: `WHARF_CONTROLLER_PORT`, default 8000. */
    controller: number
    /** Builder SSH: `WHARF_BUILDER_PORT`, default 2222. */
    builder: number
    /** Router HTTP (nginx): `WHARF_ROUTER_PORT`, default 8080. */
    router: number
    /** Router HTTPS (nginx, by SNI with the certificates of `wharf certs:attach`): `WHARF_ROUTER_TLS_PORT`, default 8443. */
    routerTls: number
    /** Docker registry: `WHARF_REGISTRY_PORT`, default 5000. */
    registry: number
    /** NATS client port: `WHARF_NATS_PORT`, default 14222 (not the system 4222). */
    nats: number
    /** NATS monitoring port: `WHARF_NATS_MONITOR_PORT`, default 18222. */
    natsMonitor: number
    /** PostgreSQL: `WHARF_PG_PORT`, default 15432 (not the system 5432). */
    postgres: number
    /** The S3 API of Wharf's own Ceph RADOS Gateway: `WHARF_S3_PORT`, default 7480 (radosgw's own default). */
    s3: number
    /**
     * Wharf's Ceph monitor (msgr v2): `WHARF_CEPH_MON_PORT`, default 16789 (not the system 3300/6789).
     * The OSD and the gateway's cluster connections take free ports in 6800-7568 by themselves.
     */
    cephMon: number
    /** redis-server for the registry's blob-descriptor cache (when `registryCache` is `redis`): `WHARF_REDIS_PORT`, default 16379. */
    redis: number
    /** The logger's syslog receiver, TCP and UDP: `WHARF_SYSLOG_PORT`, default 5514. */
    syslog: number
  }
  /** The log plane (logspout, logger): bounds and limits. */
  logs: LogsConfig
  /** What one push, build, request, `run` or user may take; each is an environment variable (README, Bounds and quotas). */
  limits: LimitsConfig
  /** The S3 endpoint Wharf keeps its objects in (registry images, backups, log archives, event exports). */
  s3: S3Config
  /**
   * The registry's blob-descriptor cache: `WHARF_REGISTRY_CACHE`, `inmemory` (default: in the
   * registry's process) or `redis` (Debian's redis-server, started by infra on `WHARF_REDIS_PORT`).
   */
  registryCache: 'inmemory' | 'redis'
  /**
   * The credentials of the platform's registry (htpasswd, basic auth): `WHARF_REGISTRY_USER` (default
   * `wharf`) and `WHARF_REGISTRY_PASSWORD`. Without a password here, infra generates one once under
   * `$WHARF_HOME/secrets/registry-password` and passes both on to the services; a service started
   * without a password reaches the registry with no credentials (and is refused).
   */
  registryAuth: { username: string; password: string | undefined }
  /** Read-model backups to the store: schedule and retention. */
  backups: BackupConfig
  /** An existing Docker engine to use instead of starting one (`WHARF_DOCKER_HOST`, e.g. unix:///var/run/docker.sock). */
  dockerHost: string | undefined
  /**
   * A swarm manager's engine, which the publisher and logspout ask which task made a container (a
   * worker's engine has no task API): `WHARF_SWARM_MANAGER`, default `WHARF_DOCKER_HOST`.
   */
  swarmManager: string | undefined
  /** The platform domain apps answer under: `WHARF_DOMAIN`, default `wharf.localhost`. */
  domain: string
  /** Event namespace (stream WHARF_EVENTS, subjects wharf.ev.>): `WHARF_NAMESPACE`, default `wharf`. */
  namespace: string
  /** pino level: `WHARF_LOG_LEVEL`, default `info`. */
  logLevel: string
  /** The router's nginx shared dict (routes, peers, certificates), MiB: `WHARF_ROUTER_DICT_MB`, default 64 (10,000 apps take a few). */
  routerDictMb: number
  /**
   * How long a `web` container asked to stop (deploy, scale down, rollback, restart) keeps serving
   * after routers were told to take it out, before it gets SIGTERM, ms: `WHARF_DRAIN_TIME` as `5s`,
   * default `5s`; `0s` sends SIGTERM at once.
   */
  drainMs: number
  /** The longest a draining `web` container waits for the routers to take it out (`WHARF_DRAIN_MAX_TIME`), ms. */
  drainMaxMs: number
  /**
   * Prometheus metrics. `port`: where a process that runs no controller serves `/metrics`
   * (`WHARF_METRICS_PORT`, default 9464; `off` for none). `maxApps`: distinct apps a process labels
   * metrics with, the rest counted as `_other` (`WHARF_METRICS_MAX_APPS`, default 500).
   * `routerPort`: the port `make up` gives the router's process of its own for its `/metrics`
   * (`WHARF_ROUTER_METRICS_PORT`, default 9465; `off` for none). `workersPort`: the same for the
   * workers' process (`WHARF_WORKERS_METRICS_PORT`, default 9466; `off` for none).
   */
  metrics: { port: number | undefined; maxApps: number; routerPort: number | undefined; workersPort: number | undefined }
  /**
   * Where a router running in another process of this host answers its health, a unix socket
   * (`WHARF_ROUTER_HEALTH_SOCKET`; `make up` sets it to `$WHARF_HOME/run/router.sock`): the
   * controller's `/healthz` asks it when its own process runs no router. Unset: no such check.
   */
  routerHealthSocket: string | undefined
  /**
   * Where the workers' process of this host (scheduler, publisher, logger, logspout, backups, webhooks
   * apart from the controller) answers its health, a unix socket (`WHARF_WORKERS_HEALTH_SOCKET`;
   * `make up` sets it to `$WHARF_HOME/run/workers.sock`): the controller's `/healthz` asks it when its
   * own process runs no publisher. Unset: no such check.
   */
  workersHealthSocket: string | undefined
  /** NATS URL: `WHARF_NATS_URL`, default derived from the port; a comma-separated list names every server of a cluster. */
  natsUrl: string
  /** Replicas of the platform's JetStream streams: `WHARF_NATS_REPLICAS`, 1 (default), 3 or 5 (a NATS cluster). */
  natsReplicas: 1 | 3 | 5
  /**
   * The address of this Docker host as the router reaches it (a swarm node's address): `WHARF_HOST_ADDRESS`,
   * default `127.0.0.1` (one host). The publisher announces its containers at `<address>:<port>`.
   */
  hostAddress: string
  /**
   * Who may reach the apps' published ports directly, not through the router (`WHARF_APP_PORT_SOURCES`,
   * comma-separated IPv4 addresses or CIDRs, default none): on a worker host, the router host's address.
   * Everyone else from outside this host is dropped by the engine's firewall (DOCKER-USER).
   */
  appPortSources: string[]
  /** Postgres URL: `WHARF_DATABASE_URL`, default derived from the port and the password `make up` generated. */
  databaseUrl: string | undefined
  /**
   * Who may register: `WHARF_REGISTRATION`, default `open` (anyone); `admin_only` (an admin registers
   * others); `closed` (nobody). The first user may always register, and becomes the admin.
   */
  registration: 'open' | 'admin_only' | 'closed'
  /**
   * Targets webhooks and log drains may reach although they are loopback, private, link-local or this
   * machine's: `WHARF_OUTBOUND_ALLOW`, a comma list of `host`, `host:port` or CIDR ranges (default none).
   * The platform's own ports on this machine stay refused whatever it lists.
   */
  outboundAllow: readonly OutboundRule[]
  /** The npm registry buildpack-style Node builds install from: `WHARF_NPM_REGISTRY`, default npm's own. */
  npmRegistry: string | undefined
  /** Bounds of `git push` over SSH (the builder). */
  pushes: PushConfig
  /** API tokens and sign-in. */
  auth: AuthConfig
  /**
   * Namespaces of other platforms whose event-log exports this one may import (a move between
   * platforms sharing a store): `WHARF_IMPORT_FROM`, a comma list, default none (only its own).
   */
  importFrom: readonly string[]
  /**
   * When `/healthz` and `admin:status` call a consumer behind: `WHARF_HEALTH_MAX_LAG` events behind the
   * log's head (default 1000), or behind with no progress for `WHARF_HEALTH_STALL` seconds (default 10).
   */
  health: HealthThresholds
}

/** A registry user and password (never logged or printed). */
export interface RegistryCredentials {
  username: string
  password: string
}

/** Bounds of `git push` over SSH; each is an environment variable (README, Pushes and sign-in). */
export interface PushConfig {
  /** An SSH connection the client keeps silent this long, ms, is closed (not while its build runs): `WHARF_PUSH_IDLE_TIMEOUT` in seconds, default 60. */
  idleMs: number
  /** Pushes one user may run at once (the builder's count; more are refused with `WHARF_BUSY`): `WHARF_PUSHES_PER_USER`, default 3. */
  perUser: number
  /** Pushes the builder runs at once, all users together: `WHARF_PUSHES_MAX`, default 10. Its Postgres pool holds this many connections and 4 more. */
  max: number
  /**
   * A push waits for its deploy and route although the scheduler and router run in another process
   * of the platform (`make up` runs the builder apart): `WHARF_PUSH_WAITS_FOR_DEPLOY=1`. Default: only
   * when they run in the builder's own process.
   */
  waitsForDeploy: boolean
}

/** API tokens and sign-in throttling. */
export interface AuthConfig {
  /** How long an API token is valid after it was issued, ms: `WHARF_TOKEN_TTL` (`12h`, `30d`), default `30d`. */
  tokenTtlMs: number
  /** Failed sign-ins a minute for one user name, and for one client address, before `WHARF_RATE_LIMITED`: `WHARF_LOGIN_FAILURES`, default 10. */
  loginFailures: number
}

/** Bounds of the log plane; each is an environment variable (README, Settings). */
export interface LogsConfig {
  /** Lines the logger keeps per app in memory (`wharf logs` and the start of `logs -f`): `WHARF_LOG_LINES`, default 10_000. */
  appLines: number
  /** Lines a second one app may send (its containers and syslog together), per logspout and at the receiver: `WHARF_LOG_RATE`, default 10_000. */
  appRate: number
  /** How long the log stream keeps lines, hours: `WHARF_LOG_STREAM_HOURS`, default 24 (older lines live in the hourly archives). */
  streamHours: number
  /** The most the log stream holds, MiB: `WHARF_LOG_STREAM_MB`, default 1024 (the oldest lines go first). */
  streamMb: number
  /**
   * The secret the apps' log-input tokens are derived from (the syslog receiver files a line under an
   * app only with that app's token): `WHARF_LOG_INPUT_SECRET`, at least 16 characters. Without one
   * here, infra generates one once under `$WHARF_HOME/secrets/log-input-secret` and passes it on to the
   * services; a service started without one files no syslog line and shows no token.
   */
  inputSecret: string | undefined
}

/** Bounds and quotas of what users may make the platform do (README, Bounds and quotas). */
export interface LimitsConfig {
  /** The largest pack one `git push` may send, bytes (git's `receive.maxInputSize`): `WHARF_PUSH_MAX_MB`, default 1024. */
  pushBytes: number
  /** The most output one build shows and keeps, bytes: `WHARF_BUILD_LOG_MAX_MB`, default 16 (beyond it, a note and the last lines). */
  buildLogBytes: number
  /** The longest a Docker build may take, ms: `WHARF_BUILD_TIMEOUT` as `90s`, `30m`, `1h` (default `30m`, at least 10 s). */
  buildTimeoutMs: number
  /**
   * The largest request body the router lets through to an app, nginx size: `WHARF_MAX_BODY_SIZE_CAP`,
   * default `100m`. An app's `WHARF_MAX_BODY_SIZE` above it, or `0` (nginx's "no limit"), gets this one.
   */
  bodySizeCap: string
  /** Stdin of a `run -i` the controller holds for a command that does not read it, bytes: `WHARF_RUN_STDIN_MAX_KB`, default 1024; beyond, the client is paused. */
  runStdinBytes: number
  /** The most processes one `run` container may have: `WHARF_RUN_PIDS`, default 256. */
  runPids: number
  /** The memory of one `run` container, bytes: `WHARF_RUN_MEMORY_MB`, default 512 (an app's `limits:set` memory for the type, when lower, wins). */
  runMemoryBytes: number
  /** The CPUs of one `run` container: `WHARF_RUN_CPUS`, default 1 (an app's `limits:set` cpu for the type, when lower, wins). */
  runCpus: number
  /** The most apps one user may own (admins: no limit): `WHARF_APPS_PER_USER`, default 50. */
  appsPerUser: number
  /** The most processes (replicas of every type) one user's apps may run together (admins: no limit): `WHARF_REPLICAS_PER_USER`, default 100. */
  replicasPerUser: number
}

/**
 * Where the object store answers and with which keys. External when `WHARF_S3_ENDPOINT`,
 * `WHARF_S3_ACCESS_KEY` and `WHARF_S3_SECRET_KEY` are set (`WHARF_S3_REGION`, default `us-east-1`):
 * then infra starts no Ceph and only checks the endpoint. Otherwise the endpoint is Wharf's own gateway
 * on 127.0.0.1:<s3 port> and the keys are empty here: infra resolves them from
 * `$WHARF_HOME/secrets/s3.json`, written when it created the S3 user, and passes them on to the
 * services as the variables above.
 */
export interface S3Config {
  /** `http(s)://host:port`, addressed path-style. */
  endpoint: string
  accessKey: string
  secretKey: string
  region: string
  external: boolean
}

/** When the read-model database is backed up by itself, and how many backups are kept. */
export interface BackupConfig {
  /**
   * Time between scheduled backups, ms: `WHARF_BACKUP_INTERVAL` as `30m`, `6h`, `1d` (default `24h`);
   * `off` (0 here) schedules none (`wharf admin:backup` still works). Counted from the newest backup
   * in the store, so a restart does not add one.
   */
  intervalMs: number
  /** Complete backups kept; older ones are deleted after each new one: `WHARF_BACKUP_KEEP`, default 7 (at least 1). */
  keep: number
}

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `intervalMs` as `WHARF_BACKUP_INTERVAL` spells it: `off`, or the largest whole unit (`1d`, `90m`). */
export function durationText(ms: number): string {
  if (ms === 0) return 'off'
  const [unit, size] = Object.entries(DURATION_UNITS)
    .reverse()
    .find(([, size]) => ms % size === 0) ?? ['s', 1000]
  return `${Math.round(ms / size)}${unit}`
}

function backupConfig(env: NodeJS.ProcessEnv): BackupConfig {
  const rawInterval = env.WHARF_BACKUP_INTERVAL || '24h'
  let intervalMs = 0
  if (rawInterval !== 'off') {
    const m = /^(\d+)([smhd])$/.exec(rawInterval)
    intervalMs = m ? Number(m[1]) * DURATION_UNITS[m[2]!]! : NaN
    if (!(intervalMs >= 60_000))
      throw new Error(`WHARF_BACKUP_INTERVAL must be a duration of at least a minute (30m, 6h, 1d) or off, got ${JSON.stringify(rawInterval)}`)
  }
  const rawKeep = env.WHARF_BACKUP_KEEP || '7'
  const keep = Number(rawKeep)
  if (!Number.isInteger(keep) || keep < 1 || keep > 10_000)
    throw new Error(`WHARF_BACKUP_KEEP must be a whole number from 1 to 10000, got ${JSON.stringify(rawKeep)}`)
  return { intervalMs, keep }
}

/** A duration setting as `90s`, `30m`, `12h`, `30d`, in ms; at least `minMs`. */
function duration(env: NodeJS.ProcessEnv, name: string, fallback: string, minMs: number): number {
  const raw = env[name] || fallback
  const m = /^(\d+)([smhd])$/.exec(raw)
  const ms = m ? Number(m[1]) * DURATION_UNITS[m[2]!]! : NaN
  if (!(ms >= minMs && ms <= 3650 * DURATION_UNITS.d!))
    throw new Error(`${name} must be a duration of at least ${durationText(minMs)} (90s, 30m, 12h, 30d), got ${JSON.stringify(raw)}`)
  return ms
}

function limitsConfig(env: NodeJS.ProcessEnv): LimitsConfig {
  const mb = 1024 * 1024
  const rawTimeout = env.WHARF_BUILD_TIMEOUT || '30m'
  const m = /^(\d+)([smhd])$/.exec(rawTimeout)
  const buildTimeoutMs = m ? Number(m[1]) * DURATION_UNITS[m[2]!]! : NaN
  if (!(buildTimeoutMs >= 10_000 && buildTimeoutMs <= 86_400_000))
    throw new Error(`WHARF_BUILD_TIMEOUT must be a duration from 10s to 1d (90s, 30m, 2h), got ${JSON.stringify(rawTimeout)}`)
  const bodySizeCap = (env.WHARF_MAX_BODY_SIZE_CAP || '100m').toLowerCase()
  if (!/^[1-9][0-9]{0,5}[km]?$/.test(bodySizeCap) && !/^[1-9][0-9]?g$/.test(bodySizeCap))
    throw new Error(`WHARF_MAX_BODY_SIZE_CAP must be an nginx size above 0 (512k, 100m, 1g), got ${JSON.stringify(env.WHARF_MAX_BODY_SIZE_CAP)}`)
  const cpus = Number(env.WHARF_RUN_CPUS || '1')
  if (!(cpus >= 0.01 && cpus <= 1024)) throw new Error(`WHARF_RUN_CPUS must be a number from 0.01 to 1024, got ${JSON.stringify(env.WHARF_RUN_CPUS)}`)
  return {
    pushBytes: count(env, 'WHARF_PUSH_MAX_MB', 1024, 1024 * 1024) * mb,
    buildLogBytes: count(env, 'WHARF_BUILD_LOG_MAX_MB', 16, 1024 * 1024) * mb,
    buildTimeoutMs,
    bodySizeCap,
    runStdinBytes: count(env, 'WHARF_RUN_STDIN_MAX_KB', 1024, 1024 * 1024) * 1024,
    runPids: count(env, 'WHARF_RUN_PIDS', 256, 1_000_000),
    runMemoryBytes: count(env, 'WHARF_RUN_MEMORY_MB', 512, 1024 * 1024) * mb,
    runCpus: cpus,
    appsPerUser: count(env, 'WHARF_APPS_PER_USER', 50, 1_000_000),
    replicasPerUser: count(env, 'WHARF_REPLICAS_PER_USER', 100, 1_000_000),
  }
}

function registryCache(raw: string | undefined): WharfConfig['registryCache'] {
  if (raw === undefined || raw === '' || raw === 'inmemory') return 'inmemory'
  if (raw === 'redis') return raw
  throw new Error(`WHARF_REGISTRY_CACHE must be inmemory or redis, got ${JSON.stringify(raw)}`)
}

function registryAuth(env: NodeJS.ProcessEnv): WharfConfig['registryAuth'] {
  const username = env.WHARF_REGISTRY_USER || 'wharf'
  // htpasswd keeps `user:hash` lines: a colon or a line break in the name would break the file.
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(username))
    throw new Error(`WHARF_REGISTRY_USER must be 1-64 letters, digits, '.', '_' or '-', got ${JSON.stringify(username)}`)
  const password = env.WHARF_REGISTRY_PASSWORD || undefined
  // bcrypt reads at most 72 bytes; a line break would end htpasswd's input early. (The value is never in the message.)
  if (password !== undefined && (Buffer.byteLength(password) > 72 || /[\r\n]/.test(password)))
    throw new Error('WHARF_REGISTRY_PASSWORD must be at most 72 bytes on one line')
  return { username, password }
}

function logInputSecret(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined
  // (The value is never in the message.)
  if (raw.length < 16 || /\s/.test(raw)) throw new Error('WHARF_LOG_INPUT_SECRET must be at least 16 characters, with no space or line break')
  return raw
}

function s3Config(env: NodeJS.ProcessEnv, s3Port: number): S3Config {
  const region = env.WHARF_S3_REGION || 'us-east-1'
  const given = (['WHARF_S3_ENDPOINT', 'WHARF_S3_ACCESS_KEY', 'WHARF_S3_SECRET_KEY'] as const).filter((k) => env[k])
  if (given.length === 0) return { endpoint: `http://127.0.0.1:${s3Port}`, accessKey: '', secretKey: '', region, external: false }
  if (given.length < 3) {
    throw new Error(`an external S3 needs WHARF_S3_ENDPOINT, WHARF_S3_ACCESS_KEY and WHARF_S3_SECRET_KEY together; only ${given.join(', ')} is set`)
  }
  const endpoint = env.WHARF_S3_ENDPOINT!.replace(/\/+$/, '')
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new Error(`WHARF_S3_ENDPOINT must be an http(s) URL, got ${JSON.stringify(endpoint)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`WHARF_S3_ENDPOINT must be an http(s) URL, got ${JSON.stringify(endpoint)}`)
  return { endpoint, accessKey: env.WHARF_S3_ACCESS_KEY!, secretKey: env.WHARF_S3_SECRET_KEY!, region, external: true }
}

function count(env: NodeJS.ProcessEnv, name: string, fallback: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`${name} must be a whole number from 1 to ${max}, got ${JSON.stringify(raw)}`)
  return n
}

function port(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} must be a port number (1-65535), got ${JSON.stringify(raw)}`)
  return n
}

/** Reads the environment once into a typed config. Throws a clear error on a bad value. */
export function loadConfig(env: NodeJS.ProcessEnv, cwd = process.cwd()): WharfConfig {
  const ports = {
    controller: port(env, 'WHARF_CONTROLLER_PORT', 8000),
    builder: port(env, 'WHARF_BUILDER_PORT', 2222),
    router: port(env, 'WHARF_ROUTER_PORT', 8080),
    routerTls: port(env, 'WHARF_ROUTER_TLS_PORT', 8443),
    registry: port(env, 'WHARF_REGISTRY_PORT', 5000),
    nats: port(env, 'WHARF_NATS_PORT', 14222),
    natsMonitor: port(env, 'WHARF_NATS_MONITOR_PORT', 18222),
    postgres: port(env, 'WHARF_PG_PORT', 15432),
    s3: port(env, 'WHARF_S3_PORT', 7480),
    cephMon: port(env, 'WHARF_CEPH_MON_PORT', 16789),
    redis: port(env, 'WHARF_REDIS_PORT', 16379),
    syslog: port(env, 'WHARF_SYSLOG_PORT', 5514),
  }
  const seen = new Map<number, string>()
  for (const [name, p] of Object.entries(ports)) {
    const other = seen.get(p)
    if (other) throw new Error(`port ${p} is given to both ${other} and ${name}`)
    seen.set(p, name)
  }
  return {
    home: resolve(cwd, env.WHARF_HOME || '.wharf'),
    host: '127.0.0.1',
    ports,
    registryCache: registryCache(env.WHARF_REGISTRY_CACHE),
    registryAuth: registryAuth(env),
    backups: backupConfig(env),
    dockerHost: env.WHARF_DOCKER_HOST || undefined,
    swarmManager: env.WHARF_SWARM_MANAGER || env.WHARF_DOCKER_HOST || undefined,
    domain: env.WHARF_DOMAIN || 'wharf.localhost',
    namespace: env.WHARF_NAMESPACE || 'wharf',
    logLevel: env.WHARF_LOG_LEVEL || 'info',
    routerDictMb: count(env, 'WHARF_ROUTER_DICT_MB', 64, 4096),
    drainMs: duration(env, 'WHARF_DRAIN_TIME', '5s', 0),
    drainMaxMs: duration(env, 'WHARF_DRAIN_MAX_TIME', '30s', 0),
    metrics: {
      port: env.WHARF_METRICS_PORT === 'off' ? undefined : port(env, 'WHARF_METRICS_PORT', 9464),
      maxApps: count(env, 'WHARF_METRICS_MAX_APPS', 500, 100_000),
      routerPort: env.WHARF_ROUTER_METRICS_PORT === 'off' ? undefined : port(env, 'WHARF_ROUTER_METRICS_PORT', 9465),
      workersPort: env.WHARF_WORKERS_METRICS_PORT === 'off' ? undefined : port(env, 'WHARF_WORKERS_METRICS_PORT', 9466),
    },
    routerHealthSocket: env.WHARF_ROUTER_HEALTH_SOCKET || undefined,
    workersHealthSocket: env.WHARF_WORKERS_HEALTH_SOCKET || undefined,
    natsUrl: env.WHARF_NATS_URL || `nats://127.0.0.1:${ports.nats}`,
    natsReplicas: natsReplicas(env.WHARF_NATS_REPLICAS),
    hostAddress: hostAddress(env.WHARF_HOST_ADDRESS),
    appPortSources: appPortSources(env.WHARF_APP_PORT_SOURCES),
    databaseUrl: env.WHARF_DATABASE_URL || undefined,
    registration: registration(env.WHARF_REGISTRATION),
    npmRegistry: env.WHARF_NPM_REGISTRY || undefined,
    outboundAllow: parseOutboundAllow(env.WHARF_OUTBOUND_ALLOW),
    health: { maxLag: count(env, 'WHARF_HEALTH_MAX_LAG', 1000, 100_000_000), stallS: count(env, 'WHARF_HEALTH_STALL', 10, 86_400) },
    s3: s3Config(env, ports.s3),
    pushes: {
      idleMs: count(env, 'WHARF_PUSH_IDLE_TIMEOUT', 60, 24 * 3600) * 1000,
      perUser: count(env, 'WHARF_PUSHES_PER_USER', 3, 1000),
      max: count(env, 'WHARF_PUSHES_MAX', 10, 1000),
      waitsForDeploy: env.WHARF_PUSH_WAITS_FOR_DEPLOY === '1',
    },
    importFrom: (env.WHARF_IMPORT_FROM ?? '')
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean),
    auth: { tokenTtlMs: duration(env, 'WHARF_TOKEN_TTL', '30d', 60_000), loginFailures: count(env, 'WHARF_LOGIN_FAILURES', 10, 100_000) },
    limits: limitsConfig(env),
    logs: {
      appLines: count(env, 'WHARF_LOG_LINES', 10_000, 1_000_000),
      appRate: count(env, 'WHARF_LOG_RATE', 10_000, 10_000_000),
      streamHours: count(env, 'WHARF_LOG_STREAM_HOURS', 24, 24 * 365),
      streamMb: count(env, 'WHARF_LOG_STREAM_MB', 1024, 1024 * 1024),
      inputSecret: logInputSecret(env.WHARF_LOG_INPUT_SECRET),
    },
  }
}

function natsReplicas(raw: string | undefined): WharfConfig['natsReplicas'] {
  if (raw === undefined || raw === '' || raw === '1') return 1
  if (raw === '3' || raw === '5') return Number(raw) as 3 | 5
  throw new Error(`WHARF_NATS_REPLICAS must be 1, 3 or 5, got ${JSON.stringify(raw)}`)
}

function hostAddress(raw: string | undefined): string {
  if (raw === undefined || raw === '') return '127.0.0.1'
  const octets = raw.split('.')
  if (octets.length !== 4 || !octets.every((o) => /^(0|[1-9][0-9]{0,2})$/.test(o) && Number(o) <= 255) || raw === '0.0.0.0')
    throw new Error(`WHARF_HOST_ADDRESS must be this host's IPv4 address, got ${JSON.stringify(raw)}`)
  return raw
}

function appPortSources(raw: string | undefined): string[] {
  const list = (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  for (const s of list) {
    const [addr, bits, ...rest] = s.split('/')
    const octets = (addr ?? '').split('.')
    const okAddr = octets.length === 4 && octets.every((o) => /^(0|[1-9][0-9]{0,2})$/.test(o) && Number(o) <= 255)
    const okBits = bits === undefined || (/^[0-9]{1,2}$/.test(bits) && Number(bits) >= 8 && Number(bits) <= 32)
    if (!okAddr || !okBits || rest.length > 0) throw new Error(`WHARF_APP_PORT_SOURCES must be IPv4 addresses or CIDRs (/8 to /32), got ${JSON.stringify(s)}`)
  }
  return list
}

function registration(raw: string | undefined): WharfConfig['registration'] {
  if (raw === undefined || raw === '') return 'open'
  if (raw === 'open' || raw === 'admin_only' || raw === 'closed') return raw
  throw new Error(`WHARF_REGISTRATION must be open, admin_only or closed, got ${JSON.stringify(raw)}`)
}

/**
 * What the Docker engine needs to push to and pull from the platform's registry at
 * `127.0.0.1:<registry port>` (its X-Registry-Auth), or undefined without credentials.
 */
export function registryLogin(cfg: Pick<WharfConfig, 'ports' | 'registryAuth'>): RegistryLogin | undefined {
  const { username, password } = cfg.registryAuth
  return password === undefined ? undefined : { serveraddress: `127.0.0.1:${cfg.ports.registry}`, username, password }
}

/** The `Authorization` header of a plain HTTP request to the registry, or none without credentials. */
export function registryHeaders(auth: { username: string; password: string | undefined } | undefined): Record<string, string> {
  if (auth?.password === undefined) return {}
  return { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` }
}

/** Credentials for one registry host, as the Docker engine takes them. */
export interface RegistryLogin extends RegistryCredentials {
  /** `host:port` of the registry they are for; sent to no other. */
  serveraddress: string
}

/** The URL an app answers on through the router: `http://<app>.<domain>:<router port>`. */
export function appUrl(cfg: Pick<WharfConfig, 'domain' | 'ports'>, app: string): string {
  return `http://${app}.${cfg.domain}:${cfg.ports.router}`
}
