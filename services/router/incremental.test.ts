/**
 * The router's incremental pass against its full one: rows patched app by app into a RowIndex, the
 * routes of the apps it answers, their contributions and DictContents.changes must give nginx the
 * same dict as building everything anew and diffing it (routeTable, dictState, diff), through a
 * sequence of changes that move host names between apps, share certificates and destroy apps.
 */
import t from 'tap'
import { contributions, diff, dictState, DictContents, type AppContribution, type ChangeSet, type DictState } from './changes.js'
import { RowIndex, routeTable, type RouteRows } from './model.js'

const DOMAIN = 'wharf.localhost'
const NOW = Date.parse('2030-01-01T00:00:00Z')
const opts = { domain: DOMAIN, now: NOW }
const PEM = (n: number) => ({ certificate: `-----BEGIN CERTIFICATE-----\n${n}\n-----END CERTIFICATE-----\n`, key: `k${n}` })

type Mutable = { -readonly [K in keyof RouteRows]: RouteRows[K][number][] }

/** Applies a change set to a dict state, as nginx's admin server does. */
function apply(state: DictState, cs: ChangeSet): DictState {
  const out: DictState = cs.full
    ? { apps: new Map(), hosts: new Map(), certs: new Map(), sni: new Map() }
    : { apps: new Map(state.apps), hosts: new Map(state.hosts), certs: new Map(state.certs), sni: new Map(state.sni) }
  for (const k of ['apps', 'hosts', 'certs', 'sni'] as const) {
    for (const [key, v] of Object.entries(cs[k] ?? {})) {
      if (v === null) out[k].delete(key)
      else (out[k] as Map<string, unknown>).set(key, v)
    }
  }
  return out
}

const plain = (s: DictState) => ({
  apps: Object.fromEntries([...s.apps].sort()),
  hosts: Object.fromEntries([...s.hosts].sort()),
  certs: Object.fromEntries([...s.certs].sort()),
  sni: Object.fromEntries([...s.sni].sort()),
})

t.test('changes applied app by app give nginx the same dict as the whole table built anew', async (t) => {
  const rows: Mutable = {
    apps: [{ name: 'a' }, { name: 'b' }, { name: 'c' }],
    domains: [
      { domain: 'shared.example.test', app: 'b' },
      { domain: 'www.a.example.test', app: 'a' },
    ],
    containers: [{ container: 'x1', app: 'a', type: 'web', host: '127.0.0.1', port: 30001, state: 'up', release: 1 }],
    maintenance: [],
    releases: [{ app: 'a', config: { WHARF_PROXY_TIMEOUT: '5' } }],
    certs: [],
  }
  const full = () => dictState(routeTable(rows, opts)).state
  const index = new RowIndex()
  index.replace(undefined, rows, DOMAIN)
  const contents = new DictContents()
  const first = contributions(index.table(undefined, opts)).byApp
  contents.commit(first)
  let nginx = contents.state()
  t.same(plain(nginx), plain(full()), 'the first full pass')

  const steps: [string, string[], () => void][] = [
    ['a container up', ['b'], () => rows.containers.push({ container: 'x2', app: 'b', type: 'web', host: '127.0.0.1', port: 30002, state: 'up', release: 1 })],
    // c claims a domain b has: b keeps it (first by name); then b drops it: c gets it.
    ['a domain claimed twice', ['c'], () => rows.domains.push({ domain: 'shared.example.test', app: 'c' })],
    [
      'the first claim removed',
      ['b'],
      () =>
        rows.domains.splice(
          rows.domains.findIndex((d) => d.app === 'b'),
          1,
        ),
    ],
    ['a custom domain that is a platform host name to be', ['c'], () => rows.domains.push({ domain: `d.${DOMAIN}`, app: 'c' })],
    ['that app created', ['d'], () => rows.apps.push({ name: 'd' })],
    [
      'one certificate pair for two apps',
      ['a', 'c'],
      () =>
        rows.certs.push(
          { domain: 'www.a.example.test', app: 'a', name: 'one', ...PEM(1), notAfter: '2031-01-01T00:00:00.000Z' },
          { domain: 'shared.example.test', app: 'c', name: 'same', ...PEM(1), notAfter: '2031-01-01T00:00:00.000Z' },
        ),
    ],
    ['maintenance', ['a'], () => rows.maintenance.push({ app: 'a' })],
    ['one user of the pair detached', ['a'], () => rows.certs.splice(0, 1)],
    ['container stopping, the only one', ['b'], () => (rows.containers[1]!.state = 'stopping')],
    ['a third claim on it', ['d'], () => rows.domains.push({ domain: 'shared.example.test', app: 'd' })],
    [
      'the app that has it destroyed: it goes to the next claimant',
      ['c'],
      () =>
        rows.apps.splice(
          rows.apps.findIndex((a) => a.name === 'c'),
          1,
        ),
    ],
  ]
  for (const [what, apps, change] of steps) {
    const before = full()
    change()
    const only = (r: RouteRows): RouteRows => ({
      apps: r.apps.filter((x) => apps.includes(x.name)),
      domains: r.domains.filter((x) => apps.includes(x.app)),
      containers: r.containers.filter((x) => apps.includes(x.app)),
      maintenance: r.maintenance.filter((x) => apps.includes(x.app)),
      releases: r.releases.filter((x) => apps.includes(x.app)),
      certs: r.certs.filter((x) => apps.includes(x.app)),
    })
    const covered = index.replace(apps, only(rows), DOMAIN)
    const { byApp } = contributions(index.table(covered, opts))
    const next = new Map<string, AppContribution | undefined>(byApp)
    for (const app of covered) if (!next.has(app)) next.set(app, undefined)
    const cs = contents.changes(next)
    contents.commit(next)
    nginx = apply(nginx, cs)
    const want = full()
    t.same(plain(nginx), plain(want), `${what}: the same dict`)
    t.same(plain(contents.state()), plain(want), `${what}: the router knows what nginx holds`)
    t.same(plain(apply(before, diff(before, want))), plain(want), `${what}: (the full diff agrees)`)
  }
  // A container's change straight from its event, ahead of the read model: a later read of the app's
  // other rows (its read model behind) keeps it.
  const applied = index.applyContainer({ kind: 'started', app: 'd', type: 'web', container: 'x9', host: '127.0.0.1', port: 30009, release: 2 })
  t.ok(applied, 'applied to a live app')
  t.notOk(
    index.applyContainer({ kind: 'started', app: 'gone', type: 'web', container: 'x8', host: '127.0.0.1', port: 1, release: 1 }),
    'not to an app it does not have',
  )
  const lagging: RouteRows = {
    apps: [{ name: 'd' }],
    domains: rows.domains.filter((x) => x.app === 'd'),
    containers: [],
    maintenance: [],
    releases: [],
    certs: [],
  }
  const covered = index.replace(['d'], lagging, DOMAIN, true)
  const { byApp } = contributions(index.table(covered, opts))
  const next = new Map<string, AppContribution | undefined>(byApp)
  contents.changes(next)
  contents.commit(next)
  rows.containers.push({ container: 'x9', app: 'd', type: 'web', host: '127.0.0.1', port: 30009, state: 'up', release: 2 })
  t.same(contents.state().apps.get('d'), full().apps.get('d'), 'the container changed from its event is kept over a lagging read')
  index.applyContainer({ kind: 'stopping', app: 'd', container: 'x9' })
  t.equal(index.rows(['d']).containers[0]?.state, 'stopping', 'stopping: draining')
  index.applyContainer({ kind: 'stopped', app: 'd', container: 'x9' })
  t.same(index.rows(['d']).containers, [], 'stopped: gone')
  t.equal(nginx.hosts.get('shared.example.test'), 'd', 'the domain went to the remaining claimant')
  t.equal(nginx.certs.size, 0, 'a certificate no route serves is gone')
})

t.test('a custom domain changed straight from its event gives the routes the read models would', async (t) => {
  // The rows as the domains and certs read models keep them, changed the way their projections do.
  const rows: Mutable = {
    apps: [{ name: 'a' }, { name: 'b' }],
    domains: [{ domain: 'www.a.example.test', app: 'a' }],
    containers: [],
    maintenance: [],
    releases: [],
    certs: [{ domain: 'www.a.example.test', app: 'a', name: 'c1', ...PEM(1), notAfter: '2031-01-01T00:00:00.000Z' }],
  }
  const index = new RowIndex()
  index.replace(undefined, rows, DOMAIN)
  const project = (kind: 'domain-added' | 'domain-removed', app: string, domain: string) => {
    // domains: upsert (a domain belongs to one app) or delete; certs: a removed domain's attachments go.
    rows.domains = rows.domains.filter((d) => d.domain !== domain)
    if (kind === 'domain-added') rows.domains.push({ domain, app })
    else rows.certs = rows.certs.filter((c) => !(c.domain === domain && c.app === app))
  }
  const steps: [string, 'domain-added' | 'domain-removed', string, string, string[]][] = [
    ['added to b', 'domain-added', 'b', 'shop.example.test', ['b']],
    ['the same domain added to a (taken from b)', 'domain-added', 'a', 'shop.example.test', ['a', 'b']],
    ['removed from a, with its certificate', 'domain-removed', 'a', 'www.a.example.test', ['a']],
    ['an app platform host name as a custom domain', 'domain-added', 'b', `a.${DOMAIN}`, ['b']],
  ]
  for (const [what, kind, app, domain, touched] of steps) {
    const got = index.applyDomain({ kind, app, domain })
    project(kind, app, domain)
    t.same(got?.sort(), touched, `${what}: the apps whose routes may change`)
    t.same(index.table(undefined, opts), routeTable(rows, opts), `${what}: the same routes as read anew`)
  }
  t.equal(index.applyDomain({ kind: 'domain-added', app: 'gone', domain: 'x.example.test' }), undefined, 'not to an app it does not have')

  // A read of b whose domains read model is behind keeps the domains changed from their events...
  const lagging: RouteRows = { apps: [{ name: 'b' }], domains: [], containers: [], maintenance: [], releases: [], certs: [] }
  index.replace(['b'], lagging, DOMAIN, true)
  t.same(index.rows(['b']).domains, [{ domain: `a.${DOMAIN}`, app: 'b' }], 'kept over a lagging read')
  // ...but not for an app created anew (a new incarnation has none of the old one's domains).
  index.replace(['b'], lagging, DOMAIN, true, new Set(['b']))
  t.same(index.rows(['b']).domains, [], 'an app created anew: what was read')
})
