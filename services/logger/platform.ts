/**
 * Platform events as lines of the app's log, Heroku style: `[wharf] release v3 created by alice`.
 * Pure: an event in, the line's text (or nothing) out.
 */
import { isWharfEvent } from '../../domain/index.js'
import type { RecordedEvent } from '../../events/index.js'

/** The user of an event's actor (`user:alice` -> alice), or the system part that wrote it (`system:scheduler` -> scheduler). */
function who(e: RecordedEvent): string {
  const i = e.actor.indexOf(':')
  return i >= 0 ? e.actor.slice(i + 1) : e.actor
}

function formation(f: Record<string, number>): string {
  return Object.entries(f)
    .map(([t, n]) => `${t}=${n}`)
    .join(' ')
}

/** The process a runtime event is about: `web.2`, or `web (0123456789ab)` when its number is not known. */
function processName(type: string, container: string, numbers: Map<string, number>): string {
  const n = numbers.get(container)
  return n === undefined ? `${type} (${container.slice(0, 12)})` : `${type}.${n}`
}

/** Container -> process number, from `ContainerStarted`, so that a stop or crash names `web.2`. Bounded. */
export class ProcessNumbers extends Map<string, number> {
  readonly #max: number

  constructor(max = 10_000) {
    super()
    this.#max = max
  }

  override set(container: string, n: number): this {
    super.delete(container)
    super.set(container, n)
    if (this.size > this.#max) super.delete(this.keys().next().value!)
    return this
  }
}

/**
 * The log line an event makes in its app's log, without the `[wharf]` prefix (the source says it);
 * undefined for events that say nothing a reader of the log needs (config changes show as their
 * release). `numbers` is read for container events and updated by `ContainerStarted`.
 */
export function platformLine(e: RecordedEvent, numbers: ProcessNumbers = new ProcessNumbers()): { app: string; text: string } | undefined {
  if (!isWharfEvent(e) || !('app' in e.data)) return undefined
  const app = e.data.app
  if (!app) return undefined
  const by = who(e)
  const text = ((): string | undefined => {
    switch (e.type) {
      case 'AppCreated':
        return `app created by ${e.data.owner}`
      case 'AppTransferred':
        return `app transferred from ${e.data.from} to ${e.data.to} by ${by}`
      case 'ReleaseCreated':
        return `release v${e.data.version} created by ${e.data.by}${e.data.summary ? `: ${e.data.summary}` : ''}`
      case 'FormationScaled':
        return `scaled to ${formation(e.data.formation)} by ${by}`
      case 'RestartRequested':
        return `restart of ${e.data.type ?? 'all processes'} requested by ${by}`
      case 'DomainAdded':
        return `domain ${e.data.domain} added by ${by}`
      case 'DomainRemoved':
        return `domain ${e.data.domain} removed by ${by}`
      case 'MaintenanceSet':
        return `maintenance mode ${e.data.enabled ? 'on' : 'off'} by ${by}`
      case 'CollaboratorAdded':
        return `${e.data.username} added as a collaborator by ${by}`
      case 'CollaboratorRemoved':
        return `${e.data.username} removed as a collaborator by ${by}`
      case 'DrainAdded':
        return `log drain ${e.data.id} added by ${by}`
      case 'DrainRemoved':
        return `log drain ${e.data.id} removed by ${by}`
      case 'PushReceived':
        return `push of ${String(e.data.sha).slice(0, 7)} received from ${e.data.user}`
      case 'BuildSucceeded':
        return `build succeeded: ${e.data.image}`
      case 'BuildFailed':
        return `build failed: ${e.data.reason}`
      case 'DeployStarted':
        return `deploy of v${e.data.release} started (${formation(e.data.formation)})`
      case 'DeployCompleted':
        return `deploy of v${e.data.release} completed`
      case 'DeployFailed':
        return `deploy of v${e.data.release} failed: ${e.data.reason}${e.data.rolledBackTo ? `; rolled back to v${e.data.rolledBackTo}` : ''}`
      case 'ContainerStarted':
        if (e.data.number !== undefined) numbers.set(e.data.container, e.data.number)
        return `${processName(e.data.type, e.data.container, numbers)} started (v${e.data.release})`
      case 'ContainerStopping':
        return `${processName(e.data.type, e.data.container, numbers)} stopping`
      case 'ContainerStopped':
        return `${processName(e.data.type, e.data.container, numbers)} stopped`
      case 'ContainerCrashed':
        return `${processName(e.data.type, e.data.container, numbers)} crashed: exit code ${e.data.exitCode}${e.data.reason ? ` (${e.data.reason})` : ''}`
      // No line for AppDestroyed: the app's lines are deleted with it, and nobody reads a destroyed app's logs.
      default:
        return undefined
    }
  })()
  return text === undefined ? undefined : { app, text }
}
