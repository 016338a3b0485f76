/**
 * The labels Wharf puts on Swarm services and containers, and what a container's labels say it is:
 * one copy for the scheduler (which writes them), the publisher and logspout (which read them) and
 * `wharf run` (one-off containers).
 */

/** Label keys. The first four are on every service and container of an app's processes. */
export const LABELS = {
  /** The platform's namespace (`wharf`, or a test's): a publisher or logspout follows only its own. */
  namespace: 'wharf.namespace',
  app: 'wharf.app',
  /** The process type (`web`, `worker`). */
  type: 'wharf.type',
  /** The release version, as a decimal string. */
  release: 'wharf.release',
  /** Service only: the hash of the desired spec the service was last given (the scheduler's `specHash`). */
  spec: 'wharf.spec',
  /** Service only: the spec hash of a deploy that failed and was rolled back (so it is not tried again). */
  failed: 'wharf.failed-spec',
  /** Service only: the id of the last `RestartRequested` applied (a redelivered one restarts nothing). */
  restart: 'wharf.restart',
  /** Image only: the commit a pushed image was built from. */
  sha: 'wharf.sha',
  /** One-off container (`wharf run`) only: the request id. */
  run: 'wharf.run',
  /** One-off container only: who ran it. */
  user: 'wharf.user',
  /**
   * Container of a `web` process only: its drain time, ms. Its stop signal is {@link DRAIN_SIGNAL}: the
   * publisher of its host, seeing that signal, announces it stopping (routers take it out) and sends
   * SIGTERM once the drain time has passed.
   */
  drain: 'wharf.drain-ms',
  /**
   * Container of a `web` process with a drain time only: the longest it serves on, ms, while a router
   * still sends to it (the router's last `RouteServed` lists it); SIGTERM then follows anyway.
   */
  drainMax: 'wharf.drain-max-ms',
  /** Swarm's `<service>.<slot>.<task id>` (a global service has the node id in place of the slot). */
  taskName: 'com.docker.swarm.task.name',
} as const

/**
 * The stop signal of a `web` container with a drain time: one whose default action is to be ignored
 * (no runtime gives it a meaning for a stop: Go uses it only for preemption), so that the process
 * serves on while routers take it out; SIGTERM follows after the drain time.
 */
export const DRAIN_SIGNAL = 'SIGURG'

/** The labels of an app's process of `type` in `release` (on its service and its containers). */
export function processLabels(namespace: string, app: string, type: string, release: number): Record<string, string> {
  return { [LABELS.namespace]: namespace, [LABELS.app]: app, [LABELS.type]: type, [LABELS.release]: String(release) }
}

/** A Wharf container as its labels describe it. */
export interface ContainerIdentity {
  app: string
  type: string
  release: number
  /** Swarm's task slot (web.1, web.2, ...); undefined outside a replicated service. */
  number?: number
}

/** What a Swarm task record says of its container: the labels its service and its spec were given, its slot. */
export interface TaskRecord {
  /** The service-level labels (only whoever creates services sets them: the scheduler). */
  serviceLabels: Record<string, string | undefined> | undefined
  /** The labels of the task's container spec (the service's template when the task was made, not the image's). */
  specLabels: Record<string, string | undefined> | undefined
  slot?: number
}

/**
 * The identity of a container of `namespace` from the task that made it, as the swarm records it
 * (core/engine/origin.ts finds that task, checked against the container id); undefined when the task's
 * service is not a process of an app of the namespace. Never from the container's own labels: an
 * image's LABELs become its containers' labels (and a classic build's RUN containers carry the
 * Dockerfile's LABELs), so they can claim any app.
 */
export function identityOfTask(namespace: string, task: TaskRecord): ContainerIdentity | undefined {
  const service = task.serviceLabels ?? {}
  const spec = task.specLabels ?? {}
  const app = service[LABELS.app]
  const type = service[LABELS.type]
  if (service[LABELS.namespace] !== namespace || !app || !type) return undefined
  if (spec[LABELS.namespace] !== namespace || spec[LABELS.app] !== app || spec[LABELS.type] !== type) return undefined
  // The release of the spec the task was made from (during a rolling update, older tasks run the older one).
  const release = Number(spec[LABELS.release])
  if (!Number.isSafeInteger(release) || release < 1) return undefined
  const number = task.slot !== undefined && task.slot >= 1 && task.slot <= 1000 ? task.slot : undefined
  return number === undefined ? { app, type, release } : { app, type, release, number }
}

/** The slot of a Swarm task name `<service>.<slot>.<task id>`; undefined when there is none. */
export function slotOf(taskName: string | undefined): number | undefined {
  const m = taskName ? /\.([0-9]{1,4})\.[a-z0-9]+$/.exec(taskName) : null
  const n = m ? Number(m[1]) : NaN
  return n >= 1 && n <= 1000 ? n : undefined
}
