import t from 'tap'
import { routeTable, servedChanges, servedSets, type RouteRows } from './model.js'

const rows = (over: Partial<RouteRows> = {}): RouteRows => ({
  apps: [{ name: 'shop' }, { name: 'blog' }],
  domains: [
    { domain: 'shop.example.com', app: 'shop' },
    { domain: 'www.shop.example.com', app: 'shop' },
    { domain: 'gone.example.com', app: 'old' },
  ],
  containers: [
    { container: 'c1', app: 'shop', type: 'web', host: '127.0.0.1', port: 32001, state: 'up' },
    { container: 'c2', app: 'shop', type: 'web', host: '127.0.0.1', port: 32000, state: 'up' },
    { container: 'c3', app: 'shop', type: 'web', host: '127.0.0.1', port: 32002, state: 'stopping' },
    { container: 'c4', app: 'shop', type: 'web', host: '127.0.0.1', port: 32003, state: 'crashed' },
    { container: 'c5', app: 'shop', type: 'worker', host: '127.0.0.1', port: null, state: 'up' },
    { container: 'c6', app: 'old', type: 'web', host: '127.0.0.1', port: 32009, state: 'up' },
  ],
  maintenance: [],
  releases: [{ app: 'shop', config: { WHARF_MAX_BODY_SIZE: '10M', WHARF_PROXY_TIMEOUT: '120' } }],
  certs: [],
  ...over,
})
const NOW = Date.parse('2030-01-01T00:00:00Z')

t.test('given live apps, when the table is built, then each has its hosts and up web containers', async (t) => {
  const { routes, dropped } = routeTable(rows(), { domain: 'wharf.localhost', now: NOW })
  t.same(
    routes.map((r) => r.app),
    ['blog', 'shop'],
    'live apps only, sorted (old is destroyed)',
  )
  const shop = routes.find((r) => r.app === 'shop')!
  t.same(shop.hosts, ['shop.wharf.localhost', 'shop.example.com', 'www.shop.example.com'])
  t.same(
    shop.servers,
    [
      { host: '127.0.0.1', port: 32000 },
      { host: '127.0.0.1', port: 32001 },
    ],
    'up web containers only: not stopping, crashed or worker',
  )
  t.equal(shop.maxBodySize, '10m')
  t.equal(shop.timeoutS, 120)
  const blog = routes.find((r) => r.app === 'blog')!
  t.same(blog.servers, [], 'no container: no server')
  t.equal(blog.maxBodySize, '1m', 'defaults without a release')
  t.equal(blog.timeoutS, 60)
  t.same(dropped, [])
})

t.test('given an app whose web containers are all stopping, then they serve (draining) until one is up', async (t) => {
  const draining = rows({
    containers: [
      { container: 'c3', app: 'shop', type: 'web', host: '127.0.0.1', port: 32002, state: 'stopping', release: 3 },
      { container: 'c4', app: 'shop', type: 'web', host: '127.0.0.1', port: 32003, state: 'crashed', release: 3 },
    ],
  })
  const table = routeTable(draining, { domain: 'wharf.localhost', now: NOW })
  t.same(table.routes.find((r) => r.app === 'shop')!.servers, [{ host: '127.0.0.1', port: 32002 }], 'the stopping one, not the crashed one')
  t.same(servedSets(draining, table).get('shop'), [{ container: 'c3', release: 3, host: '127.0.0.1', port: 32002 }], 'recorded as served')
  const withNew = rows({
    containers: [...draining.containers, { container: 'c7', app: 'shop', type: 'web', host: '127.0.0.1', port: 32007, state: 'up', release: 4 }],
  })
  t.same(
    routeTable(withNew, { domain: 'wharf.localhost', now: NOW }).routes.find((r) => r.app === 'shop')!.servers,
    [{ host: '127.0.0.1', port: 32007 }],
    'one up: only it',
  )
})

t.test('given maintenance, the route says so', async (t) => {
  const { routes } = routeTable(rows({ maintenance: [{ app: 'blog' }] }), { domain: 'wharf.localhost', now: NOW })
  t.same(
    routes.map((r) => [r.app, r.maintenance]),
    [
      ['blog', true],
      ['shop', false],
    ],
  )
})

t.test('given bad limits, the defaults are used and the value is reported', async (t) => {
  const { routes, dropped } = routeTable(rows({ releases: [{ app: 'shop', config: { WHARF_MAX_BODY_SIZE: '1m; evil', WHARF_PROXY_TIMEOUT: '99999' } }] }), {
    domain: 'd.test',
    now: NOW,
  })
  const shop = routes.find((r) => r.app === 'shop')!
  t.equal(shop.maxBodySize, '1m')
  t.equal(shop.timeoutS, 60)
  t.equal(dropped.length, 2)
})

t.test('given a custom domain equal to another app host, the platform host wins', async (t) => {
  const { routes, dropped } = routeTable(rows({ domains: [{ domain: 'blog.wharf.localhost', app: 'shop' }] }), { domain: 'wharf.localhost', now: NOW })
  t.same(routes.find((r) => r.app === 'shop')!.hosts, ['shop.wharf.localhost'])
  t.match(dropped, [{ app: 'shop', what: 'domain blog.wharf.localhost' }])
})

t.test('given a web container without a port, it is left out and reported', async (t) => {
  const { routes, dropped } = routeTable(rows({ containers: [{ container: 'abc', app: 'blog', type: 'web', host: '127.0.0.1', port: null, state: 'up' }] }), {
    domain: 'd.test',
    now: NOW,
  })
  t.same(routes.find((r) => r.app === 'blog')!.servers, [])
  t.match(dropped, [{ app: 'blog', reason: /without a port/ }])
})

t.test('given attached certificates, when the table is built, then live routed host names of unexpired ones are served', async (t) => {
  const pem = { certificate: 'CHAIN-A', key: 'KEY-A', notAfter: '2031-01-01T00:00:00.000Z' }
  const { certs, dropped } = routeTable(
    rows({
      domains: [...rows().domains, { domain: 'old.shop.example.com', app: 'shop' }],
      certs: [
        { domain: 'www.shop.example.com', app: 'shop', name: 'wild', ...pem },
        { domain: 'shop.example.com', app: 'shop', name: 'wild', ...pem },
        { domain: 'old.shop.example.com', app: 'shop', name: 'old', certificate: 'B', key: 'B', notAfter: '2029-12-31T23:59:59.000Z' },
        { domain: 'gone.example.com', app: 'old', name: 'x', ...pem },
        { domain: 'elsewhere.example.com', app: 'shop', name: 'wild', ...pem },
      ],
    }),
    { domain: 'wharf.localhost', now: NOW },
  )
  t.equal(certs.length, 1, 'one certificate: the expired one and the destroyed app are left out')
  t.match(certs[0], { app: 'shop', name: 'wild', domains: ['shop.example.com', 'www.shop.example.com'], certificate: 'CHAIN-A', key: 'KEY-A' })
  t.match(certs[0]!.id, /^[0-9a-f]{16}$/)
  t.match(dropped, [
    { app: 'shop', what: 'certificate old for old.shop.example.com', reason: 'expired on 2029-12-31T23:59:59.000Z' },
    { app: 'shop', what: 'certificate wild for elsewhere.example.com', reason: 'the host name is not routed to the app' },
  ])
  const other = routeTable(rows({ certs: [{ domain: 'shop.example.com', app: 'shop', name: 'wild', ...pem, key: 'KEY-B' }] }), {
    domain: 'wharf.localhost',
    now: NOW,
  })
  t.not(other.certs[0]!.id, certs[0]!.id, 'another key: another id (and so another config text)')
})

t.test("served sets: the containers behind each route, with their release; a change is recorded only when an app's set differs", async (t) => {
  const r = rows({
    containers: [
      { container: 'c1', app: 'shop', type: 'web', host: '127.0.0.1', port: 32001, state: 'up', release: 3 },
      { container: 'c2', app: 'shop', type: 'web', host: '127.0.0.1', port: 32000, state: 'up', release: 4 },
      { container: 'c3', app: 'shop', type: 'web', host: '127.0.0.1', port: 32002, state: 'stopping', release: 3 },
      { container: 'c6', app: 'old', type: 'web', host: '127.0.0.1', port: 32009, state: 'up', release: 1 },
    ],
  })
  const served = servedSets(r, routeTable(r, { domain: 'wharf.localhost', now: NOW }))
  t.same(Object.fromEntries(served), {
    blog: [],
    shop: [
      { container: 'c1', release: 3, host: '127.0.0.1', port: 32001 },
      { container: 'c2', release: 4, host: '127.0.0.1', port: 32000 },
    ],
  })
  t.same(servedChanges(new Map(), served), [{ app: 'shop', servers: served.get('shop') }], 'an app never recorded served nothing: blog is not recorded')
  t.same(servedChanges(served, served), [], 'nothing changed: nothing recorded')
  const gone = new Map([['blog', []]])
  t.same(servedChanges(served, gone), [], 'a destroyed app (shop) is not recorded')
  const scaled = new Map([...served, ['shop', [served.get('shop')![1]!]]])
  t.same(servedChanges(served, scaled), [{ app: 'shop', servers: [{ container: 'c2', release: 4, host: '127.0.0.1', port: 32000 }] }])
})

t.test('WHARF_MAX_BODY_SIZE: 0 or above the cap gets the cap; below it stays', (t) => {
  const table = (size: string) =>
    routeTable(rows({ releases: [{ app: 'shop', config: { WHARF_MAX_BODY_SIZE: size } }] }), {
      domain: 'wharf.localhost',
      now: NOW,
      maxBodySizeCap: '100m',
    }).routes.find((r) => r.app === 'shop')!.maxBodySize
  t.equal(table('0'), '100m', '0 is no longer unbounded')
  t.equal(table('2g'), '100m')
  t.equal(table('200000k'), '100m')
  t.equal(table('10m'), '10m')
  t.equal(table('100m'), '100m')
  t.end()
})
