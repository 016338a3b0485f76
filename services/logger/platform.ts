/**
 * Platform events as lines of the app's log, Heroku style: `[wharf] release v3 created by alice`.
 * Pure: an event in, the line's text (or nothing) out.
 */
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
  constructor(private readonly max = 10_000) {
    super()
  }

  override set(container: string, n: number): this {
    super.delete(container)
    super.set(container, n)
    if (this.size > this.max) super.delete(this.keys().next().value!)
    return this
  }
}

/**
 * The log line an event makes in its app's log, without the `[wharf]` prefix (the source says it);
 * undefined for events that say nothing a reader of the log needs (config changes show as their
 * release). `numbers` is read for container events and updated by `ContainerStarted`.
 */
export function platformLine(e: RecordedEvent, numbers: ProcessNumbers = new ProcessNumbers()): { app: string; text: string } | undefined {
  const d = e.data as Record<string, any>
  const app = typeof d?.app === 'string' ? (d.app as string) : undefined
  if (!app) return undefined
  const by = who(e)
  const text = ((): string | undefined => {
    switch (e.type) {
      case 'AppCreated':
        return `app created by ${d.owner}`
      case 'AppTransferred':
        return `app transferred from ${d.from} to ${d.to} by ${by}`
      case 'ReleaseCreated':
        return `release v${d.version} created by ${d.by}${d.summary ? `: ${d.summary}` : ''}`
      case 'FormationScaled':
        return `scaled to ${formation(d.formation)} by ${by}`
      case 'RestartRequested':
        return `restart of ${d.type ?? 'all processes'} requested by ${by}`
      case 'DomainAdded':
        return `domain ${d.domain} added by ${by}`
      case 'DomainRemoved':
        return `domain ${d.domain} removed by ${by}`
      case 'MaintenanceSet':
        return `maintenance mode ${d.enabled ? 'on' : 'off'} by ${by}`
      case 'CollaboratorAdded':
        return `${d.username} added as a collaborator by ${by}`
      case 'CollaboratorRemoved':
        return `${d.username} removed as a collaborator by ${by}`
      case 'DrainAdded':
        return `log drain ${d.id} added by ${by}`
      case 'DrainRemoved':
        return `log drain ${d.id} removed by ${by}`
      case 'PushReceived':
        return `push of ${String(d.sha).slice(0, 7)} received from ${d.user}`
      case 'BuildSucceeded':
        return `build succeeded: ${d.image}`
      case 'BuildFailed':
        return `build failed: ${d.reason}`
      case 'DeployStarted':
        return `deploy of v${d.release} started (${formation(d.formation)})`
      case 'DeployCompleted':
        return `deploy of v${d.release} completed`
      case 'DeployFailed':
        return `deploy of v${d.release} failed: ${d.reason}${d.rolledBackTo ? `; rolled back to v${d.rolledBackTo}` : ''}`
      case 'ContainerStarted':
        if (d.number !== undefined) numbers.set(d.container, d.number)
        return `${processName(d.type, d.container, numbers)} started (v${d.release})`
      case 'ContainerStopping':
        return `${processName(d.type, d.container, numbers)} stopping`
      case 'ContainerStopped':
        return `${processName(d.type, d.container, numbers)} stopped`
      case 'ContainerCrashed':
        return `${processName(d.type, d.container, numbers)} crashed: exit code ${d.exitCode}${d.reason ? ` (${d.reason})` : ''}`
      case 'AppDestroyed':
        return `app destroyed by ${by}`
      default:
        return undefined
    }
  })()
  return text === undefined ? undefined : { app, text }
}
