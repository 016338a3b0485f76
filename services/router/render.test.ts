import t from 'tap'
import type { Route, RouteTable } from './model.js'
import { renderRoutes, upstreamName } from './render.js'

const route = (over: Partial<Route> = {}): Route => ({
  app: 'shop',
  hosts: ['shop.wharf.localhost', 'shop.example.com'],
  servers: [
    { host: '127.0.0.1', port: 32000 },
    { host: '127.0.0.1', port: 32001 },
  ],
  maintenance: false,
  maxBodySize: '10m',
  timeoutS: 120,
  ...over,
})
const table = (...routes: Route[]): RouteTable => ({ routes, certs: [], dropped: [] })
const listen = { host: '127.0.0.1', port: 8080 }

/** The lines of the block that starts with `head` (up to its closing brace at column 0). */
function block(text: string, head: string): string {
  const i = text.indexOf(head)
  if (i < 0) return ''
  return text.slice(i, text.indexOf('\n}', i) + 2)
}

t.test('an app with servers: its host names mapped to it, a keepalive upstream, and a server for its limits', async (t) => {
  const { text, dropped } = renderRoutes(table(route()), { listen })
  t.same(dropped, [])
  t.match(block(text, 'map $host $wharf_app {'), /\n {2}default "";\n {2}shop\.wharf\.localhost shop;\n {2}shop\.example\.com shop;\n\}/)
  t.match(block(text, 'map $wharf_app $wharf_state {'), /\n {2}default none;\n {2}shop up;\n\}/)
  const up = block(text, `upstream ${upstreamName('shop')} {`)
  t.equal(upstreamName('shop'), 'shop--wharf')
  t.match(up, /server 127\.0\.0\.1:32000 [^;]*;\n {2}server 127\.0\.0\.1:32001 [^;]*;/)
  t.match(up, /keepalive 32;/)
  const srv = block(text, 'server {\n  listen 127.0.0.1:8080;\n  server_name shop')
  t.match(srv, 'server_name shop.wharf.localhost shop.example.com;', 'limits of its own: a server naming its hosts')
  t.match(srv, 'client_max_body_size 10m;')
  t.match(srv, 'proxy_pass http://$wharf_app--wharf;')
  t.match(srv, 'proxy_http_version 1.1;')
  t.match(srv, 'proxy_set_header Connection $wharf_connection;')
  for (const h of [
    'X-Forwarded-For $proxy_add_x_forwarded_for',
    'X-Forwarded-Proto $scheme',
    'X-Forwarded-Host $host',
    'X-Forwarded-Port $server_port',
    'X-Request-Id $request_id',
  ])
    t.match(srv, `proxy_set_header ${h};`)
  t.match(srv, 'proxy_next_upstream error timeout http_502;')
  t.match(srv, /proxy_next_upstream_tries \d+;/)
  t.match(srv, 'proxy_read_timeout 120s;')
  t.match(srv, 'proxy_send_timeout 120s;')
  t.match(text, /map \$http_upgrade \$wharf_connection \{\n {2}default upgrade;\n {2}'' '';\n\}/)
  const catchAll = block(text, 'server {\n  listen 127.0.0.1:8080;\n  server_name ~^;')
  t.match(catchAll, 'client_max_body_size 1m;', 'the default limits take every other host')
  t.match(catchAll, 'proxy_read_timeout 60s;')
  t.match(catchAll, 'if ($wharf_state = none) { return 404 "no app answers at this host\\n"; }', 'an unknown host: 404')
})

t.test('apps with the default limits share the catch-all server; no servers or maintenance: no upstream, a plain 503', async (t) => {
  const limits = { maxBodySize: '1m', timeoutS: 60 }
  const { text } = renderRoutes(
    table(
      route({ app: 'idle', hosts: ['idle.wharf.localhost'], servers: [], ...limits }),
      route({ app: 'fix', hosts: ['fix.wharf.localhost'], maintenance: true, ...limits }),
      route({ app: 'b', hosts: ['b.wharf.localhost'], ...limits }),
    ),
    { listen },
  )
  t.match(block(text, 'map $wharf_app $wharf_state {'), /\n {2}idle idle;\n {2}fix maintenance;\n {2}b up;\n/)
  t.same(text.match(/^upstream \S+/gm), ['upstream b--wharf'], 'an upstream for the app that runs only')
  t.equal(text.match(/^ {2}listen 127\.0\.0\.1:8080;$/gm)?.length, 1, 'one server for the three')
  const srv = block(text, 'server {\n  listen 127.0.0.1:8080;\n  server_name ~^;')
  t.match(srv, 'if ($wharf_state = idle) { return 503 "$wharf_app has no web process running.\\n"; }')
  t.match(srv, 'if ($wharf_state = maintenance) { return 503 "$wharf_app is down for maintenance; try again later.\\n"; }')
  t.notMatch(text, /server_name [a-z]/, 'no server names the default apps')
})

t.test('names that could inject config are dropped, never written', async (t) => {
  const evil = [
    'evil.com; } server { listen 80',
    'a"b.example.com',
    'x.example.com{',
    'sp ace.example.com',
    'ｅvil.example.com',
    'EVIL.example.com',
    'xn--e-ufa.example.com\n',
    '$host.example.com',
    'nodot',
  ]
  const { text, dropped } = renderRoutes(table(route({ hosts: ['shop.wharf.localhost', ...evil] })), { listen })
  t.equal(dropped.length, evil.length, 'each bad host reported')
  for (const e of evil) t.notOk(text.includes(e), `not in the text: ${JSON.stringify(e)}`)
  t.match(text, 'server_name shop.wharf.localhost;')

  const bad = renderRoutes(
    table(
      route({ app: 'x;y' }),
      route({
        app: 'ok',
        hosts: ['ok.d.test'],
        servers: [
          { host: '127.0.0.1;', port: 1 },
          { host: '127.0.0.1', port: 70000 },
        ],
      }),
    ),
    { listen },
  )
  t.notOk(bad.text.includes('x;y'), 'an unsafe app name drops the route')
  t.notOk(bad.text.includes('127.0.0.1;'), 'an unsafe server is dropped')
  t.notOk(bad.text.includes('70000'))
  t.match(bad.text, /\n {2}ok idle;\n/, 'no valid server left: 503')
  t.equal(bad.dropped.length, 3)

  const limits = renderRoutes(table(route({ maxBodySize: '1m; evil', timeoutS: 1.5 })), { listen })
  t.notMatch(limits.text, /1m; evil|1\.5s/)
  t.match(limits.text, /server_name ~\^;\n {2}client_max_body_size 1m;/, 'bad limits: the defaults')
  t.throws(() => renderRoutes(table(), { listen: { host: '0.0.0.0 ; x', port: 80 } }))
})

t.test("the controller's block stays when a route holds its host; the route loses that name", async (t) => {
  const wharf = route({ app: 'wharf', hosts: ['wharf.wharf.localhost'] })
  const shop = route({ hosts: ['shop.wharf.localhost', 'wharf.wharf.localhost'] })
  const { text, dropped } = renderRoutes(table(wharf, shop), { listen, controller: { host: '127.0.0.1', port: 8000, domain: 'wharf.localhost' } })
  t.match(block(text, 'server {\n  listen 127.0.0.1:8080;\n  server_name wharf.wharf.localhost;'), 'proxy_pass http://127.0.0.1:8000;')
  t.notMatch(block(text, 'map $host $wharf_app {'), 'wharf.wharf.localhost', 'no route maps the host')
  t.match(block(text, 'map $host $wharf_app {'), 'shop.wharf.localhost shop;')
  t.match(dropped, [
    { app: 'wharf', what: 'host wharf.wharf.localhost' },
    { app: 'wharf', what: 'route' },
    { app: 'shop', what: 'host wharf.wharf.localhost' },
  ])
})

t.test('the probe, the controller and TLS blocks', async (t) => {
  const { text } = renderRoutes(table(route()), {
    listen,
    generation: 42,
    controller: { host: '127.0.0.1', port: 8000, domain: 'wharf.localhost' },
    tls: {
      port: 8443,
      certs: [
        { domains: ['shop.example.com'], certFile: '/w/certs/a.crt', keyFile: '/w/certs/a.key' },
        { domains: ['x.test'], certFile: '/bad path', keyFile: '/k' },
      ],
    },
  })
  t.match(block(text, 'server {\n  listen 127.0.0.1:8080;\n  server_name wharf-router-probe.invalid;'), 'return 200 "42\\n";')
  t.match(block(text, 'server {\n  listen 127.0.0.1:8080;\n  server_name wharf.wharf.localhost;'), 'proxy_pass http://127.0.0.1:8000;')
  const tls = block(text, 'server {\n  listen 127.0.0.1:8443 ssl;')
  t.match(tls, 'server_name shop.example.com;', 'only the names the certificate covers')
  t.match(tls, 'ssl_certificate /w/certs/a.crt;')
  t.notOk(text.includes('/bad path'))
})

t.test('deterministic', async (t) => {
  t.equal(
    renderRoutes(table(route(), route({ app: 'b', hosts: ['b.d.test'] })), { listen }).text,
    renderRoutes(table(route(), route({ app: 'b', hosts: ['b.d.test'] })), { listen }).text,
  )
})
