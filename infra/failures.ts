/**
 * Kill -9 drills against a platform of its own (NATS, Postgres, nginx and the services under a
 * temporary home on free ports, watched by the supervisor), while a steady stream of commands
 * (`config:set`, a few a second) and of requests through the router runs. Used by
 * `infra/failures.int.test.ts` and by `npm run bench:failures`. Only processes this harness started
 * are killed, by the pid it recorded.
 */
import { mkdtempSync, chmodSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { loadConfig, type WharfConfig } from '../core/config.js'
import { DockerEngine, dockerClient } from '../core/engine/docker.js'
import { LABELS } from '../domain/runtime/labels.js'
import type { InfraContext, Part } from './part.js'
import { freeSubnet, readTopology, startHosts, stopHosts, type Topology } from './hosts.js'
import { contextFor, down, up } from './platform.js'
import { ensureBusybox } from './parts/docker.js'
import { simulatedHosts } from './parts/hosts.js'
import { nats } from './parts/nats.js'
import { nginx } from './parts/nginx.js'
import { postgres } from './parts/postgres.js'
import { router, services, SERVICES_APART, servicesEnv, supervisor, supervisorEnv, workers } from './parts/services.js'
import { WORKERS } from '../services/runtime.js'
import { isAlive, livePid, startDaemon, stopPid, waitUntil } from './proc.js'
import { freePort } from './test-env.js'

/** The compiled entry points (`make test` and `npm run bench:*` build them); a test run from source uses these too. */
const DIST = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../' : '../dist/', import.meta.url))
const INFRA_MAIN = join(DIST, 'infra/main.js')
const SERVICES_MAIN = join(DIST, 'services/main.js')

export interface Drill {
  home: string
  cfg: WharfConfig
  ctx: InfraContext
  supervisorPid: number
  /** The platform's API, with the token of an admin who owns `app`. */
  api(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: unknown }>
  app: string
  /**
   * An app that serves through the router (busybox httpd from the engine's `busybox:latest`, imported
   * into the registry by `builds:create`), at web=1 once the drill started; undefined without an
   * engine and a registry.
   */
  web?: string
  stop(): Promise<void>
}

/**
 * The web app's process: an httpd that stops at once on SIGTERM (busybox httpd as PID 1 ignores it)
 * and exits 0 there, as many apps do: the scheduler's restart policy (`any`) starts it again after an
 * engine restart stopped it (with `on-failure` it stayed "complete"; see the README, "Surviving failures").
 */
const WEB_PROCFILE = { web: `mkdir -p /www && echo ok > /www/index.html && (httpd -f -p $PORT -h /www & trap 'exit 0' TERM; wait)` }

/** The parts a drill kills, with the pid to kill and what "back" means. */
export const KILLABLE: Record<string, Part> = { postgres, nats, nginx, services, router, workers, engine: simulatedHosts }

/**
 * Starts NATS, Postgres, nginx, the services, the router and the workers (each in a process of its own, as `make up` runs them)
 * and the supervisor (watching those six) under a new home. With `dockerHost` and `registry` (`127.0.0.1:<port>` of a registry that engine pulls from)
 * it also deploys {@link Drill.web}. With `ownEngine` (and `registry`) instead of `dockerHost`, the
 * drill's Docker engine is one of its own: a simulated host (infra/hosts.ts, a network namespace
 * with its own engine and swarm, `--userland-proxy=false`), which the supervisor also watches, so
 * it may be killed (`engine`) without touching any other test's engine.
 */
export async function startDrill(
  opts: {
    dockerHost?: string
    registry?: string
    /** The registry's user and password (it requires the platform's credentials). */
    registryAuth?: { username: string; password: string }
    ownEngine?: boolean
    say?: (line: string) => void
  } = {},
): Promise<Drill> {
  const home = mkdtempSync(join(tmpdir(), 'wharf-drill-'))
  chmodSync(home, 0o755)
  const env: NodeJS.ProcessEnv = {
    WHARF_HOME: home,
    WHARF_NAMESPACE: `drill${Date.now().toString(36)}`,
    ...(opts.dockerHost ? { WHARF_DOCKER_HOST: opts.dockerHost } : {}),
  }
  const names = ['CONTROLLER', 'BUILDER', 'ROUTER', 'ROUTER_TLS', 'REGISTRY', 'NATS', 'NATS_MONITOR', 'PG', 'S3', 'CEPH_MON', 'REDIS', 'SYSLOG']
  // Distinct: a port just freed may be handed out again by the next bind to port 0.
  const taken = new Set<number>()
  for (const n of names) {
    let port = await freePort()
    while (taken.has(port)) port = await freePort()
    taken.add(port)
    env[`WHARF_${n}_PORT`] = String(port)
  }
  // The engine pulls the web app's image from there (this drill runs no registry of its own).
  if (opts.registry) env.WHARF_REGISTRY_PORT = opts.registry.split(':')[1]
  if (opts.registryAuth) {
    env.WHARF_REGISTRY_USER = opts.registryAuth.username
    env.WHARF_REGISTRY_PASSWORD = opts.registryAuth.password
  }
  let topology: Topology | undefined
  if (opts.ownEngine) {
    if (!opts.registry) throw new Error('a drill with an engine of its own needs a registry to pull from')
    const id = Math.random()
      .toString(36)
      .slice(2, 6)
      .replace(/[^a-z0-9]/g, 'x')
    try {
      topology = await startHosts({
        // Where the supervisor's `hosts` part looks: $WHARF_HOME/hosts.
        dir: join(home, 'hosts'),
        count: 1,
        prefix: `wd${id}`,
        subnet: await freeSubnet(),
        registryPort: Number(opts.registry.split(':')[1]),
        ...(opts.say ? { say: opts.say } : {}),
      })
    } catch (err) {
      rmSync(home, { recursive: true, force: true, maxRetries: 3 })
      throw err
    }
    const h = topology.hosts[0]!
    env.WHARF_DOCKER_HOST = h.dockerHost
    env.WHARF_HOST_ADDRESS = h.address
  }
  let cfg: WharfConfig
  try {
    cfg = loadConfig(env)
  } catch (err) {
    if (topology) await stopHosts(topology).catch(() => undefined)
    rmSync(home, { recursive: true, force: true, maxRetries: 3 })
    throw err
  }
  const dockerHost = env.WHARF_DOCKER_HOST
  const engine = dockerHost ? DockerEngine.at(dockerHost) : undefined
  const ctx = contextFor(cfg, opts.say ?? (() => {}))
  let supervisorPid = 0
  let web: string | undefined
  const stop = async () => {
    if (supervisorPid) await stopPid(supervisorPid, { timeoutMs: 10_000 })
    await down(ctx, [services, router, workers, nats, postgres, nginx]).catch(() => undefined)
    // As recorded now: the supervisor records the pid of an engine it started again.
    if (topology) await stopHosts(readTopology(topology.dir) ?? topology, { keepDir: true }).catch(() => undefined)
    else if (engine) {
      // The web app's Swarm services and its image tags in the engine.
      for (const svc of await engine.listServices({ [LABELS.namespace]: cfg.namespace }).catch(() => []))
        await engine.removeService(svc.id).catch(() => undefined)
      if (web && opts.registry)
        for (const img of await engine.listImages(`${opts.registry}/${web}`).catch(() => []))
          for (const tag of img.tags ?? []) await engine.removeImage(tag).catch(() => undefined)
    }
    rmSync(home, { recursive: true, force: true, maxRetries: 3 })
  }
  try {
    // The base image the web app runs (`make up` makes it in its own engine).
    if (topology) await ensureBusybox(ctx, dockerClient(topology.hosts[0]!.dockerHost))
    await up(ctx, { real: [nats, postgres, nginx], services: false })
    // As the services part starts them, from the compiled tree (the supervisor's restarts do the same).
    startDaemon({
      cmd: process.execPath,
      args: [SERVICES_MAIN, '--except', SERVICES_APART],
      logFile: ctx.paths.services.log,
      pidfile: ctx.paths.services.pid,
      env: { PATH: process.env.PATH, ...servicesEnv(ctx) },
    })
    await waitUntil('the services', () => services.status(ctx).then((s) => s.up), 60_000)
    // The router in its process of its own, as the router part starts it, once the projector made its tables.
    startDaemon({
      cmd: process.execPath,
      args: [SERVICES_MAIN, '--only', 'router'],
      logFile: ctx.paths.router.log,
      pidfile: ctx.paths.router.pid,
      env: { PATH: process.env.PATH, ...servicesEnv(ctx), WHARF_METRICS_PORT: 'off' },
    })
    await waitUntil('the router', () => router.status(ctx).then((s) => s.up), 60_000)
    // The workers (scheduler, publisher, logger, ...) in their process of their own, as the workers part starts them.
    startDaemon({
      cmd: process.execPath,
      args: [SERVICES_MAIN, '--only', WORKERS.join(',')],
      logFile: ctx.paths.workers.log,
      pidfile: ctx.paths.workers.pid,
      env: { PATH: process.env.PATH, ...servicesEnv(ctx), WHARF_METRICS_PORT: 'off' },
    })
    await waitUntil('the workers', () => workers.status(ctx).then((s) => s.up), 60_000)
    supervisorPid = startDaemon({
      cmd: process.execPath,
      args: [INFRA_MAIN, 'supervise', '--parts', `nats,postgres,nginx,wharf,router,workers${topology ? ',hosts' : ''}`],
      logFile: ctx.paths.supervisor.log,
      pidfile: ctx.paths.supervisor.pid,
      env: { PATH: process.env.PATH, ...supervisorEnv(ctx) },
    })
    await waitUntil('the supervisor', () => supervisor.status(ctx).then((s) => s.up), 30_000)
    const base = `http://127.0.0.1:${cfg.ports.controller}`
    let token = ''
    const api: Drill['api'] = async (method, path, body) => {
      const res = await request(`${base}${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        headersTimeout: 15_000,
        bodyTimeout: 15_000,
      })
      const text = await res.body.text()
      return { status: res.statusCode, body: text ? (JSON.parse(text) as unknown) : undefined }
    }
    const creds = { username: 'drill', password: 'drill-password-1', email: 'drill@example.com' }
    const reg = await api('POST', '/v1/auth/register', creds)
    if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`)
    const login = await api('POST', '/v1/auth/login', { username: creds.username, password: creds.password })
    token = (login.body as { token: string }).token
    const app = 'drillapp'
    const created = await api('POST', '/v1/apps', { name: app })
    if (created.status !== 201) throw new Error(`apps:create: ${created.status} ${JSON.stringify(created.body)}`)
    const drill: Drill = { home, cfg, ctx, supervisorPid, api, app, stop }
    if (engine && opts.registry) {
      web = `drillweb${Date.now().toString(36).slice(-5)}`
      const made = await api('POST', '/v1/apps', { name: web })
      if (made.status !== 201) throw new Error(`apps:create ${web}: ${made.status} ${JSON.stringify(made.body)}`)
      const built = await api('POST', `/v1/apps/${web}/builds`, { image: 'busybox:latest', procfile: WEB_PROCFILE, port: 5000 })
      if (built.status !== 201) throw new Error(`builds:create ${web}: ${built.status} ${JSON.stringify(built.body)}`)
      drill.web = web
      const t0 = Date.now()
      while (!(await converged(drill, 1))) {
        if (Date.now() - t0 > 60_000) throw new Error(`${web} did not run web=1 behind the router within 60 s`)
        await sleep(250)
      }
    }
    return drill
  } catch (err) {
    await stop()
    throw err
  }
}

/** What one kill did. */
export interface KillResult {
  part: string
  /** When the SIGKILL was sent, ms since the epoch. */
  killedAt: number
  /** From the kill until a new process of the part was running (the supervisor started it), ms. */
  restartedMs: number
  /** From the kill until the part's process ran again and answered, ms. */
  backMs: number
  /** From the kill until commands succeeded again after the last that failed, ms (0: none failed). */
  commandsBackMs: number
  /** From the part being back until commands succeeded again, ms (negative: before it was back). */
  commandsAfterBackMs: number
  /** Commands that failed (or timed out) during the outage, of all sent meanwhile. */
  commandsFailed: number
  commandsSent: number
  /** Requests through the router (nginx) to the controller's host that failed, of all sent. */
  routerFailed: number
  routerSent: number
  /** Requests through the router to the web app (`Drill.web`) that failed, of all sent (0/0 without it). */
  appFailed: number
  appSent: number
  /** When each failed request to the app was sent, ms after the kill (the first 200). */
  appFailedAtMs: number[]
  /** The formation the deploy in flight scaled to. */
  deployTo?: number
  /** The web processes waited for after the recovery. */
  convergeTo?: number
  /** From the kill until the web app converged (`converge` of {@link converged}), ms; -1: never. */
  convergedMs?: number
  /** Why the web app had not converged at the last look before it did (or before the time was up). */
  notConverged?: string
  /** /healthz answered 503 at some point after the kill. */
  sawUnhealthy: boolean
  /** The `reason` of the first 503 after the kill (one line), if any. */
  unhealthyReason?: string
  /** From the part being back until /healthz answered 200 again, ms. */
  healthyAfterBackMs: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Kills the part's process with SIGKILL while `config:set` runs every `everyMs` (each awaited, so a
 * stalled platform sends fewer) and the router is asked every 50 ms; waits until the supervisor
 * brought it back, commands succeed and /healthz is 200 again (or `timeoutMs`).
 */
export async function killAndRecover(
  d: Drill,
  partName: keyof typeof KILLABLE,
  opts: {
    everyMs?: number
    timeoutMs?: number
    /** Scales the web app to this many processes just before the kill: a deploy in flight during the outage. */
    deployTo?: number
    /**
     * Waits after the recovery until the web app runs this many processes, the engine's containers
     * and the announced ones being the same (the platform caught up); default `deployTo`.
     */
    convergeTo?: number
    /**
     * Holds the supervisor (SIGSTOP) from just before the kill for this long, ms, then lets it go on
     * (SIGCONT): the part stays dead that long, e.g. to see apps answer while no engine runs.
     */
    holdSupervisorMs?: number
  } = {},
): Promise<KillResult> {
  const part = KILLABLE[partName]!
  const everyMs = opts.everyMs ?? 250
  const timeoutMs = opts.timeoutMs ?? 60_000
  const pids = part.processes?.(d.ctx) ?? []
  const pid = pids[0]
  if (!pid) throw new Error(`${partName} is not running`)
  let stop = false
  let n = 0
  let commandsSent = 0
  let commandsFailed = 0
  let lastOkAt = 0
  const outcomes: { at: number; ok: boolean }[] = []
  const commands = (async () => {
    while (!stop) {
      const t0 = Date.now()
      commandsSent++
      let ok = false
      try {
        const res = await d.api('POST', `/v1/apps/${d.app}/config`, { values: { DRILL: String(++n) } })
        ok = res.status === 200
      } catch {
        ok = false
      }
      if (ok) lastOkAt = Date.now()
      else commandsFailed++
      // When the command was sent decides which side of the outage it counts on.
      outcomes.push({ at: ok ? Date.now() : t0, ok })
      await sleep(Math.max(0, everyMs - (Date.now() - t0)))
    }
  })()
  let routerSent = 0
  let routerFailed = 0
  const router = (async () => {
    while (!stop) {
      routerSent++
      try {
        const res = await request(`http://127.0.0.1:${d.cfg.ports.router}/v1/openapi.json`, {
          headers: { host: `wharf.${d.cfg.domain}` },
          headersTimeout: 5_000,
          bodyTimeout: 5_000,
        })
        await res.body.dump()
        if (res.statusCode !== 200) routerFailed++
      } catch {
        routerFailed++
      }
      await sleep(50)
    }
  })()
  let appSent = 0
  let appFailed = 0
  const appOutcomes: { at: number; ok: boolean }[] = []
  const app = (async () => {
    if (!d.web) return
    while (!stop) {
      appSent++
      const at = Date.now()
      const ok = (await webAnswers(d)) === 200
      if (!ok) appFailed++
      appOutcomes.push({ at, ok })
      await sleep(50)
    }
  })()
  await sleep(1_000)
  if (opts.deployTo !== undefined) {
    if (!d.web) throw new Error('a deploy in flight needs the web app (an engine and a registry)')
    const scaled = await d.api('POST', `/v1/apps/${d.web}/formation`, { web: opts.deployTo })
    if (scaled.status !== 200) throw new Error(`ps:scale web=${opts.deployTo}: ${scaled.status} ${JSON.stringify(scaled.body)}`)
  }
  if (opts.holdSupervisorMs) {
    process.kill(d.supervisorPid, 'SIGSTOP')
    setTimeout(() => process.kill(d.supervisorPid, 'SIGCONT'), opts.holdSupervisorMs)
  }
  const killedAt = Date.now()
  process.kill(pid, 'SIGKILL')
  let backAt = 0
  let restartedAt = 0
  let sawUnhealthy = false
  let unhealthyReason: string | undefined
  let healthyAt = 0
  const deadline = killedAt + timeoutMs
  while (Date.now() < deadline) {
    const health = await request(`http://127.0.0.1:${d.cfg.ports.controller}/healthz`, { headersTimeout: 3_000, bodyTimeout: 3_000 }).then(
      async (r) => {
        const body = (await r.body.json().catch(() => ({}))) as { reason?: string }
        if (r.statusCode === 503 && unhealthyReason === undefined) unhealthyReason = body.reason
        return r.statusCode
      },
      () => 0,
    )
    if (health !== 200) sawUnhealthy = true
    if (!restartedAt && (part.processes?.(d.ctx) ?? []).every((p) => p !== undefined && p !== pid)) restartedAt = Date.now()
    if (!backAt) {
      const now = part.processes?.(d.ctx) ?? []
      if (
        now.every((p) => p !== undefined && p !== pid && isAlive(p)) &&
        (await part.status(d.ctx).then(
          (s) => s.up,
          () => false,
        ))
      )
        backAt = Date.now()
    }
    if (backAt && health === 200 && lastOkAt > backAt) {
      healthyAt = Date.now()
      break
    }
    await sleep(100)
  }
  let convergedAt = 0
  let notConverged: string | undefined
  const convergeTo = opts.convergeTo ?? opts.deployTo
  if (convergeTo !== undefined) {
    while (Date.now() < deadline) {
      if (await converged(d, convergeTo, (why) => (notConverged = why))) {
        convergedAt = Date.now()
        break
      }
      await sleep(250)
    }
  }
  // A few more seconds of traffic after recovery: anything still failing then is counted too.
  await sleep(1_000)
  stop = true
  await Promise.all([commands, router, app])
  const lastFail = outcomes.findLast((o) => !o.ok && o.at >= killedAt - everyMs)
  const okAgain = lastFail ? outcomes.find((o) => o.ok && o.at > lastFail.at) : outcomes.find((o) => o.ok && o.at > killedAt)
  const commandsBackAt = okAgain ? (lastFail ? okAgain.at : killedAt) : 0
  return {
    part: partName,
    killedAt,
    restartedMs: restartedAt ? restartedAt - killedAt : -1,
    backMs: backAt ? backAt - killedAt : -1,
    commandsBackMs: commandsBackAt ? commandsBackAt - killedAt : -1,
    commandsAfterBackMs: commandsBackAt && backAt ? commandsBackAt - backAt : -1,
    commandsFailed,
    commandsSent,
    routerFailed,
    routerSent,
    appFailed,
    appSent,
    appFailedAtMs: appOutcomes
      .filter((o) => !o.ok)
      .slice(0, 200)
      .map((o) => o.at - killedAt),
    ...(opts.deployTo !== undefined ? { deployTo: opts.deployTo } : {}),
    ...(convergeTo !== undefined ? { convergeTo, convergedMs: convergedAt ? convergedAt - killedAt : -1 } : {}),
    ...(notConverged !== undefined ? { notConverged } : {}),
    sawUnhealthy,
    ...(unhealthyReason !== undefined ? { unhealthyReason } : {}),
    healthyAfterBackMs: healthyAt && backAt ? healthyAt - backAt : -1,
  }
}

/** True when `pid` from a pidfile of the drill is running (for tests). */
export function partPid(d: Drill, part: keyof typeof KILLABLE): number | undefined {
  const p = KILLABLE[part]!.processes?.(d.ctx) ?? []
  return p[0] ?? livePid(d.ctx.paths.services.pid)
}

/**
 * The nginx masters running with this drill's config (`nginx: master process ... -c <conf>`), by
 * pid: after nginx was killed, exactly one must run, and it must be the pid its pid file records.
 */
export function nginxMasters(d: Drill): number[] {
  const conf = d.ctx.paths.nginx.conf
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8')
      if (cmdline.startsWith('nginx: master process') && cmdline.includes(conf)) out.push(Number(name))
    } catch {
      // Gone meanwhile.
    }
  }
  return out
}

/** The status of `GET /` of the web app through the router (0: no answer). */
async function webAnswers(d: Drill): Promise<number> {
  try {
    const res = await request(`http://127.0.0.1:${d.cfg.ports.router}/`, {
      headers: { host: `${d.web}.${d.cfg.domain}` },
      headersTimeout: 5_000,
      bodyTimeout: 5_000,
    })
    await res.body.dump()
    return res.statusCode
  } catch {
    return 0
  }
}

/**
 * The web app runs `web` processes of its current release and serves: the formation says so, the
 * publisher announced that many up (ps), they are the ones the engine runs, and it answers through
 * the router.
 */
export async function converged(d: Drill, web: number, why?: (line: string) => void): Promise<boolean> {
  if (!d.web) return false
  try {
    const [ps, releases] = await Promise.all([d.api('GET', `/v1/apps/${d.web}/ps`), d.api('GET', `/v1/apps/${d.web}/releases?limit=1`)])
    if (ps.status !== 200 || releases.status !== 200) return false
    const { formation, processes } = ps.body as {
      formation: Record<string, number>
      processes: { type: string; state: string; release: number; container: string }[]
    }
    const current = (releases.body as { releases: { version: number }[] }).releases[0]?.version
    const up = processes.filter((p) => p.type === 'web' && p.state === 'up' && p.release === current)
    if (formation.web !== web || up.length !== web) {
      why?.(
        `formation ${formation.web}, release v${current}; ps: ${processes.map((p) => `${p.container.slice(0, 12)} ${p.type} v${p.release} ${p.state}`).join(', ')}`,
      )
      return false
    }
    // What ps says is what runs: the engine's running containers of the app are those announced up.
    if (d.cfg.dockerHost) {
      const running = await DockerEngine.at(d.cfg.dockerHost).listContainers({ labels: { [LABELS.namespace]: d.cfg.namespace, [LABELS.app]: d.web } })
      const ids = running.map((c) => c.id.slice(0, 12)).sort()
      if (JSON.stringify(ids) !== JSON.stringify(up.map((p) => p.container.slice(0, 12)).sort())) {
        why?.(`ps up: ${up.map((p) => p.container.slice(0, 12)).join(', ')}; the engine runs: ${ids.join(', ')}`)
        return false
      }
    }
    const status = await webAnswers(d)
    if (status !== 200) why?.(`the app answers ${status}`)
    return status === 200
  } catch (err) {
    why?.(`cannot tell: ${(err as Error).message}`)
    return false
  }
}

/** The test registry's credentials (`make test` gives them), if any. */
export function testRegistryAuth(): { username: string; password: string } | undefined {
  const username = process.env.WHARF_TEST_REGISTRY_USER
  const password = process.env.WHARF_TEST_REGISTRY_PASSWORD
  return username && password ? { username, password } : undefined
}
