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
import type { InfraContext, Part } from './part.js'
import { contextFor, down, up } from './platform.js'
import { nats } from './parts/nats.js'
import { nginx } from './parts/nginx.js'
import { postgres } from './parts/postgres.js'
import { services, servicesEnv, supervisor, supervisorEnv } from './parts/services.js'
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
  stop(): Promise<void>
}

/** The parts a drill kills, with the pid to kill and what "back" means. */
export const KILLABLE: Record<string, Part> = { postgres, nats, nginx, services }

/** Starts NATS, Postgres, nginx, the services and the supervisor (watching those four) under a new home. */
export async function startDrill(opts: { dockerHost?: string; say?: (line: string) => void } = {}): Promise<Drill> {
  const home = mkdtempSync(join(tmpdir(), 'wharf-drill-'))
  chmodSync(home, 0o755)
  const env: NodeJS.ProcessEnv = {
    WHARF_HOME: home,
    WHARF_NAMESPACE: `drill${Date.now().toString(36)}`,
    ...(opts.dockerHost ? { WHARF_DOCKER_HOST: opts.dockerHost } : {}),
  }
  const names = ['CONTROLLER', 'BUILDER', 'ROUTER', 'ROUTER_TLS', 'REGISTRY', 'NATS', 'NATS_MONITOR', 'PG', 'S3', 'CEPH_MON', 'REDIS', 'SYSLOG']
  for (const n of names) env[`WHARF_${n}_PORT`] = String(await freePort())
  const cfg = loadConfig(env)
  const ctx = contextFor(cfg, opts.say ?? (() => {}))
  let supervisorPid = 0
  const stop = async () => {
    if (supervisorPid) await stopPid(supervisorPid, { timeoutMs: 10_000 })
    await down(ctx, [services, nats, postgres, nginx]).catch(() => undefined)
    rmSync(home, { recursive: true, force: true, maxRetries: 3 })
  }
  try {
    await up(ctx, { real: [nats, postgres, nginx], services: false })
    // As the services part starts them, from the compiled tree (the supervisor's restarts do the same).
    startDaemon({
      cmd: process.execPath,
      args: [SERVICES_MAIN, '--except', 'builder'],
      logFile: ctx.paths.services.log,
      pidfile: ctx.paths.services.pid,
      env: { PATH: process.env.PATH, ...servicesEnv(ctx) },
    })
    await waitUntil('the services', () => services.status(ctx).then((s) => s.up), 60_000)
    supervisorPid = startDaemon({
      cmd: process.execPath,
      args: [INFRA_MAIN, 'supervise', '--parts', 'nats,postgres,nginx,wharf'],
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
    return { home, cfg, ctx, supervisorPid, api, app, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** What one kill did. */
export interface KillResult {
  part: string
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
export async function killAndRecover(d: Drill, partName: keyof typeof KILLABLE, opts: { everyMs?: number; timeoutMs?: number } = {}): Promise<KillResult> {
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
  await sleep(1_000)
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
  // A few more seconds of traffic after recovery: anything still failing then is counted too.
  await sleep(1_000)
  stop = true
  await Promise.all([commands, router])
  const lastFail = outcomes.findLast((o) => !o.ok && o.at >= killedAt - everyMs)
  const okAgain = lastFail ? outcomes.find((o) => o.ok && o.at > lastFail.at) : outcomes.find((o) => o.ok && o.at > killedAt)
  const commandsBackAt = okAgain ? (lastFail ? okAgain.at : killedAt) : 0
  return {
    part: partName,
    restartedMs: restartedAt ? restartedAt - killedAt : -1,
    backMs: backAt ? backAt - killedAt : -1,
    commandsBackMs: commandsBackAt ? commandsBackAt - killedAt : -1,
    commandsAfterBackMs: commandsBackAt && backAt ? commandsBackAt - backAt : -1,
    commandsFailed,
    commandsSent,
    routerFailed,
    routerSent,
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
