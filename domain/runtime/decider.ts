import type { NewEvent, RecordedEvent } from '../../events/index.js'
import type { Decider } from '../decider.js'
import { narrow, type EventOf } from '../catalogue.js'

/** A container's process as the runtime stream names it. */
export interface ContainerProcess {
  app: string
  type: string
  release: number
  /** Swarm's task slot (web.1, web.2, ...); undefined outside a replicated service. */
  number?: number
}

/** Enough to name the process a container ran: its app and type. */
export type AppProcess = Pick<ContainerProcess, 'app' | 'type'>

/** What an app's runtime stream says about one container. */
export type Announced = 'up' | 'stopping' | 'gone'

/** The last deploy an app's runtime stream tells of. */
export type DeployState =
  | {
      status: 'started'
      release: number
      formation: Record<string, number>
      /** The `DeployStarted` itself, for a scheduler that takes over watching it. */
      event: Pick<RecordedEvent, 'id' | 'correlationId' | 'occurredAt'>
    }
  | { status: 'completed' | 'failed'; release: number }

/** A `runtime.<app>` stream folded: the containers announced, and the last deploy. */
export interface RuntimeState {
  /** The stream version the state was folded to. */
  version: number
  containers: ReadonlyMap<string, Announced>
  deploy?: DeployState
}

/** What a publisher wants to announce about one container. */
export type Announcement =
  | { kind: 'started'; container: string; identity: ContainerProcess; host: string; port?: number }
  | { kind: 'stopping'; container: string; identity: AppProcess }
  | { kind: 'stopped'; container: string; identity: AppProcess }
  | { kind: 'crashed'; container: string; identity: AppProcess; exitCode: number; reason: string }

export type RuntimeCommand =
  /** The scheduler starts rolling the app to `release` with `formation` (process type -> quantity). */
  | { type: 'StartDeploy'; app: string; release: number; formation: Record<string, number> }
  | { type: 'CompleteDeploy'; app: string; release: number }
  /** `reason` is cut to 2048 characters; `rolledBackTo`: the release Swarm went back to. */
  | { type: 'FailDeploy'; app: string; release: number; reason: string; rolledBackTo?: number }
  /** A publisher saw a container start, be asked to stop, stop or crash. */
  | { type: 'Announce'; announcement: Announcement }

type RuntimeEvent = EventOf<
  'DeployStarted' | 'DeployCompleted' | 'DeployFailed' | 'ContainerStarted' | 'ContainerStopping' | 'ContainerStopped' | 'ContainerCrashed'
>

const initialState = (): RuntimeState => ({ version: 0, containers: new Map() })

function withContainer(state: RuntimeState, container: string, now: Announced): RuntimeState {
  return { ...state, containers: new Map(state.containers).set(container, now) }
}

function evolve(before: RuntimeState, event: RecordedEvent): RuntimeState {
  const state = { ...before, version: Math.max(before.version, event.seq) }
  const e = narrow<RuntimeEvent>(event)
  switch (e.type) {
    case 'DeployStarted':
      return {
        ...state,
        deploy: {
          status: 'started',
          release: e.data.release,
          formation: e.data.formation,
          event: { id: e.id, correlationId: e.correlationId, occurredAt: e.occurredAt },
        },
      }
    case 'DeployCompleted':
      return { ...state, deploy: { status: 'completed', release: e.data.release } }
    case 'DeployFailed':
      return { ...state, deploy: { status: 'failed', release: e.data.release } }
    case 'ContainerStarted':
      return withContainer(state, e.data.container, 'up')
    case 'ContainerStopping':
      return state.containers.get(e.data.container) === 'up' ? withContainer(state, e.data.container, 'stopping') : state
    case 'ContainerStopped':
    case 'ContainerCrashed':
      return withContainer(state, e.data.container, 'gone')
    default:
      return unhandled(e)
  }
}

/**
 * A deploy starts unless the same one (release and formation) is started with no outcome yet (a
 * retried reconcile); its outcome is told once, and only of the deploy that is running (a watch that
 * lost the race with the next deploy tells nothing).
 */
function decideDeploy(command: Exclude<RuntimeCommand, { type: 'Announce' }>, state: RuntimeState): NewEvent[] {
  const { app, release } = command
  const running = state.deploy?.status === 'started' && state.deploy.release === release ? state.deploy : undefined
  switch (command.type) {
    case 'StartDeploy':
      if (running && JSON.stringify(running.formation) === JSON.stringify(command.formation)) return []
      return [{ type: 'DeployStarted', data: { app, release, formation: command.formation } }]
    case 'CompleteDeploy':
      return running ? [{ type: 'DeployCompleted', data: { app, release } }] : []
    case 'FailDeploy': {
      const rolledBackTo = command.rolledBackTo === undefined ? {} : { rolledBackTo: command.rolledBackTo }
      return running ? [{ type: 'DeployFailed', data: { app, release, reason: command.reason.slice(0, 2048), ...rolledBackTo } }] : []
    }
    default:
      return unhandled(command)
  }
}

/**
 * The events an announcement adds, given what the stream already says: a container is started once
 * (never again, even after it is gone), drained only while up, stopped or crashed only once after
 * it was started (a container that never became ready was never announced, so its end is not either).
 */
function announce(state: RuntimeState, a: Announcement): NewEvent[] {
  const now = state.containers.get(a.container)
  const { app, type } = a.identity
  switch (a.kind) {
    case 'started': {
      if (now !== undefined) return []
      const { release, number } = a.identity
      return [
        {
          type: 'ContainerStarted',
          data: {
            app,
            type,
            release,
            container: a.container,
            host: a.host,
            ...(a.port === undefined ? {} : { port: a.port }),
            ...(number === undefined ? {} : { number }),
          },
        },
      ]
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

function decide(command: RuntimeCommand, state: RuntimeState): NewEvent[] {
  return command.type === 'Announce' ? announce(state, command.announcement) : decideDeploy(command, state)
}

function unhandled(x: never): never {
  throw new Error(`runtime decider cannot handle ${(x as { type: string }).type}`)
}

/**
 * The decider of `runtime.<app>` streams, written by the scheduler (deploys) and the publishers (one
 * per Docker host: containers), both through `runCommand`, so every event is told once.
 */
export const runtimeDecider: Decider<RuntimeState, RuntimeCommand> = { initialState, evolve, decide }
