/**
 * The composition root of the Wharf services: reads the environment once, builds the shared adapters
 * (event store on JetStream, Postgres pool), starts every service or those named by `--only a,b`,
 * and on SIGTERM/SIGINT stops them in reverse order, then drains NATS and closes Postgres.
 */
import { hostname } from 'node:os'
import pg from 'pg'
import type { S3Client } from '@aws-sdk/client-s3'
import { loadConfig } from '../core/config.js'
import { ensureBuckets, s3Client, s3ObjectStores } from '../core/objectstore/index.js'
import { createLogger } from '../core/log.js'
import { appLabel } from '../core/metrics.js'
import { VERSION } from '../core/version.js'
import { wharfCatalogue } from '../domain/index.js'
import { EventSubjects, JetStreamEventStore, LogSubjects } from '../events/index.js'
import { LogStream } from '../logs/index.js'
import { builder } from './builder/service.js'
import { controller } from './controller/service.js'
import { projector } from './projector/service.js'
import { scheduler } from './scheduler/service.js'
import { publisher } from './publisher/service.js'
import { router } from './router/service.js'
import { platformStore } from './store/index.js'
import { backups } from './store/service.js'
import { logger } from './logger/service.js'
import { logspout } from './logspout/service.js'
import { webhooks } from './webhooks/service.js'
import { listenMetrics } from './metrics.js'
import { selectServices, type HealthReport, type RunningService, type ServiceDefinition } from './runtime.js'
import { consumers, type HealthThresholds } from '../core/health.js'
import { serveHealthSocket } from '../core/health-socket.js'
import { pathsFor } from '../core/paths.js'

/** Every service this process can run, in start order (the projector migrates the read models first). */
export const SERVICES: readonly ServiceDefinition[] = [projector, controller, scheduler, builder, publisher, router, logger, logspout, backups, webhooks]

/** How long a clean stop may take before the process exits anyway, ms. */
const STOP_TIMEOUT_MS = 15_000

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(`usage: node dist/services/main.js [--only ${SERVICES.map((s) => s.name).join(',')}]\n`)
    for (const s of SERVICES) console.log(`  ${s.name.padEnd(12)} ${s.description}`)
    return
  }
  const selected = selectServices(process.argv.slice(2), SERVICES)
  const cfg = loadConfig(process.env)
  const log = createLogger({ level: cfg.logLevel })
  if (!cfg.databaseUrl) throw new Error('WHARF_DATABASE_URL is not set (make up sets it)')
  // Wrong keys or an endpoint that does not answer: a clear error naming it, before anything starts.
  let s3: S3Client | undefined
  if (cfg.s3.accessKey) {
    await ensureBuckets(cfg.s3, { create: false })
    s3 = s3Client(cfg.s3)
  }
  const objects = s3 && s3ObjectStores(s3, cfg.s3.endpoint)
  const catalogue = wharfCatalogue()
  const store = await JetStreamEventStore.connect({
    servers: cfg.natsUrl,
    catalogue,
    subjects: new EventSubjects(cfg.namespace),
    name: `wharf-${hostname()}-${process.pid}`,
    logger: log.child({ service: 'events' }),
    replicas: cfg.natsReplicas,
  })
  const logs = await LogStream.connect({
    servers: cfg.natsUrl,
    subjects: new LogSubjects(cfg.namespace),
    name: `wharf-logs-${hostname()}-${process.pid}`,
    logger: log.child({ service: 'logs' }),
    replicas: cfg.natsReplicas,
  })
  const pool = new pg.Pool({ connectionString: cfg.databaseUrl, max: 20, application_name: 'wharf' })
  pool.on('error', (err) => log.error({ err }, 'idle Postgres connection failed'))
  // A checked-out connection that breaks between two queries (Postgres restarted) emits 'error' on
  // the client: without a listener that is an uncaught exception. Its next query fails, and the
  // caller's retry takes another connection.
  pool.on('connect', (client) => client.on('error', (err) => log.warn({ err }, 'Postgres connection lost')))
  const platform = platformStore({ cfg, pool, store, catalogue, log: log.child({ service: 'store' }), objects })

  const running: { name: string; svc: RunningService }[] = []
  const healthOf = async (name: string) => running.find((r) => r.name === name)?.svc.health?.()
  // The service being started: a signal during start-up waits for it, then stops it with the rest.
  let starting: Promise<unknown> = Promise.resolve()
  let stopping: Promise<void> | undefined
  const stop = (signal: string) =>
    (stopping ??= (async () => {
      log.info({ signal }, 'stopping')
      const timer = setTimeout(() => {
        log.error({ timeoutMs: STOP_TIMEOUT_MS }, 'clean stop took too long; exiting')
        process.exit(1)
      }, STOP_TIMEOUT_MS)
      await starting.catch(() => undefined)
      for (const { name, svc } of [...running].reverse()) {
        await svc.stop().catch((err) => log.error({ err, service: name }, 'service did not stop cleanly'))
        log.info({ service: name }, 'stopped')
      }
      await logs.close().catch((err) => log.error({ err }, 'closing the log connection failed'))
      await store.close().catch((err) => log.error({ err }, 'closing NATS failed'))
      await pool.end().catch((err) => log.error({ err }, 'closing Postgres failed'))
      s3?.destroy()
      clearTimeout(timer)
      log.info('stopped cleanly')
    })())
  process.once('SIGTERM', () => void stop('SIGTERM').then(() => process.exit(0)))
  process.once('SIGINT', () => void stop('SIGINT').then(() => process.exit(0)))

  const names = selected.map((s) => s.name)
  appLabel.max = cfg.metrics.maxApps
  // The controller serves this process's /metrics; a process without it gets a listener of its own.
  if (!names.includes('controller') && cfg.metrics.port !== undefined) {
    try {
      const m = await listenMetrics(cfg.host, cfg.metrics.port)
      running.push({ name: 'metrics', svc: { stop: () => m.close() } })
      log.info({ metrics: `http://${cfg.host}:${m.port}/metrics` }, 'metrics listener running')
    } catch (err) {
      // Metrics are for watching; a taken port must not keep the services down.
      log.error({ err, port: cfg.metrics.port }, 'cannot serve /metrics (WHARF_METRICS_PORT); running without')
    }
  }
  for (const def of selected) {
    if (stopping) return // a signal came during start-up: the services not yet started are not started
    const started = def.start({ cfg, log, store, pool, catalogue, objects, platform, logs, running: names, healthOf })
    starting = started
    let svc: RunningService
    try {
      svc = await started
    } catch (err) {
      if (stopping) return // failed because the stop closed what it used: the stop says how it ended
      throw err
    }
    running.push({ name: def.name, svc })
    log.info({ service: def.name }, 'started')
  }
  // The workers' process (`make up` runs the scheduler and the services beside it apart from the
  // controller): its health on a unix socket, which the controller's /healthz asks
  // (WHARF_WORKERS_HEALTH_SOCKET) and `make status` shows.
  if (names.includes('scheduler') && !names.includes('controller')) {
    const socket = pathsFor(cfg.home).workers.socket
    const h = await serveHealthSocket(socket, () => workersHealth(running, store, cfg.health, cfg.dockerHost))
    running.push({ name: 'health socket', svc: { stop: () => h.close() } })
    log.info({ socket }, 'answering the health of this process on a unix socket')
  }
  log.info(
    { services: names, version: VERSION, controller: names.includes('controller') ? `http://${cfg.host}:${cfg.ports.controller}` : undefined },
    'Wharf services running',
  )
}

/**
 * The health of a process of workers: its consumers of the log keep up, and its publisher (when it
 * runs one) follows its Docker engine's events; the other services' reports are in the detail.
 */
async function workersHealth(
  running: readonly { name: string; svc: RunningService }[],
  store: JetStreamEventStore,
  thresholds: HealthThresholds,
  dockerHost: string | undefined,
): Promise<HealthReport> {
  const [head, reports] = await Promise.all([
    store.lastSeq().catch(() => undefined),
    Promise.all(
      running
        .filter((r) => r.svc.health)
        .map(async (r) => [r.name, await r.svc.health!().catch((err: Error) => ({ ok: false, reason: err.message }))] as const),
    ),
  ])
  const v = consumers.verdict(head, thresholds)
  const services = Object.fromEntries(reports)
  const detail = {
    running: running.map((r) => r.name).filter((n) => n !== 'health socket' && n !== 'metrics'),
    services,
    consumers: v.consumers,
    ...(head !== undefined ? { head } : {}),
  }
  const publisher = services.publisher
  if (publisher && !publisher.ok)
    return { ok: false, reason: `publisher: ${publisher.reason ?? `not following the Docker engine's events at ${dockerHost} (down or restarting)`}`, detail }
  return v.ok ? { ok: true, detail } : { ok: false, reason: `consumers: ${v.reason}`, detail }
}

main().catch((err: Error) => {
  // One line for a person; the JSON log line for machines.
  createLogger({ name: 'main' }).fatal({ err }, 'could not start')
  console.error(`wharf: ${err.message}`)
  process.exit(1)
})
