/**
 * The logs benchmark (`npm run bench:logs`):
 * - throughput: containers of 4 apps each print 50,000 lines as fast as they can; lines/s from the
 *   first line written (Docker's timestamp) until the logger has the last line of every app (asked
 *   through the controller, `GET /logs?lines=1`);
 * - latency: a container prints a line every 20 ms for 10 s while a `logs -f` client (server-sent
 *   events through the controller) reads; line written (Docker's timestamp) -> seen by the client,
 *   p50 and p99.
 *
 * Against a platform that runs a logger and a logspout (`make up`, its controller's /healthz says so).
 * Otherwise the benchmark starts what it needs itself: NATS and Postgres of its own under a temporary
 * home on free ports (as `make test` does), and the projector, controller, logger and logspout in this
 * process, with the Docker engine of WHARF_DOCKER_HOST (or the platform's). Its containers carry a
 * namespace of their own and are removed at the end, as are its NATS and Postgres.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type Docker from 'dockerode'
import pg from 'pg'
import { request } from 'undici'
import { loadConfig, type WharfConfig } from '../core/config.js'
import { dockerClient } from '../core/engine/docker.js'
import { createLogger } from '../core/log.js'
import { withPlatformEnv } from '../core/platform-env.js'
import { wharfCatalogue } from '../domain/index.js'
import { EventSubjects, JetStreamEventStore, LogSubjects } from '../events/index.js'
import { contextFor, down, up } from '../infra/platform.js'
import { nats } from '../infra/parts/nats.js'
import { databaseUrl, postgres } from '../infra/parts/postgres.js'
import { freePort } from '../infra/test-env.js'
import { LogStream, type LogLine } from '../logs/index.js'
import { controller } from '../services/controller/service.js'
import { platformStore } from '../services/store/index.js'
import { logger } from '../services/logger/service.js'
import { logspout } from '../services/logspout/service.js'
import { projector } from '../services/projector/service.js'
import type { RunningService } from '../services/runtime.js'
import { LABELS } from '../domain/runtime/labels.js'
import { apiCaller } from './common.js'
import { sseData } from '../cli/sse.js'

const APPS = 4
const LINES_PER_APP = 50_000
const LATENCY_LINES = 500
const LATENCY_EVERY_MS = 20
const TARGETS = { linesPerSec: 20_000, p99Ms: 250 }

const platform = loadConfig(withPlatformEnv(process.env))
const dockerHost = platform.dockerHost
if (!dockerHost) throw new Error('no Docker engine: set WHARF_DOCKER_HOST, or run `make up` first (its wharf.env names the engine)')
const docker = dockerClient(dockerHost)
const suffix = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`
const cleanups: (() => Promise<unknown>)[] = []

/** The platform's controller, if it answers and runs a logger and a logspout. */
async function platformWithLogs(): Promise<string | undefined> {
  const base = process.env.WHARF_URL ?? `http://127.0.0.1:${platform.ports.controller}`
  try {
    const res = await request(`${base}/healthz`, { headersTimeout: 2_000, bodyTimeout: 2_000 })
    const body = (await res.body.json()) as { checks?: { services?: { detail?: { running?: string[] } }; workers?: { detail?: { running?: string[] } } } }
    // In the controller's process or in the workers' (`make up`: their check lists them).
    const running = [...(body.checks?.services?.detail?.running ?? []), ...(body.checks?.workers?.detail?.running ?? [])]
    return running.includes('logger') && running.includes('logspout') ? base : undefined
  } catch {
    return undefined
  }
}

/** NATS and Postgres of the benchmark's own, and the services it needs in this process. Answers the controller's URL and namespace. */
async function startOwn(): Promise<{ base: string; namespace: string }> {
  const home = mkdtempSync(join(tmpdir(), 'wharf-bench-logs-'))
  const namespace = `benchlogs${suffix}`
  const env = {
    WHARF_HOME: home,
    WHARF_NATS_PORT: String(await freePort()),
    WHARF_NATS_MONITOR_PORT: String(await freePort()),
    WHARF_PG_PORT: String(await freePort()),
    WHARF_CONTROLLER_PORT: String(await freePort()),
    WHARF_SYSLOG_PORT: String(await freePort()),
    WHARF_NAMESPACE: namespace,
    WHARF_DOCKER_HOST: dockerHost,
    WHARF_LOG_LEVEL: 'warn',
    ...(process.env.WHARF_LOG_RATE ? { WHARF_LOG_RATE: process.env.WHARF_LOG_RATE } : {}),
  }
  const base: WharfConfig = loadConfig(env)
  const ctx = contextFor(base, (line) => console.log(`  ${line}`))
  cleanups.push(async () => {
    await down(ctx, [nats, postgres])
    rmSync(home, { recursive: true, force: true })
  })
  console.log(`no platform with a logger answers: starting NATS and Postgres under ${home}`)
  await up(ctx, { real: [nats, postgres], services: false })
  const cfg = loadConfig({ ...env, WHARF_DATABASE_URL: databaseUrl(base, ctx.paths) })
  const log = createLogger({ level: 'warn' })
  const catalogue = wharfCatalogue()
  const store = await JetStreamEventStore.connect({ servers: cfg.natsUrl, catalogue, subjects: new EventSubjects(namespace) })
  const logs = await LogStream.connect({ servers: cfg.natsUrl, subjects: new LogSubjects(namespace) })
  const pool = new pg.Pool({ connectionString: cfg.databaseUrl, max: 10 })
  pool.on('error', () => {})
  const running: RunningService[] = []
  cleanups.push(async () => {
    for (const s of running.reverse()) await s.stop().catch(() => {})
    await logs.close()
    await store.close()
    await pool.end()
  })
  const defs = [projector, controller, logger, logspout]
  const platform = platformStore({ cfg, pool, store, catalogue, log, objects: undefined })
  for (const def of defs)
    running.push(
      await def.start({
        cfg,
        log,
        store,
        pool,
        catalogue,
        logs,
        objects: undefined,
        platform,
        running: defs.map((d) => d.name),
        healthOf: async () => undefined,
      }),
    )
  return { base: `http://127.0.0.1:${cfg.ports.controller}`, namespace }
}

/** A container of `app` in `namespace` running `script`, removed at the end. */
async function run(namespace: string, app: string, script: string): Promise<Docker.Container> {
  const c = await docker.createContainer({
    Image: 'busybox:latest',
    Cmd: ['sh', '-c', script],
    Labels: { [LABELS.namespace]: namespace, [LABELS.app]: app, [LABELS.type]: 'web', [LABELS.release]: '1', 'wharf.bench': 'logs' },
  })
  cleanups.push(() => c.remove({ force: true }).catch(() => {}))
  await c.start()
  return c
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!

async function main(): Promise<void> {
  const existing = await platformWithLogs()
  const { base, namespace } = existing ? { base: existing, namespace: platform.namespace } : await startOwn()
  if (existing) console.log(`against the platform at ${base}`)
  const must = apiCaller(base)
  const username = `bench-${suffix}`
  await must('POST', '/v1/auth/register', undefined, { username, password: 'bench password 1', email: `${username}@example.com` })
  const { token } = await must<{ token: string }>('POST', '/v1/auth/login', undefined, { username, password: 'bench password 1' })
  const apps = Array.from({ length: APPS }, (_, i) => `benchlogs${i}-${suffix}`)
  for (const app of [...apps, `benchtail-${suffix}`]) {
    await must('POST', '/v1/apps', token, { name: app })
    cleanups.unshift(() => must('DELETE', `/v1/apps/${app}`, token, { confirm: app }).catch(() => {}))
  }
  const newest = async (app: string) => (await must<{ lines: LogLine[] }>('GET', `/v1/apps/${app}/logs?lines=1&type=web`, token)).lines[0]

  // Throughput: from the first container's start (Docker's StartedAt: before its first line) to the last line in the logger.
  const containers = []
  for (const app of apps) containers.push(await run(namespace, app, `seq 1 ${LINES_PER_APP} | sed "s/^/line /"; sleep 3600`))
  const done = new Map<string, number>()
  const deadline = Date.now() + 300_000
  while (done.size < apps.length) {
    if (Date.now() > deadline) throw new Error('the lines did not all reach the logger within 5 minutes')
    for (const app of apps) {
      if (!done.has(app) && (await newest(app))?.text === `line ${LINES_PER_APP}`) done.set(app, Date.now())
    }
    await sleep(20)
  }
  const started = Math.min(...(await Promise.all(containers.map(async (c) => Date.parse((await c.inspect()).State.StartedAt)))))
  const total = APPS * LINES_PER_APP
  const seconds = (Math.max(...done.values()) - started) / 1000
  console.log(
    `containers -> logger: ${APPS} apps x ${LINES_PER_APP.toLocaleString('en')} lines = ${total.toLocaleString('en')} lines in ${seconds.toFixed(2)} s: ${Math.round(total / seconds).toLocaleString('en')} lines/s (target >= ${TARGETS.linesPerSec.toLocaleString('en')})`,
  )

  // Latency through `logs -f`.
  const tailApp = `benchtail-${suffix}`
  const abort = new AbortController()
  const res = await request(`${base}/v1/apps/${tailApp}/logs/stream?lines=0`, {
    headers: { authorization: `Bearer ${token}` },
    signal: abort.signal,
    bodyTimeout: 0,
  })
  if (res.statusCode !== 200) throw new Error(`logs -f: HTTP ${res.statusCode}`)
  const latencies: number[] = []
  const reading = (async () => {
    try {
      for await (const data of sseData(res.body)) {
        const seen = Date.now()
        for (const line of data.map((d) => JSON.parse(d) as LogLine))
          if (line.source === 'app' && line.text.startsWith('tick ')) latencies.push(seen - Date.parse(line.time))
      }
    } catch {
      // aborted
    }
  })()
  await run(namespace, tailApp, `i=1; while [ $i -le ${LATENCY_LINES} ]; do echo "tick $i"; usleep ${LATENCY_EVERY_MS * 1000}; i=$((i+1)); done; sleep 3600`)
  for (const end = Date.now() + 60_000; latencies.length < LATENCY_LINES && Date.now() < end; ) await sleep(100)
  abort.abort()
  await reading
  if (latencies.length < LATENCY_LINES) throw new Error(`logs -f saw ${latencies.length} of ${LATENCY_LINES} lines`)
  console.log(
    `line written -> seen by logs -f (${LATENCY_LINES} lines, one every ${LATENCY_EVERY_MS} ms): p50 ${pct(latencies, 50)} ms, p99 ${pct(latencies, 99)} ms (target p99 <= ${TARGETS.p99Ms} ms)`,
  )
}

try {
  await main()
} finally {
  for (const c of cleanups.reverse()) await c().catch((err) => console.error(`cleanup: ${(err as Error).message}`))
}
process.exit(0)
