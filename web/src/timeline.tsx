import { useEffect, useRef, useState } from 'preact/hooks'
import { api, appPath, type EventView, type Trace } from './api.js'

/** Events kept on the page, newest first. */
const KEEP = 200
/** Traces drawn: of the newest releases. */
const TRACES = 5

/** One push's (or command's) trace as a bar: each step a segment as wide as the time it took. */
export function TraceBar({ trace }: { trace: Trace }) {
  const total = Math.max(trace.totalMs, 1)
  return (
    <figure class="trace" data-testid={`trace-v${trace.release ?? ''}`}>
      <figcaption>
        v{trace.release ?? '?'}: {trace.status}
        {trace.reason ? ` (${trace.reason})` : ''}, {(trace.totalMs / 1000).toFixed(2)} s
      </figcaption>
      <div class="bar-track" role="img" aria-label={trace.steps.map((s) => `${s.type} +${(s.offsetMs / 1000).toFixed(2)} s`).join(', ')}>
        {trace.steps.map((s, i) => (
          <span
            key={`${s.seq}-${i}`}
            class={`seg seg-${s.type}`}
            style={{ left: `${(Math.max(0, s.offsetMs - s.stepMs) / total) * 100}%`, width: `max(3px, ${(s.stepMs / total) * 100}%)` }}
            title={`${s.type} ${s.detail}: +${(s.offsetMs / 1000).toFixed(2)} s (${(s.stepMs / 1000).toFixed(2)} s)`}
          />
        ))}
      </div>
      <ol class="steps">
        {trace.steps.map((s, i) => (
          <li key={`${s.seq}-${i}`}>
            <span class="off">+{(s.offsetMs / 1000).toFixed(2)} s</span> <span class="step">({(s.stepMs / 1000).toFixed(2)} s)</span> <strong>{s.type}</strong>{' '}
            {s.detail}
          </li>
        ))}
      </ol>
    </figure>
  )
}

function describe(e: EventView): string {
  const d = e.data as Record<string, unknown>
  if (typeof d.summary === 'string') return d.summary
  if (typeof d.release === 'number') return `v${d.release}`
  if (d.formation && typeof d.formation === 'object')
    return Object.entries(d.formation as Record<string, number>)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')
  if (typeof d.reason === 'string') return d.reason
  return ''
}

/** The app's events, live (server-sent events), with the traces of its newest releases. */
export function Timeline({ app }: { app: string }) {
  const [events, setEvents] = useState<EventView[]>([])
  const [traces, setTraces] = useState<Trace[]>([])
  const [state, setState] = useState<'loading' | 'live' | 'reconnecting'>('loading')
  const pending = useRef<ReturnType<typeof setTimeout> | undefined>(undefined)

  const loadTraces = async (evs: EventView[]) => {
    const releases = [...new Set(evs.filter((e) => e.type === 'ReleaseCreated').map((e) => (e.data as { version?: number }).version))]
      .filter((v): v is number => typeof v === 'number')
      .slice(0, TRACES)
    const got = await Promise.all(releases.map((v) => api<Trace>('GET', appPath(app, `/trace?ref=v${v}`)).catch(() => undefined)))
    setTraces(got.filter((t): t is Trace => t !== undefined))
  }

  useEffect(() => {
    let source: EventSource | undefined
    let closed = false
    let current: EventView[] = []
    ;(async () => {
      // The newest events: page through the app's history (bounded), keep the last KEEP.
      let after = 0
      let all: EventView[] = []
      for (let page = 0; page < 20; page++) {
        const r = await api<{ events: EventView[]; last: number }>('GET', `/v1/events?app=${encodeURIComponent(app)}&after=${after}&limit=1000`)
        all = [...all, ...r.events].slice(-KEEP)
        after = r.last
        if (r.events.length < 1000) break
      }
      if (closed) return
      current = all.reverse()
      setEvents(current)
      void loadTraces(current)
      source = new EventSource(`/v1/events/stream?app=${encodeURIComponent(app)}&after=${after}`)
      source.onopen = () => setState('live')
      source.onerror = () => setState('reconnecting')
      const on = (m: MessageEvent) => {
        const e = JSON.parse(m.data) as EventView
        if (current.some((c) => c.seq === e.seq && c.id === e.id)) return
        current = [e, ...current].slice(0, KEEP)
        setEvents(current)
        // Traces change with each deploy step: fetched again once a burst of events is over.
        clearTimeout(pending.current)
        pending.current = setTimeout(() => void loadTraces(current), 300)
      }
      source.onmessage = on
      // Named events (`event: <type>`) do not reach onmessage: listen to every type the log has.
      for (const type of EVENT_TYPES) source.addEventListener(type, on as EventListener)
    })().catch(() => setState('reconnecting'))
    return () => {
      closed = true
      source?.close()
      clearTimeout(pending.current)
    }
  }, [app])

  return (
    <div class="timeline-page">
      <section aria-labelledby="traces-title" class="card">
        <h2 id="traces-title">Deploys</h2>
        {traces.length === 0 && <p class="muted">No release yet.</p>}
        {traces.map((t) => (
          <TraceBar key={t.correlationId} trace={t} />
        ))}
      </section>
      <section aria-labelledby="events-title" class="card">
        <div class="bar">
          <h2 id="events-title">Events</h2>
          <span class={`live live-${state}`} role="status">
            {state}
          </span>
        </div>
        <ol class="events" data-testid="events" aria-live="polite">
          {events.map((e) => (
            <li key={`${e.seq}-${e.id}`} data-type={e.type}>
              <time dateTime={e.occurredAt} title={e.occurredAt}>
                {new Date(e.occurredAt).toLocaleTimeString()}
              </time>{' '}
              <strong>{e.type}</strong> {describe(e)} <span class="muted">{e.actor}</span>
            </li>
          ))}
        </ol>
      </section>
    </div>
  )
}

/** Every event type an app's timeline may show (the SSE `event:` names). */
const EVENT_TYPES = [
  'AppCreated',
  'AppDestroyed',
  'ConfigSet',
  'ConfigUnset',
  'AppTransferred',
  'CollaboratorAdded',
  'CollaboratorRemoved',
  'ReleaseCreated',
  'FormationScaled',
  'DomainAdded',
  'DomainRemoved',
  'LimitsSet',
  'LimitsUnset',
  'MaintenanceSet',
  'DrainAdded',
  'DrainRemoved',
  'RestartRequested',
  'CertAttached',
  'CertDetached',
  'PushReceived',
  'BuildStarted',
  'BuildSucceeded',
  'BuildFailed',
  'DeployStarted',
  'DeployCompleted',
  'DeployFailed',
  'ContainerStarted',
  'ContainerStopping',
  'ContainerStopped',
  'ContainerCrashed',
  'RouteServed',
  'HookAdded',
  'HookRemoved',
  'HookDisabled',
  'HookDeliveryFailed',
  'HookRecovered',
]
