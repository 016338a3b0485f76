/**
 * The deploy benchmark (`npm run bench:deploy`), against the running platform (`make up`): how long
 * a `config:set` takes to be live in every container, median and max of 5 each:
 * - config-to-live with web=3: from the `config:set` call returning until every one of the 3
 *   containers answers with the new value on its own published port (127.0.0.1:<port>);
 * - release -> all serving with web=10: the same with 10 containers, from the release (the
 *   `config:set` call returning; the time from `ReleaseCreated` is printed beside it).
 * Target <= 1.5 s for both. Beside them: when every request through the router gets the new value
 * (20 in a row), and the scheduler's `DeployCompleted` (it waits 1 s of stability per task).
 *
 * The app is busybox httpd answering the value of `BENCH` (from the platform's `busybox` image,
 * through `builds:create`). When the platform runs no scheduler (see /healthz), the benchmark runs
 * one in this process, for its own app only (its own durable subscription, deleted at the end). It
 * registers a user, creates an app and destroys it at the end.
 *
 * Then the engine's floor (`BENCH_FLOOR_RUNS`, default 3; `BENCH_ONLY_FLOOR=1` for only it): a bare
 * Swarm service of the same image and command, 10 replicas, updated the same way (start-first, all
 * at once), with and without a published host port; and for every deploy the engine's steps per
 * task (task made -> container created -> started -> reported running), from the tasks and containers.
 */
import { loadavg } from 'node:os'
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
import { LABELS } from '../domain/runtime/labels.js'
import { serviceName } from '../services/scheduler/model.js'
import { startScheduler, type RunningScheduler } from '../services/scheduler/service.js'
import { get } from '../test/http.js'

const cfg = loadConfig(withPlatformEnv(process.env))
const base = process.env.WHARF_URL ?? `http://127.0.0.1:${cfg.ports.controller}`
const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const SIZES = process.env.BENCH_ONLY_FLOOR === '1' ? [] : [3, 10]
/** Runs of the bare Swarm service beside (`BENCH_FLOOR_RUNS`, 0: none). */
const FLOOR_RUNS = Number(process.env.BENCH_FLOOR_RUNS ?? 3)
const TIMEOUT_MS = 60_000
const POLL_MS = 25

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
const host = `${app}.${cfg.domain}`
const durable = `bench-deploy-${suffix}`
let token: string | undefined
let own: RunningScheduler | undefined

/** What one published port answers (its body, trimmed), or undefined. */
async function answer(port: number): Promise<string | undefined> {
  try {
    const r = await request(`http://127.0.0.1:${port}/`, { headersTimeout: 1000, bodyTimeout: 1000 })
    const body = await r.body.text()
    return r.statusCode === 200 ? body.trim() : undefined
  } catch {
    return undefined
  }
}

/** How many running tasks of `service` answer `value` on their published port. */
async function serving(service: string, value: string): Promise<number> {
  const tasks = (await docker.listTasks({ filters: { service: [service], 'desired-state': ['running'] } })) as any[]
  const ports = tasks
    .filter((t) => t.Status?.State === 'running')
    .map((t) => (t.Status?.PortStatus?.Ports?.[0]?.PublishedPort as number | undefined) ?? 0)
    .filter((p) => p > 0)
  const answers = await Promise.all(ports.map(answer))
  return answers.filter((a) => a === value).length
}

/** Whether 20 requests in a row through the router (new connections) get `value`. */
async function routed(value: string): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    const a = await get(cfg.ports.router, host, '/', false, 1_000).catch(() => undefined)
    if (a?.status !== 200 || a.body.trim() !== value) return false
  }
  return true
}

async function deployOutcome(release: number, afterSeq: number): Promise<{ type: string; at: number } | undefined> {
  const { events } = await store.readStream(streamId('runtime', app), { fromSeq: afterSeq + 1 })
  const e = events.find((e) => (dataOf(e, 'DeployCompleted') ?? dataOf(e, 'DeployFailed'))?.release === release)
  return e ? { type: e.type, at: Date.parse(e.occurredAt) } : undefined
}

/** The newest `ReleaseCreated` of the app: its version and time. */
async function lastRelease(): Promise<{ version: number; at: number }> {
  const e = (await store.readStream(streamId('app', app))).events.filter((e) => isEvent(e, 'ReleaseCreated')).at(-1)!
  return { version: e.data.version, at: Date.parse(e.occurredAt) }
}

interface Row {
  /** From the `config:set` call returning until every container answers the new value. */
  live: number
  /** The same from `ReleaseCreated`. */
  fromRelease: number
  /** Until 20 requests in a row through the router get the new value. */
  routed?: number
  completed?: number
  /** From `ReleaseCreated` until Swarm made the first task of the release (the scheduler's part). */
  toTasks?: number
  /** From the first task made until the last one running (the engine's part: creating and starting containers). */
  engine?: number
}

/** When Swarm made the first task of `release` and when the last of them reached `running` (ms epoch). */
async function taskTimes(service: string, release: number): Promise<{ created: number; running: number } | undefined> {
  const tasks = ((await docker.listTasks({ filters: { service: [service] } })) as any[]).filter(
    (t) => t.Spec?.ContainerSpec?.Labels?.[LABELS.release] === String(release) && t.Status?.State === 'running',
  )
  if (tasks.length === 0) return undefined
  return {
    created: Math.min(...tasks.map((t) => Date.parse(t.CreatedAt))),
    running: Math.max(...tasks.map((t) => Date.parse(t.Status.Timestamp))),
  }
}

/** One task's engine steps, ms: task made -> container created -> container started -> task reported running. */
interface TaskSteps {
  toContainer: number
  toStart: number
  toRunning: number
}

/** The engine's steps for each running task of `service` (of `release` when given, by its label). */
async function engineSteps(service: string, release?: number): Promise<TaskSteps[]> {
  const tasks = ((await docker.listTasks({ filters: { service: [service] } })) as any[]).filter(
    (t) =>
      t.Status?.State === 'running' &&
      t.DesiredState === 'running' &&
      (release === undefined || t.Spec?.ContainerSpec?.Labels?.[LABELS.release] === String(release)),
  )
  const out: TaskSteps[] = []
  for (const t of tasks) {
    const id = t.Status?.ContainerStatus?.ContainerID as string | undefined
    if (!id) continue
    const c = await docker
      .getContainer(id)
      .inspect()
      .catch(() => undefined)
    if (!c) continue
    const made = Date.parse(t.CreatedAt)
    const created = Date.parse(c.Created)
    const started = Date.parse(c.State.StartedAt)
    out.push({ toContainer: created - made, toStart: started - created, toRunning: Date.parse(t.Status.Timestamp) - started })
  }
  return out
}

const stepText = (xs: TaskSteps[]) =>
  xs.length === 0
    ? 'n/a'
    : `per task, median: made -> container created ${sec(median(xs.map((x) => x.toContainer)))}, -> started ${sec(median(xs.map((x) => x.toStart)))}, -> reported running ${sec(median(xs.map((x) => x.toRunning)))}`

/**
 * The engine's floor: a bare Swarm service of the same image and command (no labels, drain, health
 * check or registry credentials; host-mode port; start-first, all at once), 10 replicas: from the
 * update call until the last new task runs, and the same from the first task made.
 */
async function floor(image: string, command: string[], n: number, publish: boolean): Promise<string[]> {
  const name = `benchfloor-${publish ? 'p' : 'n'}-${suffix}`
  const spec = (value: string) => ({
    Name: name,
    TaskTemplate: {
      ContainerSpec: { Image: image, Command: command, Env: [`BENCH=${value}`, 'PORT=5000'], StopGracePeriod: 1e9 },
      RestartPolicy: { Condition: 'any', Delay: 1e9 },
    },
    Mode: { Replicated: { Replicas: n } },
    UpdateConfig: { Parallelism: 0, Delay: 0, Order: 'start-first', FailureAction: 'pause', Monitor: 1e9 },
    EndpointSpec: { Mode: 'vip', Ports: publish ? [{ Protocol: 'tcp', TargetPort: 5000, PublishMode: 'host' }] : [] },
  })
  const what = publish ? 'bare service' : 'bare service without a published port'
  const lines: string[] = []
  const service = await docker.createService(spec('0') as any)
  try {
    const runningOf = async (value: string) =>
      ((await docker.listTasks({ filters: { service: [name], 'desired-state': ['running'] } })) as any[]).filter(
        (t) => t.Status?.State === 'running' && (t.Spec?.ContainerSpec?.Env ?? []).includes(`BENCH=${value}`),
      )
    for (let i = 0; i < 600 && (await runningOf('0')).length < n; i++) await sleep(100)
    const calls: number[] = []
    const engines: number[] = []
    const steps: TaskSteps[] = []
    for (let run = 1; run <= FLOOR_RUNS; run++) {
      await sleep(3_000)
      const value = String(run)
      const info = await docker.getService(service.id).inspect()
      const t0 = Date.now()
      await docker.getService(service.id).update({ version: info.Version.Index, ...spec(value) } as any)
      let tasks: any[] = []
      for (let i = 0; i < 1200 && (tasks = await runningOf(value)).length < n; i++) await sleep(POLL_MS)
      const done = Date.now()
      const made = Math.min(...tasks.map((t) => Date.parse(t.CreatedAt)))
      const last = Math.max(...tasks.map((t) => Date.parse(t.Status.Timestamp)))
      calls.push(done - t0)
      engines.push(last - made)
      const all = await engineSteps(name)
      steps.push(...all)
      lines.push(
        `${what} web=${n} run ${run}: all running ${sec(done - t0)} after the update call; engine, first task made -> last running ${sec(last - made)} (load ${loadavg()[0]!.toFixed(1)})`,
      )
    }
    lines.push(
      `${what} (the engine's floor), web=${n}, ${FLOOR_RUNS} runs: update call -> all running median ${sec(median(calls))}; first task made -> last running median ${sec(median(engines))}; ${stepText(steps)}`,
    )
  } finally {
    await docker
      .getService(service.id)
      .remove()
      .catch(() => {})
  }
  return lines
}

try {
  const health = await must<{ checks: { services?: { detail?: { running?: string[] } }; workers?: { detail?: { running?: string[] } } } }>('GET', '/healthz')
  // The scheduler in the controller's process or in the workers' (`make up`: their check lists it).
  const running = [...(health.checks.services?.detail?.running ?? []), ...(health.checks.workers?.detail?.running ?? [])]
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
      { durableName: durable, only: (a) => a === app, spec: { drainMs: cfg.drainMs } },
    )
  } else console.log('using the platform scheduler')
  const router = running.includes('router')
  // Answers $BENCH; exits on SIGTERM (after its drain time).
  const procfile = { web: `mkdir -p /tmp/www && echo "$BENCH" > /tmp/www/index.html; httpd -f -p $PORT -h /tmp/www & trap 'exit 0' TERM; wait` }
  const built = await must<{ release: number }>('POST', `/v1/apps/${app}/builds`, token, { image: 'busybox:latest', procfile, port: 5000 })
  for (let i = 0; i < 600 && !(await deployOutcome(built.release, 0)); i++) await sleep(100)
  const service = serviceName(cfg.namespace, app, 'web')
  const summary: string[] = []

  for (const n of SIZES) {
    const seq = await store.streamVersion(streamId('runtime', app))
    await must('POST', `/v1/apps/${app}/formation`, token, { web: n })
    const current = await lastRelease()
    for (let i = 0; i < 600 && !(await deployOutcome(current.version, seq)); i++) await sleep(100)
    const rows: Row[] = []
    const steps: TaskSteps[] = []
    for (let run = 1; run <= RUNS; run++) {
      // The old containers of the last run drained and stopped: each run starts from n serving.
      await sleep(cfg.drainMs + 2_000)
      const value = `${n}-${run}-${Date.now()}`
      const runtimeSeq = await store.streamVersion(streamId('runtime', app))
      await must('POST', `/v1/apps/${app}/config`, token, { values: { BENCH: value } })
      const returned = Date.now()
      const rel = await lastRelease()
      const deadline = Date.now() + TIMEOUT_MS
      // Each end point polled on its own, so that a slow check (20 requests through the router) delays no other.
      const when = async (done: () => Promise<boolean>): Promise<number | undefined> => {
        while (Date.now() < deadline) {
          if (await done()) return Date.now()
          await sleep(POLL_MS)
        }
        return undefined
      }
      let completedAt: number | undefined
      const [liveAt, routedAt] = await Promise.all([
        when(async () => (await serving(service, value)) >= n),
        router ? when(() => routed(value)) : undefined,
        when(async () => {
          const outcome = await deployOutcome(rel.version, runtimeSeq)
          if (outcome && outcome.type !== 'DeployCompleted') throw new Error(`v${rel.version}: ${outcome.type}`)
          completedAt = outcome?.at
          return outcome !== undefined
        }),
      ])
      if (liveAt === undefined) throw new Error(`web=${n} v${rel.version}: not every container served the new value within ${TIMEOUT_MS / 1000} s`)
      const row: Row = {
        live: liveAt - returned,
        fromRelease: liveAt - rel.at,
        ...(routedAt === undefined ? {} : { routed: routedAt - returned }),
        ...(completedAt === undefined ? {} : { completed: completedAt - rel.at }),
      }
      const times = await taskTimes(service, rel.version)
      if (times) Object.assign(row, { toTasks: times.created - rel.at, engine: times.running - times.created })
      steps.push(...(await engineSteps(service, rel.version)))
      rows.push(row)
      const load = loadavg()[0]!.toFixed(1)
      console.log(
        `web=${n} v${rel.version}: all ${n} serving the new value ${sec(row.live)} after config:set returned (${sec(row.fromRelease)} after ReleaseCreated: first task made ${sec(row.toTasks)}, the engine until the last running ${sec(row.engine)}); router only the new value ${sec(row.routed)}; DeployCompleted ${sec(row.completed)} after ReleaseCreated (load ${load})`,
      )
    }
    const stat = (k: keyof Row) => {
      const xs = rows.map((r) => r[k]).filter((x): x is number => x !== undefined)
      return xs.length === rows.length ? `median ${sec(median(xs))}, max ${sec(Math.max(...xs))}` : 'n/a'
    }
    const what = n === 3 ? 'config-to-live, web=3' : `release -> all serving, web=${n}`
    summary.push(
      `${what}, ${RUNS} runs: ${stat('live')} (target <= 1.50 s); from ReleaseCreated ${stat('fromRelease')} (first task made ${stat('toTasks')}; engine, first task made -> last running ${stat('engine')}; ${stepText(steps)}); through the router ${stat('routed')}; DeployCompleted ${stat('completed')}`,
    )
    console.log(`\n${summary.at(-1)}\n`)
  }
  if (FLOOR_RUNS > 0) {
    const spec = ((await docker.getService(service).inspect()) as any).Spec.TaskTemplate.ContainerSpec
    for (const publish of [true, false]) {
      const lines = await floor(spec.Image, spec.Command, 10, publish)
      for (const l of lines.slice(0, -1)) console.log(l)
      summary.push(lines.at(-1)!)
    }
  }
  console.log(summary.join('\n'))
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
