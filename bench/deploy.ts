/**
 * The deploy benchmark (`npm run bench:deploy`): against the running platform (`make up`), how long
 * from a release being created (`ReleaseCreated`, made by `config:set`) until every container of it
 * runs, for web=1 and web=10, median of 5 releases each. Three end points:
 * - running+answering: every task of the release is running in Swarm and its published host port
 *   answers HTTP at 127.0.0.1 (measured here, by polling Swarm and the ports);
 * - DeployCompleted: the scheduler's event (it waits 1 s of stability per task);
 * - ContainerStarted: the publisher announced every container (the containers read model), when a
 *   publisher runs; "n/a" otherwise.
 * When the platform runs no scheduler (see /healthz), the benchmark runs one in this process, for its
 * own app only (its own durable subscription, deleted at the end). It registers a user, creates an
 * app and destroys it at the end.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { request } from 'undici'
import { loadConfig, registryLogin } from '../core/config.js'
import { DockerEngine, dockerClient } from '../core/engine/docker.js'
import { createLogger } from '../core/log.js'
import { withPlatformEnv } from '../core/platform-env.js'
import { apiCaller, median } from './common.js'
import { dataOf, isEvent, wharfCatalogue } from '../domain/index.js'
import { EventSubjects, JetStreamEventStore, streamId } from '../events/index.js'
import { countContainers } from '../projections/index.js'
import { LABELS } from '../domain/runtime/labels.js'
import { serviceName } from '../services/scheduler/model.js'
import { startScheduler, type RunningScheduler } from '../services/scheduler/service.js'

const cfg = loadConfig(withPlatformEnv(process.env))
const base = process.env.WHARF_URL ?? `http://127.0.0.1:${cfg.ports.controller}`
const RUNS = 5
const SIZES = [1, 10]
const TIMEOUT_MS = 60_000

const must = apiCaller(base)

const sec = (ms: number | undefined) => (ms === undefined ? 'n/a' : `${(ms / 1000).toFixed(2)} s`)

if (!cfg.dockerHost || !cfg.databaseUrl)
  throw new Error('no running platform: run `make up` first (WHARF_DOCKER_HOST and WHARF_DATABASE_URL come from .wharf/wharf.env)')
const docker = dockerClient(cfg.dockerHost)
const pool = new pg.Pool({ connectionString: cfg.databaseUrl, max: 4 })
const store = await JetStreamEventStore.connect({
  servers: cfg.natsUrl,
  catalogue: wharfCatalogue(),
  subjects: new EventSubjects(cfg.namespace),
  name: `wharf-bench-deploy-${process.pid}`,
})

const suffix = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`
const username = `bench-${suffix}`
const app = `benchdeploy-${suffix}`
const durable = `bench-deploy-${suffix}`
let token: string | undefined
let own: RunningScheduler | undefined

/** Every container of `release` running and answering on its host port: answers when, else undefined. */
async function allAnswering(service: string, release: number, n: number): Promise<boolean> {
  const tasks = (await docker.listTasks({ filters: { service: [service], 'desired-state': ['running'] } })) as any[]
  const mine = tasks.filter((t) => t.Status?.State === 'running' && t.Spec?.ContainerSpec?.Labels?.[LABELS.release] === String(release))
  if (mine.length < n) return false
  const ports = mine.map((t) => (t.Status?.PortStatus?.Ports?.[0]?.PublishedPort as number | undefined) ?? 0)
  const answers = await Promise.all(
    ports.map((p) =>
      request(`http://127.0.0.1:${p}/`, { headersTimeout: 1000, bodyTimeout: 1000 })
        .then(async (r) => {
          await r.body.text()
          return r.statusCode === 200
        })
        .catch(() => false),
    ),
  )
  return answers.every(Boolean)
}

async function deployOutcome(release: number, afterSeq: number): Promise<{ type: string; at: number } | undefined> {
  const { events } = await store.readStream(streamId('runtime', app), { fromSeq: afterSeq + 1 })
  const e = events.find((e) => (dataOf(e, 'DeployCompleted') ?? dataOf(e, 'DeployFailed'))?.release === release)
  return e ? { type: e.type, at: Date.parse(e.occurredAt) } : undefined
}

async function announced(release: number, n: number): Promise<boolean> {
  return (await countContainers(pool, app, release).catch(() => 0)) >= n
}

/** Makes a release with config:set; answers its version and when it was created (ReleaseCreated's time). */
async function release(value: string): Promise<{ version: number; at: number; runtimeSeq: number }> {
  const runtimeSeq = await store.streamVersion(streamId('runtime', app))
  await must('POST', `/v1/apps/${app}/config`, token, { values: { BENCH: value } })
  const { events } = await store.readStream(streamId('app', app))
  const e = events.filter((e) => isEvent(e, 'ReleaseCreated')).at(-1)!
  return { version: e.data.version, at: Date.parse(e.occurredAt), runtimeSeq }
}

try {
  const health = await must<{ checks: { services?: { detail?: { running?: string[] } } } }>('GET', '/healthz')
  const running = health.checks.services?.detail?.running ?? []
  const password = `pw-${suffix}-${Math.random().toString(36).slice(2)}`
  await must('POST', '/v1/auth/register', undefined, { username, password, email: `${username}@bench.invalid` })
  token = (await must<{ token: string }>('POST', '/v1/auth/login', undefined, { username, password })).token
  await must('POST', '/v1/apps', token, { name: app })
  if (!running.includes('scheduler')) {
    console.log(`the platform runs no scheduler (${running.join(', ')}): running one in this process, for ${app} only`)
    own = await startScheduler(
      {
        store,
        pool,
        docker: new DockerEngine(docker, registryLogin(cfg)),
        namespace: cfg.namespace,
        registry: `127.0.0.1:${cfg.ports.registry}`,
        log: createLogger({ level: process.env.WHARF_LOG_LEVEL ?? 'warn' }),
      },
      { durableName: durable, only: (a) => a === app },
    )
  } else console.log('using the platform scheduler')
  const publisher = running.includes('publisher')
  const procfile = { web: 'mkdir -p /tmp/www && echo ok > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www' }
  const built = await must<{ release: number }>('POST', `/v1/apps/${app}/builds`, token, { image: 'busybox:latest', procfile, port: 5000 })
  for (let i = 0; i < 600 && !(await deployOutcome(built.release, 0)); i++) await sleep(100)
  const service = serviceName(cfg.namespace, app, 'web')

  for (const n of SIZES) {
    const seq = await store.streamVersion(streamId('runtime', app))
    await must('POST', `/v1/apps/${app}/formation`, token, { web: n })
    const current = (await store.readStream(streamId('app', app))).events.filter((e) => isEvent(e, 'ReleaseCreated')).at(-1)!.data
    for (let i = 0; i < 600 && !(await deployOutcome(current.version, seq)); i++) await sleep(100)
    const rows: { running: number; completed?: number | undefined; announced?: number | undefined }[] = []
    for (let run = 1; run <= RUNS; run++) {
      const r = await release(`${n}-${run}-${Date.now()}`)
      let runningAt: number | undefined
      let completedAt: number | undefined
      let announcedAt: number | undefined
      const deadline = Date.now() + TIMEOUT_MS
      while (Date.now() < deadline && (runningAt === undefined || completedAt === undefined || (publisher && announcedAt === undefined))) {
        const [a, o, s] = await Promise.all([
          runningAt === undefined ? allAnswering(service, r.version, n) : true,
          completedAt === undefined ? deployOutcome(r.version, r.runtimeSeq) : undefined,
          publisher && announcedAt === undefined ? announced(r.version, n) : false,
        ])
        const now = Date.now()
        if (runningAt === undefined && a) runningAt = now
        if (o) {
          if (o.type !== 'DeployCompleted') throw new Error(`v${r.version}: ${o.type}`)
          completedAt = o.at
        }
        if (s && announcedAt === undefined) announcedAt = now
        await sleep(25)
      }
      if (runningAt === undefined) throw new Error(`web=${n} v${r.version}: not all running within ${TIMEOUT_MS / 1000} s`)
      const row = {
        running: runningAt - r.at,
        completed: completedAt === undefined ? undefined : completedAt - r.at,
        announced: announcedAt === undefined ? undefined : announcedAt - r.at,
      }
      rows.push(row)
      console.log(
        `web=${n} v${r.version}: running+answering ${sec(row.running)}, DeployCompleted ${sec(row.completed)}, ContainerStarted for all ${sec(row.announced)}`,
      )
    }
    const med = (k: 'running' | 'completed' | 'announced') => {
      const xs = rows.map((r) => r[k]).filter((x): x is number => x !== undefined)
      return xs.length === rows.length ? median(xs) : undefined
    }
    console.log(
      `\nweb=${n}, median of ${RUNS}: release created -> all running and answering ${sec(med('running'))}; -> DeployCompleted ${sec(med('completed'))}; -> ContainerStarted for all ${sec(med('announced'))}${publisher ? '' : ' (no publisher running)'}\n`,
    )
  }
} finally {
  if (token) await must('DELETE', `/v1/apps/${app}`, token, { confirm: app }).catch((err: Error) => console.error(`could not destroy ${app}: ${err.message}`))
  if (own) {
    // Let the scheduler remove the destroyed app's services before it stops.
    for (
      let i = 0;
      i < 100 && (await docker.listServices({ filters: { label: [`${LABELS.app}=${app}`, `${LABELS.namespace}=${cfg.namespace}`] } })).length > 0;
      i++
    )
      await sleep(100)
    await own.stop()
    await store.deleteSubscription(durable).catch(() => {})
  }
  await store.close()
  await pool.end()
}
