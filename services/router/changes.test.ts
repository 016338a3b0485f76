import t from 'tap'
import { diff, dictState, fullSet, isEmpty, peerOf, PROBE_HOST, sizeBytes } from './changes.js'
import type { Route, RouteTable, TableCert } from './model.js'

const route = (over: Partial<Route> = {}): Route => ({
  app: 'shop',
  hosts: ['shop.wharf.localhost', 'shop.example.com'],
  servers: [
    { host: '127.0.0.1', port: 32000 },
    { host: '10.1.2.3', port: 32001 },
  ],
  maintenance: false,
  maxBodySize: '10m',
  timeoutS: 120,
  ...over,
})
const table = (routes: Route[], certs: TableCert[] = []): RouteTable => ({ routes, certs, dropped: [] })

t.test('an app: its hosts point at it; state, body limit in bytes, timeout and address:port peers', async (t) => {
  const { state, dropped } = dictState(table([route()]))
  t.same(dropped, [])
  t.same(Object.fromEntries(state.hosts), { 'shop.wharf.localhost': 'shop', 'shop.example.com': 'shop' })
  t.same(state.apps.get('shop'), { s: 'up', b: 10 * 1024 * 1024, t: 120, p: ['127.0.0.1:32000', '10.1.2.3:32001'] }, 'peers on any host, not only 127.0.0.1')
})

t.test('no servers: idle; maintenance wins over servers', async (t) => {
  const { state } = dictState(table([route({ servers: [] }), route({ app: 'down', hosts: ['down.wharf.localhost'], maintenance: true })]))
  t.equal(state.apps.get('shop')?.s, 'idle')
  t.equal(state.apps.get('down')?.s, 'maintenance')
})

t.test('bad input is left out with a reason: unsafe names, reserved hosts, peers that are not addresses', async (t) => {
  const { state, dropped } = dictState(
    table([
      route({ app: 'Bad;App', hosts: ['x.example.com'] }),
      route({
        hosts: ['shop.wharf.localhost', 'wharf.wharf.localhost', PROBE_HOST, 'evil.com;\n'],
        servers: [
          { host: 'localhost', port: 80 },
          { host: '127.0.0.1', port: 70000 },
          { host: '127.0.0.1', port: 32000 },
        ],
      }),
    ]),
    { reserved: ['wharf.wharf.localhost'] },
  )
  t.same([...state.apps.keys()], ['shop'])
  t.same([...state.hosts.keys()], ['shop.wharf.localhost'], 'the controller and probe hosts stay nginx own')
  t.same(state.apps.get('shop')?.p, ['127.0.0.1:32000'])
  t.match(
    dropped.map((d) => d.reason),
    [
      'name not safe for nginx',
      'reserved for the platform',
      'reserved for the platform',
      'not a valid host name',
      'not an IP address and port',
      'not an IP address and port',
    ],
  )
  const none = dictState(table([route({ servers: [{ host: 'nope', port: 1 }] })])).state
  t.equal(none.apps.get('shop')?.s, 'idle', 'no usable peer: idle (503), not a 502')
})

t.test('sizes and peers', async (t) => {
  t.equal(sizeBytes('0'), 0)
  t.equal(sizeBytes('512k'), 512 * 1024)
  t.equal(sizeBytes('1g'), 1024 ** 3)
  t.equal(sizeBytes('10x'), undefined)
  t.equal(peerOf({ host: '::1', port: 80 }), '[::1]:80')
  t.equal(peerOf({ host: '1.2.3.4', port: 0 }), undefined)
})

t.test('certificates: by id, served for the hosts routed to their app; one that does not parse is left out', async (t) => {
  const cert = (id: string, domains: string[]): TableCert => ({ app: 'shop', name: id, domains, certificate: 'C', key: 'K', id })
  const { state, dropped } = dictState(
    table([route()], [cert('00000000000000aa', ['shop.example.com', 'other.example.com']), cert('00000000000000bb', ['shop.example.com'])]),
    {
      certOk: (id) => id !== '00000000000000bb',
    },
  )
  t.same(Object.fromEntries(state.sni), { 'shop.example.com': '00000000000000aa' })
  t.same([...state.certs.keys()], ['00000000000000aa'])
  t.match(dropped, [{ what: 'certificate 00000000000000bb', reason: /does not parse/ }])
})

t.test('change sets: the full table, then only what changed, null for what went', async (t) => {
  const a = dictState(table([route(), route({ app: 'blog', hosts: ['blog.wharf.localhost'] })])).state
  const full = fullSet(a, 'e1')
  t.equal(full.full, true)
  t.equal(full.epoch, 'e1')
  t.same(Object.keys(full.apps ?? {}), ['shop', 'blog'])
  t.ok(isEmpty(diff(a, a)), 'nothing changed: nothing to post')
  const b = dictState(table([route({ servers: [{ host: '127.0.0.1', port: 32002 }], hosts: ['shop.wharf.localhost', 'new.example.com'] })])).state
  t.same(diff(a, b), {
    apps: { shop: { s: 'up', b: 10 * 1024 * 1024, t: 120, p: ['127.0.0.1:32002'] }, blog: null },
    hosts: { 'new.example.com': 'shop', 'shop.example.com': null, 'blog.wharf.localhost': null },
  })
})
