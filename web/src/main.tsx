import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { AdminPage } from './admin.js'
import { api, fetchEarly, type Session, setSession, whenSignedOut } from './api.js'
import { AppPage } from './app.js'
import { AppsList } from './apps.js'
import { SignIn } from './signin.js'
import './style.css'

/** The page a hash names: `#/`, `#/apps/<app>[/logs|/timeline]`, `#/admin`. */
export type Route = { page: 'apps' } | { page: 'app'; app: string; tab: 'overview' | 'logs' | 'timeline' } | { page: 'admin' }

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent)
  if (parts[0] === 'admin') return { page: 'admin' }
  if (parts[0] === 'apps' && parts[1]) {
    const tab = parts[2] === 'logs' || parts[2] === 'timeline' ? parts[2] : 'overview'
    return { page: 'app', app: parts[1], tab }
  }
  return { page: 'apps' }
}

// The apps list, the usual first page, is asked for beside the session check rather than after it.
if (parseRoute(location.hash).page === 'apps') fetchEarly('/v1/overview/apps')

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash))
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash))
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  return route
}

function App() {
  const [session, setS] = useState<Session | null | undefined>(undefined)
  const route = useRoute()
  const use = (s: Session | null) => {
    setSession(s ?? undefined)
    setS(s)
  }
  useEffect(() => {
    whenSignedOut(() => use(null))
    api<Session>('GET', '/v1/auth/session').then(use, () => use(null))
  }, [])
  useEffect(() => {
    document.title = route.page === 'app' ? `${route.app} · Wharf` : route.page === 'admin' ? 'Platform · Wharf' : 'Apps · Wharf'
  }, [route])

  if (session === undefined) return <p class="loading">Loading…</p>
  if (session === null) return <SignIn onSignedIn={use} />
  const signOut = async () => {
    await api('DELETE', '/v1/auth/session').catch(() => undefined)
    use(null)
    location.hash = '#/'
  }
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          Wharf
        </a>
        <nav aria-label="Main">
          <a href="#/" aria-current={route.page === 'apps' ? 'page' : undefined}>
            Apps
          </a>
          {session.admin && (
            <a href="#/admin" aria-current={route.page === 'admin' ? 'page' : undefined}>
              Platform
            </a>
          )}
        </nav>
        <span class="who">
          <span data-testid="username">{session.username}</span>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main">
        {route.page === 'apps' && <AppsList />}
        {route.page === 'app' && <AppPage key={route.app} app={route.app} tab={route.tab} />}
        {route.page === 'admin' && (session.admin ? <AdminPage /> : <p role="alert">The platform page is for admins.</p>)}
      </main>
    </>
  )
}

render(<App />, document.getElementById('root')!)
