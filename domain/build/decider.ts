import { WharfError } from '../../core/errors.js'
import type { NewEvent, RecordedEvent } from '../../events/index.js'
import type { Decider } from '../decider.js'
import { narrow, type EventOf } from '../catalogue.js'

/**
 * Where a `build.<uuid>` stream is: `received` (a push arrived), `started` (an image is being made),
 * then `succeeded` or `failed`, after which it takes no more events.
 */
export type BuildStatus = 'none' | 'received' | 'started' | 'succeeded' | 'failed'

/** A `build.<uuid>` stream folded. */
export interface BuildState {
  status: BuildStatus
  /** The app built (from the first event). */
  app?: string
  /** The pushed commit of a git build. */
  sha?: string
  /** The process that runs the build (`host:pid`, or `controller` for `builds:create`). */
  builder?: string
}

export type BuildCommand =
  /**
   * A `git push` arrived and this builder starts building it at once: `PushReceived` and
   * `BuildStarted` in one append, so no build is ever seen received but not started.
   */
  | { type: 'ReceivePush'; app: string; sha: string; user: string; fingerprint: string; stack: string; builder: string }
  /** `builds:create`: an existing image becomes a build (no push). */
  | { type: 'StartBuild'; app: string; user: string; source: string; builder: string }
  /** The image is in the registry. */
  | { type: 'SucceedBuild'; app: string; image: string; digest?: string; procfile: Record<string, string>; port: number }
  /** The build failed; `reason` is cut to 2048 characters. */
  | { type: 'FailBuild'; app: string; reason: string; lastLines: string[] }
  /**
   * The orphan sweep: the build's builder died (nobody holds the app's push lock while the build is
   * unfinished). Fails it, naming the builder; a build that finished meanwhile is left alone.
   */
  | { type: 'FailOrphanBuild'; app: string }

type BuildEvent = EventOf<'PushReceived' | 'BuildStarted' | 'BuildSucceeded' | 'BuildFailed'>

const MAX_REASON = 2048

function evolve(state: BuildState, event: RecordedEvent): BuildState {
  const e = narrow<BuildEvent>(event)
  switch (e.type) {
    case 'PushReceived':
      return { status: 'received', app: e.data.app, sha: e.data.sha }
    case 'BuildStarted':
      return { ...state, status: 'started', app: e.data.app, builder: e.data.builder, ...(e.data.sha === undefined ? {} : { sha: e.data.sha }) }
    case 'BuildSucceeded':
      return { ...state, status: 'succeeded' }
    case 'BuildFailed':
      return { ...state, status: 'failed' }
    default:
      return unhandled(e)
  }
}

function decide(command: BuildCommand, state: BuildState): NewEvent[] {
  const { app } = command
  if (state.app !== undefined && state.app !== app) {
    throw new WharfError('WHARF_INVALID', `this build is of ${state.app}, not ${app}`, { details: { app } })
  }
  switch (command.type) {
    case 'ReceivePush': {
      const { sha, user, fingerprint, stack, builder } = command
      // The same push again (a retried append that went through): nothing more.
      if (state.status !== 'none' && state.sha === sha && state.builder === builder) return []
      if (state.status !== 'none') throw conflict(app, state, 'be received')
      return [
        { type: 'PushReceived', data: { app, sha, user, fingerprint } },
        { type: 'BuildStarted', data: { app, user, kind: 'git', sha, stack, builder } },
      ]
    }
    case 'StartBuild': {
      const { user, source, builder } = command
      if (state.status !== 'none') throw conflict(app, state, 'start')
      return [{ type: 'BuildStarted', data: { app, user, kind: 'image', source, stack: 'image', builder } }]
    }
    case 'SucceedBuild': {
      if (state.status !== 'started') throw conflict(app, state, 'succeed')
      const { image, digest, procfile, port } = command
      return [{ type: 'BuildSucceeded', data: { app, image, ...(digest === undefined ? {} : { digest }), procfile, port } }]
    }
    case 'FailBuild':
      if (state.status !== 'received' && state.status !== 'started') throw conflict(app, state, 'fail')
      return [{ type: 'BuildFailed', data: { app, reason: command.reason.slice(0, MAX_REASON), lastLines: command.lastLines } }]
    case 'FailOrphanBuild': {
      if (state.status !== 'received' && state.status !== 'started') return []
      const reason = `the builder (${state.builder ?? 'unknown'}) stopped during the build; nothing was released; push again`
      return [{ type: 'BuildFailed', data: { app, reason, lastLines: [] } }]
    }
    default:
      return unhandled(command)
  }
}

/** `WHARF_CONFLICT`: the command does not fit where the build is. */
function conflict(app: string, state: BuildState, verb: 'be received' | 'start' | 'succeed' | 'fail'): WharfError {
  const where: Record<BuildStatus, string> = {
    none: 'it has not started',
    received: verb === 'succeed' ? 'it has not started' : 'it was received already',
    started: 'it has started already',
    succeeded: 'it has succeeded already',
    failed: 'it has failed already',
  }
  return new WharfError('WHARF_CONFLICT', `a build of ${app} cannot ${verb}: ${where[state.status]}`, { details: { app, status: state.status } })
}

function unhandled(x: never): never {
  throw new Error(`build decider cannot handle ${(x as { type: string }).type}`)
}

/**
 * The decider of `build.<uuid>` streams, the only writer logic of a build: the builder (pushes), the
 * controller (`builds:create`) and the builder's orphan sweep all append through it. A build starts
 * once, succeeds only once started, fails only while unfinished; a finished build takes no more events.
 */
export const buildDecider: Decider<BuildState, BuildCommand> = { initialState: () => ({ status: 'none' }), evolve, decide }
