/**
 * Route table -> nginx config text for `conf.d/wharf-routes.conf` (included in the `http` block of
 * the base config infra writes). Pure. Every name that reaches the text is checked again here
 * against a strict pattern and left out (reported in `dropped`) when it does not match, so nothing
 * from an event can break out of a directive, whatever the API let through.
 */
import { APP_NAME_RE, HOST_NAME_RE, ROUTER_PROBE_HOST } from '../../domain/index.js'
import { DEFAULT_MAX_BODY_SIZE, DEFAULT_PROXY_TIMEOUT_S, type Dropped, type Route, type RouteTable, type Server } from './model.js'

/** The routes file's name in conf.d/. */
export const ROUTES_FILE = 'wharf-routes.conf'
/** Host header of the server that answers the config generation (the router's "reload done" probe). */
export const PROBE_HOST = ROUTER_PROBE_HOST

const IPV4_RE = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/
const SIZE_RE = /^(0|[1-9][0-9]{0,8}[kmg]?)$/

/** A certificate the TLS server blocks use (files written by the certs side; see {@link renderTlsServers}). */
export interface TlsCert {
  /** Host names it serves (exact names, as attached with `certs:attach`). */
  domains: readonly string[]
  /** Absolute paths of the PEM files nginx reads. */
  certFile: string
  keyFile: string
}

export interface RenderOptions {
  /** Where the HTTP server blocks listen: `127.0.0.1:<router port>`. */
  listen: { host: string; port: number }
  /**
   * A number the probe server (`Host: wharf-router-probe.invalid`) answers, so the router can tell
   * when nginx serves this config; omitted: no probe server.
   */
  generation?: number
  /** `wharf.<domain>` proxied to the controller API; omitted: not routed. */
  controller?: { host: string; port: string | number; domain: string }
  /** HTTPS by SNI: the certificates and the TLS port; omitted or empty: no TLS server blocks. */
  tls?: { port: number; certs: readonly TlsCert[] }
  /** Upstream keepalive connections per worker, default 32. */
  keepalive?: number
}

export interface Rendered {
  text: string
  dropped: Dropped[]
}

/** What an app without a route answers, as the base config's default server does. */
const NO_APP = 'no app answers at this host'

/**
 * The nginx config of a route table. Deterministic: the same table and options give the same text.
 *
 * Host names go through two maps (`$host` -> `$wharf_app` -> `$wharf_state`) into one server block
 * per distinct pair of limits (body size, timeout), rather than a server block per app: nginx parses
 * a map line in a fraction of what a server block costs, and the parse is paid twice per change
 * (`nginx -t`, then the reload). The block with the default limits has a catch-all name, so a host no
 * map line names answers 404 there; blocks with other limits list their host names. Each app with
 * running containers has an upstream named {@link upstreamName}, reached as `proxy_pass
 * http://$wharf_app--wharf`.
 */
export function renderRoutes(table: RouteTable, opts: RenderOptions): Rendered {
  const dropped: Dropped[] = []
  const listen = `${checkIp(opts.listen.host)}:${checkPort(opts.listen.port)}`
  // The controller's host is the platform's whatever a route claims (an app named `wharf` from before
  // names were reserved, a custom domain): the route loses that name, the controller keeps its block.
  const apiHost = opts.controller && HOST_NAME_RE.test(`wharf.${opts.controller.domain}`) ? `wharf.${opts.controller.domain}` : undefined
  const routes = table.routes.flatMap((r) => checkRoute(withoutHost(r, apiHost, dropped), dropped))
  const hosts = routes.reduce((n, r) => n + r.hosts.length, 0)
  const out: string[] = [
    '# Written by the Wharf router on every change of routes; edits here are overwritten.',
    // Hash sizes for thousands of host names of up to 253 characters, found at the first size tried.
    `map_hash_bucket_size 512;`,
    `map_hash_max_size ${hashSize(hosts)};`,
    `server_names_hash_bucket_size 512;`,
    `server_names_hash_max_size ${hashSize(hosts)};`,
    '',
    '# Upgrade (WebSocket) when asked, otherwise an empty Connection header keeps upstream connections alive.',
    'map $http_upgrade $wharf_connection {',
    '  default upgrade;',
    "  '' '';",
    '}',
    '',
    '# Host name -> app.',
    'map $host $wharf_app {',
    '  default "";',
    ...routes.flatMap((r) => r.hosts.map((h) => `  ${h} ${r.app};`)),
    '}',
    '',
    '# App -> up (proxied), idle (no web container: 503), maintenance (503); none: no such host (404).',
    'map $wharf_app $wharf_state {',
    '  default none;',
    ...routes.map((r) => `  ${r.app} ${stateOf(r)};`),
    '}',
    '',
  ]
  for (const r of routes) {
    if (stateOf(r) !== 'up') continue
    out.push(`upstream ${upstreamName(r.app)} {`)
    for (const s of r.servers) out.push(`  server ${s.host}:${s.port} max_fails=1 fail_timeout=5s;`)
    out.push(`  keepalive ${opts.keepalive ?? 32};`, '  keepalive_timeout 30s;', '}', '')
  }
  // One server per pair of limits; the default pair's takes every host no other server names.
  const byLimits = new Map<string, Route[]>([[limitsKey(DEFAULT_LIMITS), []]])
  for (const r of routes) byLimits.set(limitsKey(r), [...(byLimits.get(limitsKey(r)) ?? []), r])
  for (const [key, group] of byLimits) {
    const isDefault = key === limitsKey(DEFAULT_LIMITS)
    if (!isDefault && group.length === 0) continue
    const names = isDefault ? ['~^'] : group.flatMap((r) => r.hosts)
    out.push('server {', `  listen ${listen};`, ...serverBody(names, group[0] ?? DEFAULT_LIMITS), '}', '')
  }
  if (opts.controller && apiHost) {
    const upstream = `${checkIp(opts.controller.host)}:${checkPort(Number(opts.controller.port))}`
    out.push(
      'server {',
      `  listen ${listen};`,
      `  server_name ${apiHost};`,
      '  client_max_body_size 100m;',
      '  location / {',
      `    proxy_pass http://${upstream};`,
      ...proxyHeaders('    '),
      '    proxy_read_timeout 300s;',
      '  }',
      '}',
      '',
    )
  }
  if (opts.tls && opts.tls.certs.length > 0) out.push(renderTlsServers(routes, opts.tls.certs, { host: opts.listen.host, port: opts.tls.port }, dropped))
  if (opts.generation !== undefined) {
    out.push(
      'server {',
      `  listen ${listen};`,
      `  server_name ${PROBE_HOST};`,
      '  location / {',
      `    return 200 "${Math.trunc(opts.generation)}\\n";`,
      '  }',
      '}',
      '',
    )
  }
  return { text: out.join('\n'), dropped }
}

/** A hash size that holds `n` names with room to spare (nginx tries sizes up to it). */
function hashSize(n: number): number {
  return Math.max(1024, 2 ** Math.ceil(Math.log2(n * 2 + 1)))
}

type Limits = Pick<Route, 'maxBodySize' | 'timeoutS'>
const DEFAULT_LIMITS: Limits = { maxBodySize: DEFAULT_MAX_BODY_SIZE, timeoutS: DEFAULT_PROXY_TIMEOUT_S }
const limitsKey = (l: Limits) => `${l.maxBodySize} ${l.timeoutS}`

function stateOf(r: Route): 'up' | 'idle' | 'maintenance' {
  return r.maintenance ? 'maintenance' : r.servers.length === 0 ? 'idle' : 'up'
}

/**
 * The TLS hook: HTTPS server blocks, one per certificate and app, for the app's host names the
 * certificate covers (`listen <host>:<tls port> ssl`, selected by SNI). The certs side supplies the
 * list (from its read model) through `RenderOptions.tls`; names and paths are checked here like
 * every other name.
 */
export function renderTlsServers(routes: readonly Route[], certs: readonly TlsCert[], listen: { host: string; port: number }, dropped: Dropped[]): string {
  const out: string[] = []
  const at = `${checkIp(listen.host)}:${checkPort(listen.port)} ssl`
  for (const cert of certs) {
    if (!PATH_RE.test(cert.certFile) || !PATH_RE.test(cert.keyFile)) {
      dropped.push({ app: '-', what: `certificate ${JSON.stringify(cert.certFile.slice(0, 80))}`, reason: 'file path not safe for nginx config' })
      continue
    }
    const names = new Set(cert.domains.filter((d) => HOST_NAME_RE.test(d)))
    for (const r of routes) {
      const hosts = r.hosts.filter((h) => names.has(h))
      if (hosts.length === 0) continue
      out.push('server {', `  listen ${at};`, `  ssl_certificate ${cert.certFile};`, `  ssl_certificate_key ${cert.keyFile};`, ...serverBody(hosts, r), '}', '')
    }
  }
  return out.join('\n')
}

const PATH_RE = /^\/[A-Za-z0-9._/-]{1,1024}$/

/** `server_name`, limits and the one location (HTTP and HTTPS alike): what to do is read from the maps. */
function serverBody(names: readonly string[], limits: Limits): string[] {
  return [
    `  server_name ${names.join(' ')};`,
    `  client_max_body_size ${limits.maxBodySize};`,
    '  location / {',
    `    if ($wharf_state = none) { return 404 "${NO_APP}\\n"; }`,
    '    if ($wharf_state = maintenance) { return 503 "$wharf_app is down for maintenance; try again later.\\n"; }',
    '    if ($wharf_state = idle) { return 503 "$wharf_app has no web process running.\\n"; }',
    `    proxy_pass http://$wharf_app${UPSTREAM_SUFFIX};`,
    ...proxyHeaders('    '),
    // A container that just went away (drained, crashed) refuses or resets: the next one gets the request.
    '    proxy_next_upstream error timeout http_502;',
    '    proxy_next_upstream_tries 3;',
    '    proxy_next_upstream_timeout 10s;',
    '    proxy_connect_timeout 2s;',
    `    proxy_send_timeout ${limits.timeoutS}s;`,
    `    proxy_read_timeout ${limits.timeoutS}s;`,
    '  }',
  ]
}

function proxyHeaders(indent: string): string[] {
  return [
    'proxy_http_version 1.1;',
    'proxy_set_header Connection $wharf_connection;',
    'proxy_set_header Upgrade $http_upgrade;',
    'proxy_set_header Host $host;',
    'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    'proxy_set_header X-Forwarded-Proto $scheme;',
    'proxy_set_header X-Forwarded-Host $host;',
    'proxy_set_header X-Forwarded-Port $server_port;',
    'proxy_set_header X-Request-Id $request_id;',
  ].map((l) => indent + l)
}

/** Appended to an app's name to name its upstream: app names never hold `--`, so no app's name is another's upstream. */
const UPSTREAM_SUFFIX = '--wharf'

/**
 * The upstream of an app (app names are `[a-z0-9-]`, checked before). The app name comes first: nginx
 * finds an upstream by comparing its name with every other one of the same length, and a name that
 * differs early is cheap to pass over.
 */
export function upstreamName(app: string): string {
  return `${app}${UPSTREAM_SUFFIX}`
}

/** The route without `host` (the platform's own), reported as dropped when it had it. */
function withoutHost(r: Route, host: string | undefined, dropped: Dropped[]): Route {
  if (host === undefined || !r.hosts.includes(host)) return r
  dropped.push({ app: r.app, what: `host ${host}`, reason: "the controller's host is the platform's" })
  return { ...r, hosts: r.hosts.filter((h) => h !== host) }
}

/** The route with every unsafe name left out; no route at all when the app name itself is unsafe. */
function checkRoute(r: Route, dropped: Dropped[]): Route[] {
  if (!APP_NAME_RE.test(r.app) || r.app.length > 63) {
    dropped.push({ app: JSON.stringify(r.app.slice(0, 64)), what: 'app', reason: 'name not safe for nginx config' })
    return []
  }
  const hosts = r.hosts.filter((h) => {
    if (HOST_NAME_RE.test(h)) return true
    dropped.push({ app: r.app, what: `host ${JSON.stringify(h.slice(0, 300))}`, reason: 'not a valid host name' })
    return false
  })
  if (hosts.length === 0) {
    dropped.push({ app: r.app, what: 'route', reason: 'no valid host name' })
    return []
  }
  const servers = r.servers.filter((s: Server) => {
    if (IPV4_RE.test(s.host) && Number.isInteger(s.port) && s.port >= 1 && s.port <= 65535) return true
    dropped.push({ app: r.app, what: `server ${JSON.stringify(`${s.host}:${s.port}`.slice(0, 80))}`, reason: 'not an IPv4 address and port' })
    return false
  })
  const maxBodySize = SIZE_RE.test(r.maxBodySize) ? r.maxBodySize : DEFAULT_MAX_BODY_SIZE
  const timeoutS = Number.isInteger(r.timeoutS) && r.timeoutS >= 1 && r.timeoutS <= 3600 ? r.timeoutS : DEFAULT_PROXY_TIMEOUT_S
  return [{ ...r, hosts, servers, maxBodySize, timeoutS }]
}

function checkIp(host: string): string {
  if (!IPV4_RE.test(host)) throw new Error(`router: listen/upstream address must be IPv4, got ${JSON.stringify(host)}`)
  return host
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`router: not a port: ${JSON.stringify(port)}`)
  return port
}
