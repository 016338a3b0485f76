/**
 * The publisher's pure part: what a Wharf container is (from its labels), how a death is classified,
 * and which runtime events a container's state on its app's stream allows (the decider that keeps
 * every announcement once-only).
 */
import { constants } from 'node:os'
import { isWharfEvent } from '../../domain/index.js'
import type { NewEvent, RecordedEvent } from '../../events/index.js'

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

/** What an app's runtime stream says about one container. */
export type Announced = 'up' | 'stopping' | 'gone'

/** The containers an app's runtime stream has announced, and the version that was read. */
export interface RuntimeState {
  version: number
  containers: Map<string, Announced>
}

export const initialRuntimeState = (): RuntimeState => ({ version: 0, containers: new Map() })

/** Folds runtime events into the state (other types only advance the version). */
export function evolve(state: RuntimeState, event: RecordedEvent): RuntimeState {
  const e = isWharfEvent(event) ? event : undefined
  switch (e?.type) {
    case 'ContainerStarted':
      state.containers.set(e.data.container, 'up')
      break
    case 'ContainerStopping':
      if (state.containers.get(e.data.container) === 'up') state.containers.set(e.data.container, 'stopping')
      break
    case 'ContainerStopped':
    case 'ContainerCrashed':
      state.containers.set(e.data.container, 'gone')
      break
  }
  state.version = Math.max(state.version, event.seq)
  return state
}

/** What the publisher wants to announce about one container. */
export type Announcement =
  | { kind: 'started'; container: string; identity: ContainerIdentity; host: string; port?: number }
  | { kind: 'stopping'; container: string; identity: AppProcess }
  | { kind: 'stopped'; container: string; identity: AppProcess }
  | { kind: 'crashed'; container: string; identity: AppProcess; exitCode: number; reason: string }

/** Enough to name the process a container ran: its app and type. */
export type AppProcess = Pick<ContainerIdentity, 'app' | 'type'>

/**
 * The events an announcement adds, given what the stream already says: a container is started once
 * (never again, even after it is gone), drained only while up, stopped or crashed only once after
 * it was started (a container that never became ready was never announced, so its end is not either).
 */
export function decide(state: RuntimeState, a: Announcement): NewEvent[] {
  const now = state.containers.get(a.container)
  const { app, type } = a.identity
  switch (a.kind) {
    case 'started': {
      if (now !== undefined) return []
      const { release, number } = a.identity
      return [{ type: 'ContainerStarted', data: { app, type, release, container: a.container, host: a.host, ...(a.port === undefined ? {} : { port: a.port }), ...(number === undefined ? {} : { number }) } }]
    }
    case 'stopping':
      return now === 'up' ? [{ type: 'ContainerStopping', data: { app, type, container: a.container } }] : []
    case 'stopped':
      return now === 'up' || now === 'stopping' ? [{ type: 'ContainerStopped', data: { app, type, container: a.container } }] : []
    case 'crashed':
      return now === 'up' || now === 'stopping'
        ? [{ type: 'ContainerCrashed', data: { app, type, container: a.container, exitCode: a.exitCode, reason: a.reason.slice(0, 1024) } }]
        : []
    default: {
      const never: never = a
      throw new Error(`unknown announcement ${JSON.stringify(never)}`)
    }
  }
}
