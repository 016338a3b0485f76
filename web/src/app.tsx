import type { ComponentChildren } from 'preact'
import { useCallback, useEffect, useState } from 'preact/hooks'
import { type AppOverview, ago, api, appPath, type Release } from './api.js'
import { Status, processesText } from './apps.js'
import { LiveLogs } from './logs.js'
import { Timeline } from './timeline.js'

interface Info {
  name: string
  owner: string
  url: string
  maintenance: boolean
  domains: string[]
  formation: Record<string, number>
  collaborators: string[]
}

/** Runs a change, shows its error (with its code) or a short confirmation, and reloads what it changed. */
function useAction(reload: () => void) {
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string } | undefined>()
  const [busy, setBusy] = useState(false)
  const run = async (what: string, fn: () => Promise<unknown>) => {
    setBusy(true)
    setMessage(undefined)
    try {
      await fn()
      setMessage({ kind: 'ok', text: what })
      reload()
    } catch (err) {
      const e = err as { message: string; code?: string }
      setMessage({ kind: 'error', text: `${e.message}${e.code ? ` (${e.code})` : ''}` })
    } finally {
      setBusy(false)
    }
  }
  const shown = message && (
    <p role={message.kind === 'error' ? 'alert' : 'status'} class={message.kind}>
      {message.text}
    </p>
  )
  return { run, busy, shown }
}

function Section({ id, title, children }: { id: string; title: string; children: ComponentChildren }) {
  return (
    <section class="card" aria-labelledby={`${id}-title`} id={id}>
      <h2 id={`${id}-title`}>{title}</h2>
      {children}
    </section>
  )
}

export function AppPage({ app, tab }: { app: string; tab: 'overview' | 'logs' | 'timeline' }) {
  const [info, setInfo] = useState<Info | undefined>()
  const [overview, setOverview] = useState<AppOverview | undefined>()
  const [error, setError] = useState('')
  const [version, setVersion] = useState(0)
  const reload = useCallback(() => setVersion((v) => v + 1), [])
  useEffect(() => {
    api<Info>('GET', appPath(app)).then(setInfo, (e: Error) => setError(e.message))
    api<{ apps: AppOverview[] }>('GET', '/v1/overview/apps').then((r) => setOverview(r.apps.find((a) => a.name === app)))
  }, [app, version])
  const base = `#/apps/${encodeURIComponent(app)}`
  return (
    <article aria-labelledby="app-title">
      <p class="crumbs">
        <a href="#/">Apps</a> /
      </p>
      <div class="bar">
        <h1 id="app-title">{app}</h1>
        {overview && <Status status={overview.status} />}
        {info && (
          <a href={info.url} target="_blank" rel="noopener noreferrer">
            {info.url.replace(/^https?:\/\//, '')}
          </a>
        )}
      </div>
      {overview && (
        <p class="summary">
          {overview.release ? `v${overview.release.version}: ${overview.release.summary}` : 'no release'} · processes {processesText(overview.processes)}
          {overview.lastDeploy && ` · last deploy v${overview.lastDeploy.release} ${overview.lastDeploy.outcome} ${ago(overview.lastDeploy.at)}`}
        </p>
      )}
      <nav class="tabs" aria-label="App">
        <a href={base} aria-current={tab === 'overview' ? 'page' : undefined}>
          Overview
        </a>
        <a href={`${base}/logs`} aria-current={tab === 'logs' ? 'page' : undefined}>
          Logs
        </a>
        <a href={`${base}/timeline`} aria-current={tab === 'timeline' ? 'page' : undefined}>
          Timeline
        </a>
      </nav>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {tab === 'logs' && <LiveLogs app={app} types={Object.keys(info?.formation ?? {})} />}
      {tab === 'timeline' && <Timeline app={app} />}
      {tab === 'overview' && info && (
        <div class="grid">
          <Releases app={app} version={version} reload={reload} />
          <Config app={app} version={version} reload={reload} />
          <Scale app={app} formation={info.formation} running={overview?.processes ?? {}} reload={reload} />
          <Domains app={app} domains={info.domains} reload={reload} />
          <Collaborators app={app} owner={info.owner} collaborators={info.collaborators} reload={reload} />
          <Maintenance app={app} enabled={info.maintenance} reload={reload} />
        </div>
      )}
    </article>
  )
}

function Releases({ app, version, reload }: { app: string; version: number; reload: () => void }) {
  const [releases, setReleases] = useState<Release[]>([])
  const { run, busy, shown } = useAction(reload)
  useEffect(() => {
    api<{ releases: Release[] }>('GET', appPath(app, '/releases?limit=20')).then((r) => setReleases(r.releases))
  }, [app, version])
  const current = releases[0]?.version
  return (
    <Section id="releases" title="Releases">
      {shown}
      <ol class="releases">
        {releases.map((r) => (
          <li key={r.version}>
            <span class="v">v{r.version}</span> <span>{r.summary}</span>{' '}
            <span class="muted" title={r.created}>
              {r.by} · {ago(r.created)}
            </span>
            {r.version !== current && r.image && (
              <button
                type="button"
                disabled={busy}
                onClick={() => run(`Rolled back to v${r.version}`, () => api('POST', appPath(app, '/releases/rollback'), { version: r.version }))}
                aria-label={`Roll back to v${r.version}`}
              >
                Roll back
              </button>
            )}
          </li>
        ))}
      </ol>
    </Section>
  )
}

function Config({ app, version, reload }: { app: string; version: number; reload: () => void }) {
  const [values, setValues] = useState<Record<string, string>>({})
  const [revealed, setRevealed] = useState<Set<string>>(new Set())
  const { run, busy, shown } = useAction(reload)
  useEffect(() => {
    api<{ values: Record<string, string> }>('GET', appPath(app, '/config')).then((r) => setValues(r.values))
  }, [app, version])
  const toggle = (k: string) => {
    const next = new Set(revealed)
    if (next.has(k)) next.delete(k)
    else next.add(k)
    setRevealed(next)
  }
  const set = (e: Event) => {
    e.preventDefault()
    const form = e.currentTarget as HTMLFormElement
    const data = new FormData(form)
    const key = String(data.get('key')).trim()
    const value = String(data.get('value'))
    void run(`Set ${key}`, async () => {
      await api('POST', appPath(app, '/config'), { values: { [key]: value } })
      form.reset()
    })
  }
  return (
    <Section id="config" title="Config">
      {shown}
      <table class="config">
        <tbody>
          {Object.entries(values).map(([k, v]) => (
            <tr key={k}>
              <th scope="row">{k}</th>
              <td>
                <code data-testid={`config-${k}`}>{revealed.has(k) ? v : '••••••••'}</code>
              </td>
              <td class="actions">
                <button type="button" onClick={() => toggle(k)} aria-pressed={revealed.has(k)} aria-label={`${revealed.has(k) ? 'Hide' : 'Reveal'} ${k}`}>
                  {revealed.has(k) ? 'Hide' : 'Reveal'}
                </button>
                <button
                  type="button"
                  disabled={busy}
                  onClick={() => run(`Unset ${k}`, () => api('POST', appPath(app, '/config/unset'), { keys: [k] }))}
                  aria-label={`Unset ${k}`}
                >
                  Unset
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {Object.keys(values).length === 0 && <p class="muted">No config yet.</p>}
      <form class="inline" onSubmit={set}>
        <label>
          Key
          <input name="key" required pattern="[A-Z_][A-Z0-9_]*" title="Capitals, digits and _, not starting with a digit" autocomplete="off" />
        </label>
        <label>
          Value
          <input name="value" autocomplete="off" />
        </label>
        <button type="submit" disabled={busy}>
          Set
        </button>
      </form>
    </Section>
  )
}

function Scale({ app, formation, running, reload }: { app: string; formation: Record<string, number>; running: AppOverview['processes']; reload: () => void }) {
  const { run, busy, shown } = useAction(reload)
  const submit = (e: Event) => {
    e.preventDefault()
    const data = new FormData(e.currentTarget as HTMLFormElement)
    const wanted: Record<string, number> = {}
    for (const type of Object.keys(formation)) wanted[type] = Number(data.get(type))
    void run('Scaled', () => api('POST', appPath(app, '/formation'), wanted))
  }
  const types = Object.keys(formation)
  return (
    <Section id="scale" title="Scale">
      {shown}
      {types.length === 0 ? (
        <p class="muted">Nothing to scale before the first build.</p>
      ) : (
        <form class="inline" onSubmit={submit}>
          {types.map((type) => (
            <label key={type}>
              {type} <span class="muted">({running[type]?.running ?? 0} running)</span>
              <input name={type} type="number" min={0} max={100} required value={formation[type]} inputMode="numeric" />
            </label>
          ))}
          <button type="submit" disabled={busy}>
            Scale
          </button>
        </form>
      )}
    </Section>
  )
}

function Domains({ app, domains, reload }: { app: string; domains: string[]; reload: () => void }) {
  const { run, busy, shown } = useAction(reload)
  const add = (e: Event) => {
    e.preventDefault()
    const form = e.currentTarget as HTMLFormElement
    const domain = String(new FormData(form).get('domain')).trim().toLowerCase()
    void run(`Added ${domain}`, async () => {
      await api('POST', appPath(app, '/domains'), { domain })
      form.reset()
    })
  }
  return (
    <Section id="domains" title="Domains">
      {shown}
      <ul class="plain">
        {domains.map((d) => (
          <li key={d}>
            {d}{' '}
            <button
              type="button"
              disabled={busy}
              onClick={() => run(`Removed ${d}`, () => api('DELETE', appPath(app, `/domains/${encodeURIComponent(d)}`)))}
              aria-label={`Remove ${d}`}
            >
              Remove
            </button>
          </li>
        ))}
      </ul>
      <form class="inline" onSubmit={add}>
        <label>
          Domain
          <input name="domain" required autocomplete="off" placeholder="www.example.com" />
        </label>
        <button type="submit" disabled={busy}>
          Add
        </button>
      </form>
    </Section>
  )
}

function Collaborators({ app, owner, collaborators, reload }: { app: string; owner: string; collaborators: string[]; reload: () => void }) {
  const { run, busy, shown } = useAction(reload)
  const add = (e: Event) => {
    e.preventDefault()
    const form = e.currentTarget as HTMLFormElement
    const username = String(new FormData(form).get('username')).trim()
    void run(`Shared with ${username}`, async () => {
      await api('POST', appPath(app, '/perms'), { username })
      form.reset()
    })
  }
  return (
    <Section id="collaborators" title="Collaborators">
      {shown}
      <p>
        Owner: <strong>{owner}</strong>
      </p>
      <ul class="plain">
        {collaborators.map((u) => (
          <li key={u}>
            {u}{' '}
            <button
              type="button"
              disabled={busy}
              onClick={() => run(`Removed ${u}`, () => api('DELETE', appPath(app, `/perms/${encodeURIComponent(u)}`)))}
              aria-label={`Remove ${u}`}
            >
              Remove
            </button>
          </li>
        ))}
      </ul>
      <form class="inline" onSubmit={add}>
        <label>
          Username
          <input name="username" required autocomplete="off" />
        </label>
        <button type="submit" disabled={busy}>
          Share
        </button>
      </form>
    </Section>
  )
}

function Maintenance({ app, enabled, reload }: { app: string; enabled: boolean; reload: () => void }) {
  const { run, busy, shown } = useAction(reload)
  return (
    <Section id="maintenance" title="Maintenance">
      {shown}
      <p>{enabled ? 'On: the router answers 503 for this app.' : 'Off: the app is served.'}</p>
      <button
        type="button"
        role="switch"
        aria-checked={enabled}
        disabled={busy}
        onClick={() => run(enabled ? 'Maintenance off' : 'Maintenance on', () => api('POST', appPath(app, '/maintenance'), { enabled: !enabled }))}
      >
        {enabled ? 'Turn maintenance off' : 'Turn maintenance on'}
      </button>
    </Section>
  )
}
