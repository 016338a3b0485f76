import { useEffect, useRef, useState } from 'preact/hooks'
import { appPath, type LogLine } from './api.js'

/** Lines kept on the page; older ones scroll away (the logger keeps more: `wharf logs -n`). */
const KEEP = 1000

/** `wharf logs -f` in the page: the recent lines, then each new one (server-sent events), with pause and a process-type filter. */
export function LiveLogs({ app, types }: { app: string; types: string[] }) {
  const [lines, setLines] = useState<LogLine[]>([])
  const [type, setType] = useState('')
  const [paused, setPaused] = useState(false)
  const [state, setState] = useState<'connecting' | 'live' | 'reconnecting'>('connecting')
  const held = useRef<LogLine[]>([])
  const pausedRef = useRef(paused)
  pausedRef.current = paused
  const box = useRef<HTMLPreElement>(null)

  useEffect(() => {
    setLines([])
    held.current = []
    const q = new URLSearchParams({ lines: '200' })
    if (type) q.set('type', type)
    const source = new EventSource(appPath(app, `/logs/stream?${q}`))
    const seen = new Set<string>()
    source.onopen = () => setState('live')
    source.onerror = () => setState('reconnecting')
    source.onmessage = (m) => {
      const line = JSON.parse(m.data) as LogLine
      if (seen.has(line.id)) return // a reconnect sends the recent lines again
      seen.add(line.id)
      if (pausedRef.current) {
        held.current.push(line)
        if (held.current.length > KEEP) held.current.shift()
        return
      }
      setLines((ls) => [...ls, line].slice(-KEEP))
    }
    return () => source.close()
  }, [app, type])

  useEffect(() => {
    if (!paused && held.current.length > 0) {
      const more = held.current
      held.current = []
      setLines((ls) => [...ls, ...more].slice(-KEEP))
    }
  }, [paused])

  useEffect(() => {
    const el = box.current
    if (el && !paused) el.scrollTop = el.scrollHeight
  }, [lines, paused])

  return (
    <section aria-labelledby="logs-title" class="card">
      <div class="bar">
        <h2 id="logs-title">Live logs</h2>
        <span class={`live live-${state}`} role="status">
          {paused ? 'paused' : state}
        </span>
        <label>
          Process type{' '}
          <select value={type} onChange={(e) => setType(e.currentTarget.value)}>
            <option value="">all</option>
            {types.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <button type="button" aria-pressed={paused} onClick={() => setPaused(!paused)}>
          {paused ? 'Resume' : 'Pause'}
        </button>
      </div>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard (WCAG 2.1.1) */}
      <pre class="logs" ref={box} tabIndex={0} role="log" aria-label={`Log lines of ${app}`} data-testid="logs">
        {lines.map((l) => (
          <div key={l.id} class={`line src-${l.source}`}>
            <span class="t">{l.time.slice(11, 23)}</span> <span class="p">{l.type ? `${l.type}.${l.number ?? ''}` : l.source}</span> {l.text}
          </div>
        ))}
      </pre>
    </section>
  )
}
