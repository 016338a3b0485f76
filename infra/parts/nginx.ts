import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { answers, daemonPart } from '../daemon.js'
import type { InfraContext } from '../part.js'
import { execFileP, livePid, portOpen } from '../proc.js'
import { CONNECT_S, ROUTER_LUA } from './nginx-lua.js'

/** Debian's nginx package creates www-data; workers run as it, the master as root. */
const WORKER_USER = 'www-data'

/** Host name of the probe server: answers 200 whatever the routes (infra's and the router's health check). */
export const PROBE_HOST = 'wharf-router-probe.invalid'

/**
 * The headers the router sends each request upstream (bench:router's second baseline sends the
 * same), with the request id from `requestId`: nginx's `$request_id` (OpenSSL's RAND_bytes a request),
 * or for the apps `$wharf_request_id`, made by the route's Lua (same format, far fewer instructions).
 */
export const routerHeaders = (requestId = '$request_id') => `proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_set_header X-Request-Id ${requestId};`
export const ROUTER_HEADERS = routerHeaders()

const proxy = (requestId?: string) => `proxy_http_version 1.1;
      proxy_set_header Connection $wharf_connection;
      ${routerHeaders(requestId)}`
const PROXY = proxy()

/** To the app's peers (the balancer reads `$wharf_app`); timeouts other than these are set per app by the balancer. */
const APP_PROXY = `proxy_pass http://wharf_apps;
      ${proxy('$wharf_request_id')}
      proxy_connect_timeout ${CONNECT_S}s;
      proxy_send_timeout 60s;
      proxy_read_timeout 60s;
      # A container that just went away (drained, crashed) refuses or resets: the next one gets the request.
      proxy_next_upstream error timeout http_502;
      proxy_next_upstream_tries 10;
      proxy_next_upstream_timeout 10s;`

/**
 * The catch-all location: Host -> app in Lua (`set_by_lua`: no coroutine per request), peers chosen
 * by the balancer through the one upstream. What is not proxied (unknown host 404, maintenance or no
 * web process 503, a body over the app's limit 413) is answered by `wharf.deny()`; a chunked body
 * under a limit is read and measured there, then proxied from `@wharf_measured`.
 */
const APP_LOCATION = `location / {
      set_by_lua $wharf_app 'return wharf.route()' $host $content_length $http_transfer_encoding;
      if ($wharf_app = "") {
        content_by_lua_block { wharf.deny() }
      }
      ${APP_PROXY}
    }

    location @wharf_measured {
      set_by_lua $wharf_app 'return wharf.measured()' $host;
      ${APP_PROXY}
    }

    # Never used: declares $wharf_request_id, which the route's Lua sets (a set where requests go would run for each).
    location @wharf_variables {
      set $wharf_request_id "";
    }`

/**
 * The nice value of nginx's workers (and of the router's process, services/router/service.ts): on a
 * host whose cores the apps, the builder and the platform share, the data plane and the change sets
 * it answers go first. Measured on 2 cores (`bench:router` part 2, 1,000 apps, three rounds each,
 * alternated): domain added -> routable p99 34-40 ms at -5 against 59-109 ms at 0, announced ->
 * routable p99 42-63 against 51-140 ms. Their CPU is small beside the apps'.
 */
export const WORKER_PRIORITY = -5

/**
 * The base configuration, the whole of nginx's config: the router changes routes through the admin
 * socket, with no reload (see nginx-lua.ts). The controller's host and the probe host are server
 * blocks of their own: an exact server name wins over the catch-all, whatever an app claims.
 */
export function baseConfig({ cfg, paths }: InfraContext): string {
  const t = paths.nginx.tmp
  const dir = paths.nginx.dir
  return `# Written by Wharf's infra on every start; routes live in the shared dict, changed by the router.
daemon off;
worker_processes auto;
worker_priority ${WORKER_PRIORITY};
pid ${paths.nginx.pid};
error_log ${paths.nginx.log} warn;
user ${WORKER_USER};
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;

events {
  worker_connections 4096;
}

http {
  access_log off;
  server_tokens off;
  client_body_temp_path ${join(t, 'body')};
  proxy_temp_path ${join(t, 'proxy')};
  fastcgi_temp_path ${join(t, 'fastcgi')};
  uwsgi_temp_path ${join(t, 'uwsgi')};
  scgi_temp_path ${join(t, 'scgi')};
  default_type text/plain;
  server_names_hash_bucket_size 256;

  lua_package_path "${join(dir, 'lua')}/?.lua;;";
  # Hosts, apps, peers, certificates: WHARF_ROUTER_DICT_MB. Survives a reload (HUP), not a restart.
  lua_shared_dict wharf_routes ${cfg.routerDictMb}m;
  # Peers that failed a try in the last 5 s (passive failover), by address:port.
  lua_shared_dict wharf_down 1m;
  init_by_lua_block { wharf = require "wharf_router" }

  # Upgrade (WebSocket) when asked, otherwise an empty Connection header keeps upstream connections alive.
  map $http_upgrade $wharf_connection {
    default upgrade;
    '' '';
  }

  upstream wharf_apps {
    server 0.0.0.1:1;
    balancer_by_lua_block { wharf.balance() }
    # After the balancer, or nginx drops it. Below Node's 5 s idle timeout: nginx closes first.
    keepalive 64;
    keepalive_timeout 4s;
  }

  # deferred: a connection is accepted once its request has arrived, and so is read at once. A
  # worker that a reload retires closes the connections it accepted but has not read yet: without
  # it a client connecting during a reload could see its new connection closed unanswered.
  server {
    listen 127.0.0.1:${cfg.ports.router} default_server deferred;
    server_name _;
    # Per app in Lua (WHARF_MAX_BODY_SIZE); nginx's own cap is off.
    client_max_body_size 0;
    ${APP_LOCATION}
  }

  # HTTPS: the certificate is chosen by SNI from the dict; an unknown name is refused in the handshake.
  # The fallback pair is never served (the Lua hook replaces or refuses it); nginx needs one.
  server {
    listen 127.0.0.1:${cfg.ports.routerTls} ssl default_server deferred;
    server_name _;
    ssl_certificate ${join(dir, 'fallback.crt')};
    ssl_certificate_key ${join(dir, 'fallback.key')};
    ssl_certificate_by_lua_block { wharf.certificate() }
    client_max_body_size 0;
    ${APP_LOCATION}
  }

  server {
    listen 127.0.0.1:${cfg.ports.router};
    server_name wharf.${cfg.domain};
    client_max_body_size 100m;
    location / {
      proxy_pass http://127.0.0.1:${cfg.ports.controller};
      ${PROXY}
      proxy_read_timeout 300s;
    }
  }

  server {
    listen 127.0.0.1:${cfg.ports.router};
    server_name ${PROBE_HOST};
    location / {
      return 200 "ok\\n";
    }
  }

  # The router's admin server: change sets in, "live in every worker" out. A full set of 10,000
  # apps is a few MB: it must fit in memory.
  server {
    listen unix:${paths.nginx.admin};
    client_max_body_size 256m;
    client_body_buffer_size 256m;
    location / {
      content_by_lua_block { wharf.admin() }
    }
  }
}
`
}

/** Writes the Lua module and, once, the fallback TLS pair (self-signed, never served). */
async function writeFiles({ paths }: InfraContext): Promise<void> {
  const dir = paths.nginx.dir
  mkdirSync(join(dir, 'lua'), { recursive: true })
  writeFileSync(join(dir, 'lua', 'wharf_router.lua'), ROUTER_LUA)
  if (!existsSync(join(dir, 'fallback.key'))) {
    await execFileP('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/CN=wharf-fallback.invalid',
      '-days',
      '36500',
      '-keyout',
      join(dir, 'fallback.key'),
      '-out',
      join(dir, 'fallback.crt'),
    ])
  }
}

async function version(): Promise<string | undefined> {
  const { stderr } = await execFileP('nginx', ['-v'])
  return stderr.match(/nginx\/(\S+)/)?.[1]
}

/** nginx with its own config dir under $WHARF_HOME/nginx, on 127.0.0.1:<router port>. */
export const nginx = daemonPart({
  // Workers of a master killed with -9 keep serving and keep the ports: stopped before a restart.
  orphanedWorkers: true,
  name: 'nginx',
  address: ({ cfg }) => `http://127.0.0.1:${cfg.ports.router}, https://127.0.0.1:${cfg.ports.routerTls}`,
  pidfile: ({ paths }) => paths.nginx.pid,
  log: ({ paths }) => paths.nginx.log,
  ports: ({ cfg }) => [
    { port: cfg.ports.router, env: 'WHARF_ROUTER_PORT' },
    { port: cfg.ports.routerTls, env: 'WHARF_ROUTER_TLS_PORT' },
  ],
  // The default server answers 404 for a host no app has.
  healthy: ({ cfg }) => answers(`http://127.0.0.1:${cfg.ports.router}/`, 200, { host: PROBE_HOST }),
  describe: async () => ({ version: await version() }),
  async prepare(ctx) {
    const { paths } = ctx
    const { stdout: uidOut } = await execFileP('id', ['-u', WORKER_USER])
    const { stdout: gidOut } = await execFileP('id', ['-g', WORKER_USER])
    for (const d of [paths.nginx.confd, paths.nginx.tmp, paths.logs]) mkdirSync(d, { recursive: true })
    for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
      const d = join(paths.nginx.tmp, sub)
      mkdirSync(d, { recursive: true })
      chownSync(d, Number(uidOut.trim()), Number(gidOut.trim()))
    }
    writeFileSync(paths.nginx.conf, baseConfig(ctx))
    await writeFiles(ctx)
    // A socket a killed nginx left: bind() would fail on it.
    rmSync(paths.nginx.admin, { force: true })
    // -e: errors before the config is read go to our log, not /var/log/nginx (which may not exist).
    const args = ['-e', paths.nginx.log, '-p', paths.nginx.dir, '-c', paths.nginx.conf]
    try {
      await execFileP('nginx', [...args, '-t', '-q'])
    } catch (err) {
      throw new Error(`nginx: configuration test failed: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`)
    }
    return { cmd: 'nginx', args, logFile: join(paths.logs, 'nginx-stdout.log'), pidfile: paths.nginx.pid }
  },
  // A running nginx whose base config an older checkout wrote: written anew, checked, reloaded.
  async refresh(ctx) {
    const { paths } = ctx
    const want = baseConfig(ctx)
    let have = ''
    try {
      have = readFileSync(paths.nginx.conf, 'utf8')
    } catch {
      // None yet: write it.
    }
    let haveLua = ''
    try {
      haveLua = readFileSync(join(paths.nginx.dir, 'lua', 'wharf_router.lua'), 'utf8')
    } catch {
      // None yet.
    }
    if (have === want && haveLua === ROUTER_LUA) return false
    // The HTTPS port is new to a config written before it existed: it must be free.
    const tls = ctx.cfg.ports.routerTls
    if (!have.includes(`listen 127.0.0.1:${tls} `) && (await portOpen(tls)))
      throw new Error(`nginx: port ${tls} is already taken by another process (set WHARF_ROUTER_TLS_PORT)`)
    writeFileSync(paths.nginx.conf, want)
    await writeFiles(ctx)
    try {
      await execFileP('nginx', ['-e', paths.nginx.log, '-p', paths.nginx.dir, '-c', paths.nginx.conf, '-t', '-q'])
    } catch (err) {
      writeFileSync(paths.nginx.conf, have)
      throw new Error(
        `nginx: the new configuration fails its test (the old one keeps serving): ${(err as { stderr?: string }).stderr ?? (err as Error).message}`,
      )
    }
    const pid = livePid(paths.nginx.pid)
    if (pid) process.kill(pid, 'SIGHUP')
    return true
  },
  // SIGQUIT: graceful, lets in-flight requests finish.
  stopSignal: 'SIGQUIT',
  startTimeoutMs: 15_000,
})
