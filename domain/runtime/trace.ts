/**
 * Causal traces: the chain of events from a push (or a command) to the moment the router served the
 * new containers, and whether that moment has come. Pure: the events API's read model gives the
 * events (`projections/eventlog.ts`, `traceOf`), the controller answers the trace, `wharf
 * events:trace` and `git push` print it, and the CLI's waiting commands poll its status.
 */

/** One event as the trace reads it (the events API's view: data already redacted). */
export interface TraceEvent {
  seq: number
  id: string
  type: string
  stream: string
  occurredAt: string
  correlationId: string
  data: unknown
}

/** One step of a trace: an event, when it happened from the start, and how long since the step before. */
export interface TraceStep {
  seq: number
  id: string
  type: string
  occurredAt: string
  /** ms from the first step. */
  offsetMs: number
  /** ms from the step before (0 for the first). */
  stepMs: number
  /** One line for people: `v12 web=3`, `web.2 of v12 (c0ffee123456) at 127.0.0.1:49153`. */
  detail: string
  correlationId: string
  /** The event's data as the events API shows it (config values redacted). */
  data: unknown
}

/**
 * Where the chain stands:
 * - `served`: the deploy completed and the router sends every new request to the new containers;
 * - `failed`: the build or the deploy failed (`reason`);
 * - `deploying`: a deploy started, not yet served;
 * - `pending`: no deploy started yet;
 * - `no-deploy`: nothing to deploy (the app has no build yet, or the command changed nothing that runs).
 */
export type TraceStatus = 'served' | 'failed' | 'deploying' | 'pending' | 'no-deploy'

/** How far the deploy's processes are: `web 2/3 started`. */
export interface TraceProgress {
  type: string
  started: number
  wanted: number
}

export interface Trace {
  app: string
  /** The correlation id that links the chain (the push's, or the command's request id). */
  correlationId: string
  /** The release the chain made or deployed, when known. */
  release?: number
  /** The build of the chain, when there is one. */
  build?: string
  status: TraceStatus
  /** Why it failed (`failed`), or what it waits for. */
  reason?: string
  /** ms from the first step to the last one. */
  totalMs: number
  steps: TraceStep[]
  /** Per process type of the deploy's formation, how many containers of the release started since the deploy did. */
  progress: TraceProgress[]
}

/** What {@link buildTrace} is given. */
export interface TraceInput {
  app: string
  correlationId: string
  /** Events of the app with the chain's correlation id, in log order (the push, the build, the command, the release, the deploy). */
  chain: readonly TraceEvent[]
  /** The release a `vN` ref names: its deploy may carry another correlation (a deploy the scheduler started later). */
  release?: number
  /**
   * The app's deploy, container and `RouteServed` events after the chain's first event, in log
   * order (bounded by the query: a deploy follows its cause closely).
   */
  after: readonly TraceEvent[]
  /** What the router served the app on just before the chain's first event (from the last `RouteServed` before it; [] when none). */
  servedBefore: readonly ServedView[]
  /** Whether the app had a release with an image before the chain (a formation change or restart then has something to run). */
  builtBefore: boolean
}

/** One served container as `RouteServed` records it. */
export interface ServedView {
  container: string
  release: number
  host: string
  port: number
}

/** Event types a trace reads after the chain's start, of the app. */
export const AFTER_TYPES = [
  'DeployStarted',
  'DeployCompleted',
  'DeployFailed',
  'ContainerStarted',
  'ContainerStopping',
  'ContainerStopped',
  'ContainerCrashed',
  'RouteServed',
] as const

type Obj = Record<string, unknown>
const obj = (d: unknown): Obj => (d && typeof d === 'object' ? (d as Obj) : {})
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined)
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)

function servedOf(e: TraceEvent): ServedView[] {
  const servers = obj(e.data).servers
  return Array.isArray(servers) ? (servers as ServedView[]) : []
}

/**
 * The trace of one chain. The deploy is the first `DeployStarted` with the chain's correlation id,
 * else the first of the chain's release after the chain started. It is served once the deploy
 * completed (a `DeployCompleted` of its release or a later one) and the router's served set is then
 * exactly the deploy's web containers: as many as its formation asks, all of its release or a later
 * one, every web container started since the deploy began among them (and, after a restart of web,
 * only those). The served moment is the `RouteServed` that made it so, or the `DeployCompleted`
 * when the set was already right (no web process).
 */
export function buildTrace(input: TraceInput): Trace {
  const { chain, after } = input
  // Everything the push or command wrote is a step; the deploy's own events are taken from `after`.
  const steps: TraceEvent[] = chain.filter((e) => !(AFTER_TYPES as readonly string[]).includes(e.type))
  const built = chain.find((e) => e.type === 'BuildStarted' || e.type === 'PushReceived')
  const buildId = built ? /^build\.(.+)$/.exec(built.stream)?.[1] : undefined
  const released = chain.filter((e) => e.type === 'ReleaseCreated').at(-1)
  let release = num(obj(released?.data).version) ?? input.release
  const trace = (status: TraceStatus, reason?: string, progress: TraceProgress[] = []): Trace => {
    const sorted = [...new Map([...steps].map((e) => [e.id, e])).values()].sort((a, b) => a.seq - b.seq)
    return {
      app: input.app,
      correlationId: input.correlationId,
      ...(release === undefined ? {} : { release }),
      ...(buildId ? { build: buildId } : {}),
      status,
      ...(reason ? { reason } : {}),
      ...timed(sorted),
      progress,
    }
  }
  const buildFailed = chain.find((e) => e.type === 'BuildFailed')
  if (buildFailed) return trace('failed', str(obj(buildFailed.data).reason) ?? 'the build failed')
  const deploy =
    after.find((e) => e.type === 'DeployStarted' && e.correlationId === input.correlationId) ??
    (release === undefined ? undefined : after.find((e) => e.type === 'DeployStarted' && num(obj(e.data).release) === release))
  if (!deploy) {
    if (chain.length === 0) return trace('no-deploy', 'nothing was recorded with this correlation id: the command changed nothing')
    if (!released && chain.some((e) => e.type === 'PushReceived' || e.type === 'BuildStarted')) {
      return trace('pending', chain.some((e) => e.type === 'BuildSucceeded') ? 'waiting for the release' : 'building')
    }
    // Without an image there is nothing to run: the scheduler starts no deploy.
    const image = released ? str(obj(released.data).image) !== undefined : input.builtBefore
    if (!image) return trace('no-deploy', 'the app has no build yet: nothing runs until `git push` or `wharf builds:create`')
    if (!released && !chain.some((e) => e.type === 'FormationScaled' || e.type === 'RestartRequested')) {
      return trace('no-deploy', 'the change makes no new release and runs nothing new')
    }
    return trace('pending', 'waiting for the scheduler to start the deploy')
  }
  release ??= num(obj(deploy.data).release)!
  const restartsWeb = chain.some((e) => e.type === 'RestartRequested' && [undefined, 'web'].includes(str(obj(e.data).type)))
  let formation = obj(obj(deploy.data).formation) as Record<string, number>
  let served: readonly ServedView[] = input.servedBefore
  for (const e of after) if (e.seq <= deploy.seq && e.type === 'RouteServed') served = servedOf(e)
  let servedEvent: TraceEvent | undefined
  const started = new Map<string, { type: string; seq: number }>()
  const alive = new Set<string>()
  let completed: TraceEvent | undefined
  steps.push(deploy)
  // Web containers of the release that were served before the deploy and still run count as started (a scale-up
  // keeps them), unless the chain restarts web; capped at the wanted number while old ones drain.
  const kept = new Set(restartsWeb ? [] : served.filter((s) => s.release >= release!).map((s) => s.container))
  const progress = (): TraceProgress[] =>
    Object.entries(formation)
      .filter(([, n]) => typeof n === 'number')
      .map(([type, wanted]) => {
        const fresh = [...started.values()].filter((s) => s.type === type).length
        const old = type === 'web' ? [...kept].filter((c) => !started.has(c)).length : 0
        return { type, wanted, started: Math.min(wanted, fresh + old) }
      })
      .sort((a, b) => (a.type === 'web' ? -1 : b.type === 'web' ? 1 : a.type.localeCompare(b.type)))
  const isServed = (): boolean => {
    const wanted = formation.web ?? 0
    if (served.length !== wanted) return false
    if (!served.every((s) => s.release >= release!)) return false
    const set = new Set(served.map((s) => s.container))
    for (const c of alive) if (started.get(c)?.type === 'web' && !set.has(c)) return false
    if (restartsWeb && !served.every((s) => alive.has(s.container))) return false
    return true
  }
  for (const e of after) {
    if (e.seq <= deploy.seq) continue
    const d = obj(e.data)
    switch (e.type) {
      case 'DeployStarted':
        // A later deploy of the release or a newer one (a scale, a newer release) supersedes this one's formation.
        if ((num(d.release) ?? 0) >= release) formation = obj(d.formation) as Record<string, number>
        break
      case 'DeployCompleted':
        if (!completed && (num(d.release) ?? 0) >= release) {
          completed = e
          steps.push(e)
        }
        break
      case 'DeployFailed':
        if (!completed && num(d.release) === release) {
          steps.push(e)
          const back = num(d.rolledBackTo)
          return trace('failed', `${str(d.reason) ?? 'the deploy failed'}${back ? ` (v${back} keeps running)` : ''}`, progress())
        }
        break
      case 'ContainerStarted': {
        const type = str(d.type) ?? 'web'
        const c = str(d.container)
        if (c && (num(d.release) ?? 0) >= release && !started.has(c)) {
          started.set(c, { type, seq: e.seq })
          alive.add(c)
          steps.push(e)
        }
        break
      }
      case 'ContainerStopping':
      case 'ContainerStopped':
      case 'ContainerCrashed': {
        const c = str(d.container)
        if (c) {
          alive.delete(c)
          kept.delete(c)
        }
        break
      }
      case 'RouteServed':
        served = servedOf(e)
        servedEvent = e
        break
    }
    if (completed && isServed()) {
      const moment = servedEvent && servedEvent.seq > deploy.seq ? servedEvent : completed
      if (moment.type === 'RouteServed') steps.push(moment)
      return trace('served', undefined, progress())
    }
  }
  return trace('deploying', completed ? 'waiting for the router to serve the new containers' : 'waiting for the deploy to complete', progress())
}

function timed(events: readonly TraceEvent[]): { totalMs: number; steps: TraceStep[] } {
  const t0 = events[0] ? Date.parse(events[0].occurredAt) : 0
  let prev = t0
  const steps = events.map((e): TraceStep => {
    const at = Date.parse(e.occurredAt)
    const step = {
      seq: e.seq,
      id: e.id,
      type: e.type,
      occurredAt: e.occurredAt,
      offsetMs: at - t0,
      stepMs: at - prev,
      detail: detailOf(e),
      correlationId: e.correlationId,
      data: e.data,
    }
    prev = at
    return step
  })
  return { totalMs: prev - t0, steps }
}

/** One line about an event, for people. */
export function detailOf(e: { type: string; data: unknown }): string {
  const d = obj(e.data)
  const v = (n: unknown) => (typeof n === 'number' ? `v${n}` : '')
  switch (e.type) {
    case 'PushReceived':
      return `${String(d.sha ?? '').slice(0, 7)} by ${String(d.user ?? '')}`
    case 'BuildStarted':
      return `${String(d.kind ?? '')} build (${String(d.stack ?? '')})`
    case 'BuildSucceeded':
      return String(d.image ?? '')
    case 'BuildFailed':
      return String(d.reason ?? '')
    case 'ConfigSet':
      return `set ${Object.keys(obj(d.values)).join(', ')}`
    case 'ConfigUnset':
      return `unset ${Array.isArray(d.keys) ? d.keys.join(', ') : ''}`
    case 'FormationScaled':
      return formationText(obj(d.formation))
    case 'RestartRequested':
      return `restart ${String(d.type ?? 'all')}`
    case 'ReleaseCreated':
      return `${v(d.version)} ${String(d.summary ?? '')}`.trim()
    case 'DeployStarted':
      return `${v(d.release)} ${formationText(obj(d.formation))}`.trim()
    case 'DeployCompleted':
      return v(d.release)
    case 'DeployFailed':
      return `${v(d.release)}: ${String(d.reason ?? '')}`
    case 'ContainerStarted': {
      const slot = typeof d.number === 'number' ? `${String(d.type)}.${d.number}` : String(d.type)
      const at = typeof d.port === 'number' ? ` at ${String(d.host)}:${d.port}` : ''
      return `${slot} of ${v(d.release)} (${String(d.container ?? '').slice(0, 12)})${at}`
    }
    case 'RouteServed': {
      const servers = Array.isArray(d.servers) ? (d.servers as ServedView[]) : []
      const releases = [...new Set(servers.map((s) => `v${s.release}`))].join(', ')
      return servers.length
        ? `the router serves ${servers.length} container${servers.length === 1 ? '' : 's'} of ${releases}`
        : 'the router serves no container'
    }
    default:
      return ''
  }
}

function formationText(f: Obj): string {
  return Object.entries(f)
    .map(([t, n]) => `${t}=${String(n)}`)
    .join(' ')
}

/** Progress for people: `v12: web 2/3 started, worker 1/1 started`. */
export function progressText(t: Pick<Trace, 'release' | 'progress'>): string {
  const parts = t.progress.map((p) => `${p.type} ${p.started}/${p.wanted} started`)
  return `${t.release === undefined ? '' : `v${t.release}: `}${parts.join(', ') || 'no process to start'}`
}

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`

/** The trace as a table for people: offset from the start, time spent since the step before, the event, a detail. */
export function formatTrace(t: Trace): string {
  const rows = t.steps.map((s) => [`+${secs(s.offsetMs)}`, `(${secs(s.stepMs)})`, s.type, s.detail])
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length), 0))
  const lines = rows.map((r) => `${r[0]!.padStart(widths[0]!)}  ${r[1]!.padStart(widths[1]!)}  ${r[2]!.padEnd(widths[2]!)}  ${r[3]}`.trimEnd())
  const head = `${t.app}${t.release === undefined ? '' : ` v${t.release}`}: ${statusText(t)}`
  return [head, ...lines].join('\n')
}

/** The status in words: `served 4.21 s after the push`, `failed: ...`. */
export function statusText(t: Trace): string {
  switch (t.status) {
    case 'served':
      return `served ${secs(t.totalMs)} after ${t.steps[0]?.type === 'PushReceived' ? 'the push' : 'the first event'}`
    case 'failed':
      return `failed: ${t.reason ?? 'unknown'}`
    case 'no-deploy':
      return `nothing deployed: ${t.reason ?? ''}`
    default:
      return `${t.status}: ${t.reason ?? ''}${t.progress.length ? ` (${progressText(t)})` : ''}`
  }
}
