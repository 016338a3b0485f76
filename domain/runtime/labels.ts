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

/** The identity of a container from its labels; undefined when it is not a well-labelled Wharf container. */
export function identityOf(labels: Record<string, string | undefined>): ContainerIdentity | undefined {
  const app = labels[LABELS.app]
  const type = labels[LABELS.type]
  const release = Number(labels[LABELS.release])
  if (!app || !type || !Number.isSafeInteger(release) || release < 1) return undefined
  const number = slotOf(labels[LABELS.taskName])
  return number === undefined ? { app, type, release } : { app, type, release, number }
}

/** The slot of a Swarm task name `<service>.<slot>.<task id>`; undefined when there is none. */
export function slotOf(taskName: string | undefined): number | undefined {
  const m = taskName ? /\.([0-9]{1,4})\.[a-z0-9]+$/.exec(taskName) : null
  const n = m ? Number(m[1]) : NaN
  return n >= 1 && n <= 1000 ? n : undefined
}
