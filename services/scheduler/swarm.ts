/**
 * The scheduler's Swarm side (through the container-engine port): reads the services of a namespace, applies the model's
 * changes, restarts (ForceUpdate), and reads how far a deploy has got.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { engineStatus, type ContainerEngine, type ServiceInfo, type ServiceSpec, type TaskInfo, type TaskTemplate } from '../../core/engine/engine.js'
import { LABELS } from '../../domain/runtime/labels.js'
import type { ActualService, Change, DesiredService } from './model.js'

/** The HTTP status of an engine error, if any. */
export const statusOf = engineStatus

/** The engine answers a stale `version` with `conflict` (409). */
function outOfSequence(err: unknown): boolean {
  return statusOf(err) === 409
}

async function tasksOf(docker: ContainerEngine, serviceId: string): Promise<TaskInfo[]> {
  return docker.listTasks(serviceId)
}

function actualOf(s: ServiceInfo): ActualService {
  const labels = s.spec.Labels ?? {}
  return {
    id: s.id,
    name: s.spec.Name ?? '',
    app: labels[LABELS.app] ?? '',
    type: labels[LABELS.type] ?? '',
    release: Number(labels[LABELS.release] ?? 0),
    hash: labels[LABELS.spec],
    failedHash: labels[LABELS.failed],
    restart: labels[LABELS.restart],
    replicas: s.spec.Mode?.Replicated?.Replicas ?? 0,
  }
}

/** The services of `namespace` (of one app when named), by their labels. */
export async function listServices(docker: ContainerEngine, namespace: string, app?: string): Promise<ActualService[]> {
  const services = await docker.listServices({ [LABELS.namespace]: namespace, ...(app ? { [LABELS.app]: app } : {}) })
  return services.map(actualOf).filter((s) => s.name)
}

/** The spec to send: the desired one with its hash label, keeping the running service's ForceUpdate counter. */
function withBookkeeping(d: DesiredService, current?: ServiceSpec, extra: Record<string, string> = {}): ServiceSpec {
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
async function updateWith(docker: ContainerEngine, name: string, build: (spec: ServiceSpec) => ServiceSpec | undefined): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    const info = await docker.inspectService(name)
    const spec = build(info.spec)
    if (!spec) return false
    try {
      await docker.updateService(name, info.version, spec)
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
export async function applyChange(docker: ContainerEngine, change: Change): Promise<void> {
  switch (change.kind) {
    case 'create':
      try {
        await docker.createService(withBookkeeping(change.desired))
      } catch (err) {
        if (statusOf(err) !== 409) throw err
        await updateWith(docker, change.desired.name, (cur) =>
          cur.Labels?.[LABELS.spec] === change.desired.hash ? undefined : withBookkeeping(change.desired, cur),
        )
      }
      return
    case 'update':
      await updateWith(docker, change.desired.name, (cur) =>
        cur.Labels?.[LABELS.spec] === change.desired.hash ? undefined : withBookkeeping(change.desired, cur),
      )
      return
    case 'remove':
      try {
        await docker.removeService(change.actual.id)
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
 * Restarts every task of service `name` (Swarm starts their successors together, start-first, then drains and stops them) unless
 * `requestId` was applied already (a redelivered restart does nothing). Answers whether it restarted.
 */
export async function restartService(docker: ContainerEngine, name: string, requestId: string): Promise<boolean> {
  return updateWith(docker, name, (cur) => {
    if (cur.Labels?.[LABELS.restart] === requestId) return undefined
    return {
      ...cur,
      Labels: { ...cur.Labels, [LABELS.restart]: requestId },
      TaskTemplate: { ...cur.TaskTemplate, ForceUpdate: (cur.TaskTemplate?.ForceUpdate ?? 0) + 1 },
    }
  })
}

/** The service label {@link nudgeUpdate} changes. */
export const NUDGE_LABEL = 'wharf.update-nudge'

/**
 * Starts Swarm's rolling update of service `name` over, for the tasks not yet on its spec: a service
 * label changes, the task template does not (no task is replaced for it). Swarm's updater can stall
 * when a host is lost under it (the new task of a slot was on that host: the old ones of other slots
 * are never replaced); a new update picks up the slots left.
 */
export async function nudgeUpdate(docker: ContainerEngine, name: string, n: number): Promise<boolean> {
  return updateWith(docker, name, (cur) => ({ ...cur, Labels: { ...cur.Labels, [NUDGE_LABEL]: String(n) } }))
}

/** Marks the spec `hash` as failed on service `name` (a label only: no task changes), so it is not deployed again. */
export async function markFailed(docker: ContainerEngine, name: string, hash: string): Promise<void> {
  await updateWith(docker, name, (cur) => (cur.Labels?.[LABELS.failed] === hash ? undefined : { ...cur, Labels: { ...cur.Labels, [LABELS.failed]: hash } }))
}

/** How far the deploy of one service has got. */
export type ServiceProgress =
  | {
      state: 'converging'
      /** Tasks of the new spec running for `settleMs`. */
      running: number
      wanted: number
      /** Tasks of the new spec running, however briefly: `started >= wanted` means Swarm has done its part of the update. */
      started: number
      /** Tasks of the service on nodes that are down. */
      lost?: number
      /**
       * Tasks of the new spec desired running beyond the replicas: a slot that runs two. Swarm makes
       * them when a node is lost under its update (the slot's old and new task on it are both started
       * again elsewhere, on the new spec) and removes the extra only at its next update of the service.
       */
      extra?: number
    }
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

function taskSpecKey(spec: TaskTemplate | undefined): string {
  return JSON.stringify([spec?.ContainerSpec?.Labels ?? {}, spec?.ForceUpdate ?? 0])
}

/**
 * Reads whether service `name` runs `hash`: converged when its spec is `hash` and as many tasks of
 * that spec as it has replicas have been running (Swarm only calls a task with a health check
 * running once it is healthy) for `settleMs`, and no more are meant to run (a slot running two is not
 * done: see `extra`); failed when Swarm rolled the update back or paused it,
 * or when tasks of the new spec keep failing; gone when the service is not there.
 */
export async function serviceProgress(
  docker: ContainerEngine,
  name: string,
  hash: string,
  opts: ProgressOptions = {},
  now = Date.now(),
): Promise<ServiceProgress> {
  const settleMs = opts.settleMs ?? 1_000
  const maxFailures = opts.maxTaskFailures ?? 3
  let info: ServiceInfo
  try {
    info = await docker.inspectService(name)
  } catch (err) {
    if (statusOf(err) === 404) return { state: 'gone' }
    throw err
  }
  const labels = info.spec.Labels ?? {}
  const update = info.updateStatus
  const current = opts.since === undefined || Date.parse(update?.startedAt ?? '') >= opts.since - 1_000
  const updateState = current ? (update?.state ?? '') : ''
  if (labels[LABELS.spec] !== hash || /^rollback_|^paused$/.test(updateState)) {
    const rolledBackTo = Number(labels[LABELS.release]) || undefined
    const reason = update?.message ? `Swarm: ${update.message}` : 'the service was changed back'
    return {
      state: 'failed',
      reason: await withTaskError(docker, info.id, reason),
      rolledBack: labels[LABELS.spec] !== hash,
      ...(rolledBackTo ? { rolledBackTo } : {}),
    }
  }
  const wanted = info.spec.Mode?.Replicated?.Replicas ?? 0
  const key = taskSpecKey(info.spec.TaskTemplate)
  // A task on a node that is down counts neither way: it runs nowhere (its containers are announced
  // lost, see hosts.ts), and Swarm may leave it "desired running" while its node is away.
  const all = await tasksOf(docker, info.id)
  const down = all.some((t) => t.nodeId) ? await downNodes(docker) : new Set<string>()
  const tasks = all.filter((t) => !t.nodeId || !down.has(t.nodeId))
  const mine = tasks.filter((t) => taskSpecKey(t.spec) === key)
  const desired = mine.filter((t) => t.desiredState === 'running')
  const started = desired.filter((t) => t.state === 'running')
  const running = started.filter((t) => now - Date.parse(t.timestamp) >= settleMs)
  const others = tasks.filter((t) => taskSpecKey(t.spec) !== key && t.desiredState === 'running')
  const extra = Math.max(0, desired.length - wanted)
  if (running.length >= wanted && extra === 0 && others.length === 0) return { state: 'converged' }
  const failures = mine.filter((t) => ['failed', 'rejected'].includes(t.state))
  if (failures.length >= maxFailures) {
    const last = failures.sort((a, b) => Date.parse(b.timestamp) - Date.parse(a.timestamp))[0]
    const reason = `${failures.length} containers failed: ${last?.err ?? last?.message ?? 'unknown'}`
    // All new tasks start at once (start-first), so they can all fail before Swarm's own rollback shows:
    // the release of the spec before the update is what keeps running (and what the rollback goes to).
    const before = Number(info.previousSpec?.Labels?.[LABELS.release]) || undefined
    if (before !== undefined && String(before) !== labels[LABELS.release] && info.spec.UpdateConfig?.FailureAction === 'rollback')
      return { state: 'failed', reason, rolledBack: true, rolledBackTo: before }
    return { state: 'failed', reason, rolledBack: false }
  }
  const lost = all.length - tasks.length
  return { state: 'converging', running: running.length, wanted, started: started.length, ...(lost > 0 ? { lost } : {}), ...(extra > 0 ? { extra } : {}) }
}

/** The ids of the swarm's nodes that are down (none when the nodes cannot be listed: a worker's engine). */
async function downNodes(docker: ContainerEngine): Promise<Set<string>> {
  const nodes = await docker.listNodes().catch(() => [])
  return new Set(nodes.filter((n) => n.state === 'down').map((n) => n.id))
}

/** Adds the error of the newest failed task to a reason (what the user needs: "unhealthy container", "exit 1"). */
async function withTaskError(docker: ContainerEngine, serviceId: string, reason: string): Promise<string> {
  const tasks = (await tasksOf(docker, serviceId).catch(() => [] as TaskInfo[])).filter((t) => t.err)
  const last = tasks.sort((a, b) => Date.parse(b.timestamp) - Date.parse(a.timestamp))[0]
  return last?.err ? `${reason} (${last.err})` : reason
}

/**
 * Removes the app's images from the engine, best effort: the registry's `<registry>/<app>:*` tags,
 * forced (containers still stopping keep their image by id; the layers go when they are gone).
 */
export async function removeAppImages(docker: ContainerEngine, registry: string, app: string): Promise<number> {
  const images = await docker.listImages(`${registry}/${app}`).catch(() => [])
  let removed = 0
  for (const img of images) {
    // An image Swarm pulled by digest for a task has no tag of the app, only `<registry>/<app>@sha256:...`:
    // with no tag at all it is removed by id.
    const refs = img.tags.length === 0 ? [img.id] : img.tags.filter((tag) => tag.startsWith(`${registry}/${app}:`))
    for (const ref of refs) {
      await docker
        .removeImage(ref, { force: true })
        .then(() => removed++)
        .catch(() => {})
    }
  }
  return removed
}
