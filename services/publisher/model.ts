/**
 * The publisher's pure part: what a Wharf container is (from its labels) and how a death is
 * classified. Which runtime events a container's state on its app's stream allows is the runtime
 * decider's (domain/runtime/decider.ts).
 */
import { constants } from 'node:os'

/** Labels the scheduler puts on every container of an app. */
export const LABELS = {
  namespace: 'wharf.namespace',
  app: 'wharf.app',
  type: 'wharf.type',
  release: 'wharf.release',
  /** Swarm's `<service>.<slot>.<task id>` (a global service has the node id in place of the slot). */
  taskName: 'com.docker.swarm.task.name',
} as const

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

/** A signal as a number: `15`, `SIGTERM`, `TERM` -> 15; undefined when unknown. */
export function signalNumber(signal: string | undefined): number | undefined {
  if (!signal) return undefined
  if (/^[0-9]+$/.test(signal)) return Number(signal)
  const name = (signal.toUpperCase().startsWith('SIG') ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`) as keyof typeof constants.signals
  return constants.signals[name]
}

/** How a container ended, from what the publisher saw before its `die`. */
export interface Death {
  exitCode: number
  /** A stop was asked (a kill with the container's stop signal: what Swarm and `docker stop` send first). */
  stopAsked: boolean
  /** The engine reported an `oom` event for it (or State.OOMKilled). */
  oom: boolean
}

/**
 * A death is a crash when nobody asked for it and it failed (exit code != 0), or when the kernel
 * killed it for memory, asked or not. A clean exit nobody asked for is a stop.
 */
export function classifyDeath(d: Death): { kind: 'stopped' } | { kind: 'crashed'; exitCode: number; reason: string } {
  if (d.oom) return { kind: 'crashed', exitCode: d.exitCode, reason: 'out of memory: the kernel killed it (OOM)' }
  if (d.stopAsked || d.exitCode === 0) return { kind: 'stopped' }
  const signal = d.exitCode > 128 ? Object.entries(constants.signals).find(([, n]) => n === d.exitCode - 128)?.[0] : undefined
  return { kind: 'crashed', exitCode: d.exitCode, reason: signal ? `killed by ${signal} (exit code ${d.exitCode})` : `exited with code ${d.exitCode}` }
}
