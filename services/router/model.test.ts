import t from 'tap'
import { routeTable, type RouteRows } from './model.js'

const rows = (over: Partial<RouteRows> = {}): RouteRows => ({
  apps: [{ name: 'shop' }, { name: 'blog' }],
  domains: [{ domain: 'shop.example.com', app: 'shop' }, { domain: 'www.shop.example.com', app: 'shop' }, { domain: 'gone.example.com', app: 'old' }],
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
  ...over,
})

t.test('given live apps, when the table is built, then each has its hosts and up web containers', async (t) => {
  const { routes, dropped } = routeTable(rows(), { domain: 'wharf.localhost' })
  t.same(routes.map((r) => r.app), ['blog', 'shop'], 'live apps only, sorted (old is destroyed)')
  const shop = routes.find((r) => r.app === 'shop')!
  t.same(shop.hosts, ['shop.wharf.localhost', 'shop.example.com', 'www.shop.example.com'])
  t.same(shop.servers, [{ host: '127.0.0.1', port: 32000 }, { host: '127.0.0.1', port: 32001 }], 'up web containers only: not stopping, crashed or worker')
  t.equal(shop.maxBodySize, '10m')
  t.equal(shop.timeoutS, 120)
  const blog = routes.find((r) => r.app === 'blog')!
  t.same(blog.servers, [], 'no container: no server')
  t.equal(blog.maxBodySize, '1m', 'defaults without a release')
  t.equal(blog.timeoutS, 60)
  t.same(dropped, [])
})

t.test('given maintenance, the route says so', async (t) => {
  const { routes } = routeTable(rows({ maintenance: [{ app: 'blog' }] }), { domain: 'wharf.localhost' })
  t.same(routes.map((r) => [r.app, r.maintenance]), [['blog', true], ['shop', false]])
})

t.test('given bad limits, the defaults are used and the value is reported', async (t) => {
  const { routes, dropped } = routeTable(rows({ releases: [{ app: 'shop', config: { WHARF_MAX_BODY_SIZE: '1m; evil', WHARF_PROXY_TIMEOUT: '99999' } }] }), { domain: 'd.test' })
  const shop = routes.find((r) => r.app === 'shop')!
  t.equal(shop.maxBodySize, '1m')
  t.equal(shop.timeoutS, 60)
  t.equal(dropped.length, 2)
})

t.test('given a custom domain equal to another app host, the platform host wins', async (t) => {
  const { routes, dropped } = routeTable(rows({ domains: [{ domain: 'blog.wharf.localhost', app: 'shop' }] }), { domain: 'wharf.localhost' })
  t.same(routes.find((r) => r.app === 'shop')!.hosts, ['shop.wharf.localhost'])
  t.match(dropped, [{ app: 'shop', what: 'domain blog.wharf.localhost' }])
})

t.test('given a web container without a port, it is left out and reported', async (t) => {
  const { routes, dropped } = routeTable(rows({ containers: [{ container: 'abc', app: 'blog', type: 'web', host: '127.0.0.1', port: null, state: 'up' }] }), { domain: 'd.test' })
  t.same(routes.find((r) => r.app === 'blog')!.servers, [])
  t.match(dropped, [{ app: 'blog', reason: /without a port/ }])
})
