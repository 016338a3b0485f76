/**
 * The scheduler's Swarm adapter (dockerode): reads the services of a namespace, applies the model's
 * changes, restarts (ForceUpdate), and reads how far a deploy has got.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type Docker from 'dockerode'
import { LABELS, type ActualService, type Change, type DesiredService } from './model.js'

/** The HTTP status of a dockerode error, if any. */
export function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number } | undefined)?.statusCode
}

function messageOf(err: unknown): string {
  const e = err as { json?: { message?: string }; message?: string }
  return e?.json?.message ?? e?.message ?? String(err)
}

/** Swarm answers a stale `version` with "update out of sequence" (500) or 409. */
function outOfSequence(err: unknown): boolean {
  return statusOf(err) === 409 || /out of sequence/i.test(messageOf(err))
}

/** The fields of a Swarm task the scheduler reads (dockerode's type has none of them). */
interface SwarmTask {
  ID: string
  DesiredState?: string
  Spec?: { ContainerSpec?: { Labels?: Record<string, string> }; ForceUpdate?: number }
  Status?: { State?: string; Timestamp?: string; Err?: string; Message?: string }
}

async function tasksOf(docker: Docker, serviceId: string): Promise<SwarmTask[]> {
  return (await docker.listTasks({ filters: { service: [serviceId] } })) as SwarmTask[]
}

function actualOf(s: Docker.Service): ActualService {
  const labels = s.Spec?.Labels ?? {}
  return {
    id: s.ID,
    name: s.Spec?.Name ?? '',
    app: labels[LABELS.app] ?? '',
    type: labels[LABELS.type] ?? '',
    release: Number(labels[LABELS.release] ?? 0),
    hash: labels[LABELS.spec],
    failedHash: labels[LABELS.failed],
    restart: labels[LABELS.restart],
    replicas: s.Spec?.Mode?.Replicated?.Replicas ?? 0,
  }
}

/** The services of `namespace` (of one app when named), by their labels. */
export async function listServices(docker: Docker, namespace: string, app?: string): Promise<ActualService[]> {
  const label = [`${LABELS.namespace}=${namespace}`, ...(app ? [`${LABELS.app}=${app}`] : [])]
  const services = await docker.listServices({ filters: { label } })
  return services.map(actualOf).filter((s) => s.name)
}

/** The spec to send: the desired one with its hash label, keeping the running service's ForceUpdate counter. */
function withBookkeeping(d: DesiredService, current?: Docker.ServiceSpec, extra: Record<string, string> = {}): Docker.CreateServiceOptions {
  const keep: Record<string, string> = {}
  const labels = current?.Labels ?? {}
  const restart = labels[LABELS.restart]
  if (restart) keep[LABELS.restart] = restart
  const force = current?.TaskTemplate?.ForceUpdate
  return {
    ...d.spec,
    Labels: { ...d.spec.Labels, ...keep, [LABELS.spec]: d.hash, ...extra },
    TaskTemplate: { ...d.spec.TaskTemplate, ...(force ? { ForceUpdate: force } : {}) },
  }
}

/**
 * Updates service `name` to what `build(current spec)` answers, with the version just read; a
 * concurrent change makes it read and try again (a few times).
 */
async function updateWith(docker: Docker, name: string, build: (spec: Docker.ServiceSpec) => Docker.CreateServiceOptions | undefined): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    const svc = docker.getService(name)
    const info = (await svc.inspect()) as Docker.Service
    const spec = build(info.Spec as Docker.ServiceSpec)
    if (!spec) return false
    try {
      await svc.update({ version: info.Version?.Index, ...spec } as never)
      return true
    } catch (err) {
      if (attempt < 5 && outOfSequence(err)) {
        await sleep(50 * (attempt + 1))
        continue
      }
      throw err
    }
  }
}

/**
 * Applies one change. A create that finds the name taken (another scheduler, or one that crashed
 * after creating it) updates the service instead; a remove of a service already gone is done.
 */
export async function applyChange(docker: Docker, change: Change): Promise<void> {
  switch (change.kind) {
    case 'create':
      try {
        await docker.createService(withBookkeeping(change.desired))
      } catch (err) {
        if (statusOf(err) !== 409) throw err
        await updateWith(docker, change.desired.name, (cur) => (cur.Labels?.[LABELS.spec] === change.desired.hash ? undefined : withBookkeeping(change.desired, cur)))
      }
      return
    case 'update':
      await updateWith(docker, change.desired.name, (cur) => (cur.Labels?.[LABELS.spec] === change.desired.hash ? undefined : withBookkeeping(change.desired, cur)))
      return
    case 'remove':
      try {
        await docker.getService(change.actual.id).remove()
      } catch (err) {
        if (statusOf(err) !== 404) throw err
      }
      return
    default:
      return unhandled(change)
  }
}

function unhandled(c: never): never {
  throw new Error(`unknown change ${(c as { kind: string }).kind}`)
}

/**
 * Restarts every task of service `name` (Swarm replaces them one by one, start-first) unless
 * `requestId` was applied already (a redelivered restart does nothing). Answers whether it restarted.
 */
export async function restartService(docker: Docker, name: string, requestId: string): Promise<boolean> {
  return updateWith(docker, name, (cur) => {
    if (cur.Labels?.[LABELS.restart] === requestId) return undefined
    return {
      ...(cur as Docker.CreateServiceOptions),
      Labels: { ...cur.Labels, [LABELS.restart]: requestId },
      TaskTemplate: { ...cur.TaskTemplate, ForceUpdate: (cur.TaskTemplate?.ForceUpdate ?? 0) + 1 },
    }
  })
}

/** Marks the spec `hash` as failed on service `name` (a label only: no task changes), so it is not deployed again. */
export async function markFailed(docker: Docker, name: string, hash: string): Promise<void> {
  await updateWith(docker, name, (cur) => (cur.Labels?.[LABELS.failed] === hash ? undefined : { ...(cur as Docker.CreateServiceOptions), Labels: { ...cur.Labels, [LABELS.failed]: hash } }))
}

/** How far the deploy of one service has got. */
export type ServiceProgress =
  | { state: 'converging'; running: number; wanted: number }
  | { state: 'converged' }
  | { state: 'failed'; reason: string; rolledBackTo?: number; rolledBack: boolean }
  | { state: 'gone' }

/** Options of {@link serviceProgress}. */
export interface ProgressOptions {
  /** A new task counts only after running this long, ms (a process that exits at once is not a success), default 1_000. */
  settleMs?: number
  /** Failed tasks of the new spec after which the deploy has failed (no automatic rollback came), default 3. */
  maxTaskFailures?: number
  /** When the deploy started (epoch ms): an update status from before it (an earlier rollback) is not this deploy's. */
  since?: number
}

function taskSpecKey(spec: { ContainerSpec?: { Labels?: Record<string, string> }; ForceUpdate?: number } | undefined): string {
  return JSON.stringify([spec?.ContainerSpec?.Labels ?? {}, spec?.ForceUpdate ?? 0])
}

/**
 * Reads whether service `name` runs `hash`: converged when its spec is `hash` and as many tasks of
 * that spec as it has replicas have been running (Swarm only calls a task with a health check
 * running once it is healthy) for `settleMs`; failed when Swarm rolled the update back or paused it,
 * or when tasks of the new spec keep failing; gone when the service is not there.
 */
export async function serviceProgress(docker: Docker, name: string, hash: string, opts: ProgressOptions = {}, now = Date.now()): Promise<ServiceProgress> {
  const settleMs = opts.settleMs ?? 1_000
  const maxFailures = opts.maxTaskFailures ?? 3
  let info: Docker.Service
  try {
    info = (await docker.getService(name).inspect()) as Docker.Service
  } catch (err) {
    if (statusOf(err) === 404) return { state: 'gone' }
    throw err
  }
  const labels = info.Spec?.Labels ?? {}
  const update = (info as { UpdateStatus?: { State?: string; Message?: string; StartedAt?: string } }).UpdateStatus
  const current = opts.since === undefined || Date.parse(update?.StartedAt ?? '') >= opts.since - 1_000
  const updateState = current ? (update?.State ?? '') : ''
  if (labels[LABELS.spec] !== hash || /^rollback_|^paused$/.test(updateState)) {
    const rolledBackTo = Number(labels[LABELS.release]) || undefined
    const reason = update?.Message ? `Swarm: ${update.Message}` : 'the service was changed back'
    return { state: 'failed', reason: await withTaskError(docker, info.ID, reason), rolledBack: labels[LABELS.spec] !== hash, ...(rolledBackTo ? { rolledBackTo } : {}) }
  }
  const wanted = info.Spec?.Mode?.Replicated?.Replicas ?? 0
  const key = taskSpecKey(info.Spec?.TaskTemplate as never)
  const tasks = await tasksOf(docker, info.ID)
  const mine = tasks.filter((t) => taskSpecKey(t.Spec as never) === key)
  const running = mine.filter((t) => t.DesiredState === 'running' && t.Status?.State === 'running' && now - Date.parse(t.Status?.Timestamp ?? '') >= settleMs)
  const others = tasks.filter((t) => taskSpecKey(t.Spec as never) !== key && t.DesiredState === 'running')
  if (running.length >= wanted && others.length === 0 && (wanted > 0 || mine.every((t) => t.DesiredState !== 'running'))) return { state: 'converged' }
  const failures = mine.filter((t) => ['failed', 'rejected'].includes(t.Status?.State ?? ''))
  if (failures.length >= maxFailures) {
    const last = failures.sort((a, b) => Date.parse(b.Status?.Timestamp ?? '') - Date.parse(a.Status?.Timestamp ?? ''))[0]
    return { state: 'failed', reason: `${failures.length} containers failed: ${last?.Status?.Err ?? last?.Status?.Message ?? 'unknown'}`, rolledBack: false }
  }
  return { state: 'converging', running: running.length, wanted }
}

/** Adds the error of the newest failed task to a reason (what the user needs: "unhealthy container", "exit 1"). */
async function withTaskError(docker: Docker, serviceId: string, reason: string): Promise<string> {
  const tasks = (await tasksOf(docker, serviceId).catch(() => [] as SwarmTask[])).filter((t) => t.Status?.Err)
  const last = tasks.sort((a, b) => Date.parse(b.Status?.Timestamp ?? '') - Date.parse(a.Status?.Timestamp ?? ''))[0]
  return last?.Status?.Err ? `${reason} (${last.Status.Err})` : reason
}

/**
 * Removes the app's images from the engine, best effort: the registry's `<registry>/<app>:*` tags,
 * forced (containers still stopping keep their image by id; the layers go when they are gone).
 */
export async function removeAppImages(docker: Docker, registry: string, app: string): Promise<number> {
  const images = await docker.listImages({ filters: { reference: [`${registry}/${app}`] } }).catch(() => [])
  let removed = 0
  for (const img of images) {
    for (const tag of img.RepoTags ?? []) {
      if (!tag.startsWith(`${registry}/${app}:`)) continue
      await docker
        .getImage(tag)
        .remove({ force: true })
        .then(() => removed++)
        .catch(() => {})
    }
  }
  return removed
}
