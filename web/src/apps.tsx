import { useEffect, useState } from 'preact/hooks'
import { type AppOverview, ago, api, takeEarly } from './api.js'

export function Status({ status }: { status: AppOverview['status'] }) {
  return <span class={`status status-${status}`}>{status}</span>
}

export function processesText(ps: AppOverview['processes']): string {
  const types = Object.entries(ps)
  if (types.length === 0) return 'none'
  return types.map(([type, p]) => `${type} ${p.running}/${p.desired}`).join(', ')
}

/** Rows drawn at first, and added by each "Show more". */
const PAGE = 100

/** Every app the signed-in user may see, refreshed every 10 s; a page of rows at first, filter by name for the others. */
export function AppsList() {
  const [apps, setApps] = useState<AppOverview[] | undefined>()
  const [error, setError] = useState('')
  const [filter, setFilter] = useState('')
  const [rows, setRows] = useState(PAGE)
  useEffect(() => {
    let live = true
    let first = true
    const load = () =>
      (first ? takeEarly<{ apps: AppOverview[] }>('/v1/overview/apps') : api<{ apps: AppOverview[] }>('GET', '/v1/overview/apps')).then(
        (r) => {
          if (!live) return
          setApps(r.apps)
          setError('')
        },
        (err: Error) => live && setError(err.message),
      )
    void load()
    first = false
    const timer = setInterval(load, 10_000)
    return () => {
      live = false
      clearInterval(timer)
    }
  }, [])
  const shown = (apps ?? []).filter((a) => a.name.includes(filter.trim().toLowerCase()))
  return (
    <section aria-labelledby="apps-title">
      <div class="bar">
        <h1 id="apps-title">Apps</h1>
        <label class="filter">
          <span class="sr-only">Filter apps by name</span>
          <input type="search" placeholder="Filter by name" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        </label>
      </div>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {!apps && !error && <p class="loading">Loading…</p>}
      {apps && apps.length === 0 && <p>No apps yet. Create one with `wharf apps:create` and `git push wharf main`.</p>}
      {shown.length > 0 && (
        <table class="apps">
          <thead>
            <tr>
              <th scope="col">App</th>
              <th scope="col">Status</th>
              <th scope="col">Release</th>
              <th scope="col">Processes (running/desired)</th>
              <th scope="col">Last deploy</th>
              <th scope="col">URL</th>
            </tr>
          </thead>
          <tbody>
            {shown.slice(0, rows).map((a) => (
              <tr key={a.name} data-app={a.name}>
                <th scope="row" data-label="App">
                  <a href={`#/apps/${encodeURIComponent(a.name)}`}>{a.name}</a>
                </th>
                <td data-label="Status">
                  <Status status={a.status} />
                </td>
                <td data-label="Release">{a.release ? <span title={a.release.summary}>v{a.release.version}</span> : '–'}</td>
                <td data-label="Processes">{processesText(a.processes)}</td>
                <td data-label="Last deploy">
                  {a.lastDeploy ? (
                    <span title={a.lastDeploy.at}>
                      v{a.lastDeploy.release} {a.lastDeploy.outcome} {ago(a.lastDeploy.at)}
                    </span>
                  ) : (
                    '–'
                  )}
                </td>
                <td data-label="URL">
                  <a href={a.url} rel="noopener noreferrer" target="_blank">
                    {a.url.replace(/^https?:\/\//, '')}
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {shown.length > rows && (
        <p class="more">
          Showing {rows} of {shown.length}.{' '}
          <button type="button" onClick={() => setRows(rows + PAGE)}>
            Show {Math.min(PAGE, shown.length - rows)} more
          </button>{' '}
          or filter by name.
        </p>
      )}
    </section>
  )
}
