/**
 * Where the router's nginx CPU per request goes (`npm run bench:router-variants`): no platform
 * needed, only nginx with Debian's Lua module, wrk and Node. A Node HTTP server on 127.0.0.1 plays the
 * app (the same one bench:router deploys); each variant is an nginx of its own on a free port, started
 * from the router's generated base config (`baseConfig`, infra/parts/nginx.ts) with one part changed
 * or taken out, its dict filled through its admin socket as the router does (`BENCH_VARIANT_APPS`
 * apps, default 1,000, one of them the app). wrk runs (`-t1 -c32`, `BENCH_RUN_S` s, default 5) take
 * turns over the variants (`BENCH_RUNS` turns, default 5; the order rotates), and the figure is the
 * nginx workers' CPU time per request (user + system, from /proc), median of the turns: on a machine
 * others load it moves far less than requests/s. `BENCH_VARIANTS=a,b` picks variants by name.
 *
 * `BENCH_CALLGRIND=1`: instead, each variant runs as one nginx process (`master_process off`) under
 * valgrind's callgrind, and the figure is the instructions nginx executes per request (user space:
 * nginx, Lua, libc, OpenSSL; not the kernel), counted over a wrk run after a warm-up: the same
 * whatever the machine's load, so differences of a few hundred instructions show. The counts of the
 * functions that differ most from the first variant's are printed too (`callgrind_annotate`).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, chownSync } from 'node:fs'
import { createServer } from 'node:http'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { loadConfig } from '../core/config.js'
import { pathsFor } from '../core/paths.js'
import { baseConfig, ROUTER_HEADERS, WORKER_PRIORITY } from '../infra/parts/nginx.js'
import { nginxWorkersCpuUs } from './proccpu.js'
import { ROUTER_LUA } from '../infra/parts/nginx-lua.js'
import { freePort } from '../infra/test-env.js'
import { fullSet, type AppEntry } from '../services/router/changes.js'
import { Nginx } from '../services/router/nginx.js'
import { createLogger } from '../core/log.js'
import { median } from './common.js'

const execFileP = promisify(execFile)
const RUN_S = Number(process.env.BENCH_RUN_S ?? 5)
const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const APPS = Number(process.env.BENCH_VARIANT_APPS ?? 1000)
const CONNECTIONS = 32
const HOST = 'bench.wharf.test'
const CALLGRIND = process.env.BENCH_CALLGRIND === '1'
const DOMAIN = 'wharf.test'

/** The app: as bench:router's (answers "ok <hostname>"). */
const backend = createServer((_q, r) => r.end('ok bench\n'))
backend.keepAliveTimeout = 65_000
/** Connections the app accepted: with pooled upstream connections, a few per run, not one per request. */
let backendConnections = 0
backend.on('connection', () => backendConnections++)
await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r))
const backendPort = (backend.address() as { port: number }).port

interface Variant {
  name: string
  /** The config text from the router's base config (`base`) and the dirs. */
  config: (base: string, v: { port: number; dir: string; ctx: unknown }) => string
  /** Whether the dict is filled (the router's Lua is loaded). */
  lua: boolean
  /** The Lua module, when not the router's own. */
  luaText?: string
}

const minimal = (headers: boolean | string) => (_base: string, v: { port: number; dir: string }) =>
  `daemon off;
worker_processes auto;
worker_priority ${WORKER_PRIORITY};
pid ${join(v.dir, 'nginx.pid')};
error_log ${join(v.dir, 'error.log')} warn;
user www-data;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server 127.0.0.1:${backendPort}; keepalive 64; keepalive_timeout 4s; }
  server {
    listen 127.0.0.1:${v.port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      ${headers === true ? ROUTER_HEADERS : headers || ''}
    }
  }
}
`

/** Replaces `from` (which must be there) by `to` in every place. */
function swap(text: string, from: string | RegExp, to: string): string {
  const out = text.replaceAll(from as string, to)
  if (out === text) throw new Error(`variant: ${String(from)} not found in the base config`)
  return out
}

/** The route's line in the base config. */
const ROUTE = `set_by_lua $wharf_app 'return wharf.route()' $host $content_length $http_transfer_encoding;`

const variants: Variant[] = [
  { name: 'minimal', lua: false, config: minimal(false) },
  { name: 'minimal+headers', lua: false, config: minimal(true) },
  // Each of the router's headers alone.
  ...ROUTER_HEADERS.split('\n').map((h) => ({
    name: `minimal+${/proxy_set_header (\S+)/.exec(h)![1]}`,
    lua: false,
    config: minimal(h.trim()),
  })),
  { name: 'router', lua: true, config: (b) => b },
  {
    // The host lookup in Lua replaced by a constant: what set_by_lua costs.
    name: 'router-no-set_by_lua',
    lua: true,
    config: (b) => swap(b, ROUTE, 'set $wharf_app bench;'),
  },
  {
    // A static upstream in place of balancer_by_lua: what the balancer costs.
    name: 'router-no-balancer',
    lua: true,
    config: (b) =>
      swap(
        swap(b, 'proxy_pass http://wharf_apps;', 'proxy_pass http://wharf_static;'),
        'upstream wharf_apps {',
        `upstream wharf_static { server 127.0.0.1:${backendPort}; keepalive 64; keepalive_timeout 4s; }\n  upstream wharf_apps {`,
      ),
  },
  {
    // No Lua a request at all (a constant app, no if, a static upstream): what the rest of the base config costs.
    name: 'router-bare',
    lua: true,
    config: (b) =>
      swap(
        swap(
          swap(swap(b, ROUTE, 'set $wharf_app bench;'), /\n\s*if \(\$wharf_app = ""\) \{\n\s*content_by_lua_block \{ wharf.deny\(\) \}\n\s*\}/g, ''),
          'proxy_pass http://wharf_apps;',
          'proxy_pass http://wharf_static;',
        ),
        'upstream wharf_apps {',
        `upstream wharf_static { server 127.0.0.1:${backendPort}; keepalive 64; keepalive_timeout 4s; }\n  upstream wharf_apps {`,
      ),
  },
  {
    // No `if`: what the if block costs.
    name: 'router-no-if',
    lua: true,
    config: (b) => swap(b, /\n\s*if \(\$wharf_app = ""\) \{\n\s*content_by_lua_block \{ wharf.deny\(\) \}\n\s*\}/g, ''),
  },
  {
    // No X-Forwarded-* / X-Request-Id.
    name: 'router-no-headers',
    lua: true,
    config: (b) => swap(b, ROUTER_HEADERS, ''),
  },
  {
    // No X-Request-Id.
    name: 'router-no-request-id',
    lua: true,
    config: (b) => swap(b, 'proxy_set_header X-Request-Id $wharf_request_id;', ''),
  },
  {
    // nginx's $request_id (16 bytes from OpenSSL's RAND_bytes a request) in place of the Lua's.
    name: 'router-nginx-request-id',
    lua: true,
    config: (b) => swap(b, 'proxy_set_header X-Request-Id $wharf_request_id;', 'proxy_set_header X-Request-Id $request_id;'),
  },
  {
    // Connection "" in place of the map for Upgrade.
    name: 'router-no-connection-map',
    lua: true,
    config: (b) => swap(b, 'proxy_set_header Connection $wharf_connection;', 'proxy_set_header Connection "";'),
  },
  {
    // The fallback of the issue: hosts in an nginx map rendered into the config (a reload per domain
    // change), peers still dynamic (balancer_by_lua); unknown host 404 from the map.
    name: 'static-map+dynamic-peers',
    lua: true,
    config: (b) =>
      swap(
        swap(b, ROUTE, ''),
        'upstream wharf_apps {',
        `map $host $wharf_app {\n    hostnames;\n    default "";\n${Array.from({ length: APPS }, (_, i) => `    ${i === 0 ? HOST : `app${i}.${DOMAIN}`} ${i === 0 ? 'bench' : `app${i}`};`).join('\n')}\n  }\n  upstream wharf_apps {`,
      ),
  },
]

// `BENCH_COMPARE_DIST=<another checkout's dist/>`: that checkout's router too (its base config and Lua), as `router@dist`.
const compare = process.env.BENCH_COMPARE_DIST
if (compare) {
  const other = (await import(join(compare, 'infra/parts/nginx.js'))) as { baseConfig: typeof baseConfig }
  const otherLua = (await import(join(compare, 'infra/parts/nginx-lua.js'))) as { ROUTER_LUA: string }
  variants.push({ name: 'router@dist', lua: true, luaText: otherLua.ROUTER_LUA, config: (_b, v) => other.baseConfig(v.ctx as never) })
}

const picked = process.env.BENCH_VARIANTS?.split(',')
const chosen = picked ? variants.filter((v) => picked.includes(v.name)) : variants
if (chosen.length === 0) throw new Error(`no variant named ${picked}: ${variants.map((v) => v.name).join(', ')}`)

const root = mkdtempSync(join(tmpdir(), 'wharf-bench-variants-'))
const running: { v: Variant; port: number; pidfile: string; child: ChildProcess; out: string }[] = []

async function wrk(port: number, seconds: number) {
  const { stdout } = await execFileP('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '-H', `Host: ${HOST}`, `http://127.0.0.1:${port}/`])
  const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? 0)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout)
  return {
    requests: num(/(\d+) requests in/),
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    errors: num(/Non-2xx or 3xx responses: (\d+)/) + (socket ? socket.slice(1).reduce((n, x) => n + Number(x), 0) : 0),
  }
}

async function start(v: Variant) {
  const home = join(root, v.name)
  const port = await freePort()
  const cfg = loadConfig({
    WHARF_HOME: home,
    WHARF_ROUTER_PORT: String(port),
    WHARF_ROUTER_TLS_PORT: String(await freePort()),
    WHARF_CONTROLLER_PORT: String(await freePort()),
    WHARF_DOMAIN: DOMAIN,
  })
  const paths = pathsFor(home)
  const dir = paths.nginx.dir
  for (const d of [join(dir, 'lua'), paths.logs, join(home, 'run'), ...['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((s) => join(paths.nginx.tmp, s))])
    mkdirSync(d, { recursive: true })
  for (const s of ['body', 'proxy']) chownSync(join(paths.nginx.tmp, s), 33, 33)
  writeFileSync(join(dir, 'lua', 'wharf_router.lua'), v.luaText ?? ROUTER_LUA)
  await execFileP('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    '/CN=x.invalid',
    '-days',
    '2',
    '-keyout',
    join(dir, 'fallback.key'),
    '-out',
    join(dir, 'fallback.crt'),
  ])
  const ctx = { cfg, paths } as unknown as Parameters<typeof baseConfig>[0]
  const base = baseConfig(ctx)
  let text = v.config(base, { port, dir, ctx })
  // One process, so that callgrind sees every request.
  if (CALLGRIND) text = swap(text, 'worker_processes auto;', 'worker_processes 1;\nmaster_process off;')
  const conf = join(dir, 'nginx.conf')
  writeFileSync(conf, text)
  const pidfile = v.lua ? paths.nginx.pid : join(dir, 'nginx.pid')
  const out = join(dir, 'callgrind.out')
  const args = ['-e', join(dir, 'error.log'), '-p', dir, '-c', conf]
  const child = CALLGRIND
    ? spawn('valgrind', ['--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${out}`, 'nginx', ...args], { stdio: 'ignore' })
    : spawn('nginx', args, { stdio: 'ignore' })
  running.push({ v, port, pidfile, child, out })
  const deadline = Date.now() + (CALLGRIND ? 60_000 : 10_000)
  if (v.lua) {
    const ng = new Nginx({ paths: paths.nginx, socket: paths.nginx.admin, log: createLogger({ level: 'silent' }) })
    const apps = new Map<string, AppEntry>()
    const hosts = new Map<string, string>()
    for (let i = 0; i < APPS; i++) {
      const name = i === 0 ? 'bench' : `app${i}`
      apps.set(name, { s: 'up', b: 1024 * 1024, t: 60, p: [`127.0.0.1:${i === 0 ? backendPort : 20000 + (i % 1000)}`] })
      hosts.set(i === 0 ? HOST : `${name}.${DOMAIN}`, name)
    }
    for (;;) {
      const r = await ng.apply(fullSet({ apps, hosts, certs: new Map(), sni: new Map() }, 'bench'))
      if (r.ok) break
      if (Date.now() > deadline) throw new Error(`${v.name}: the admin socket did not take the table: ${r.reason}`)
      await sleep(100)
    }
  }
  for (;;) {
    const r = await wrk(port, 1).catch(() => undefined)
    if (r && r.requests > 0 && r.errors === 0) break
    if (Date.now() > deadline) throw new Error(`${v.name}: nginx does not answer 200 (see ${join(dir, 'error.log')})`)
    await sleep(200)
  }
}

/** Instructions per request of each variant under callgrind, and the functions that differ most. */
async function callgrind(): Promise<void> {
  const per: { name: string; ir: number; fns: Map<string, number> }[] = []
  for (const r of running) {
    await wrk(r.port, 3)
    await execFileP('callgrind_control', ['-z', String(r.child.pid)])
    const w = await wrk(r.port, RUN_S)
    await execFileP('callgrind_control', ['-d', String(r.child.pid)])
    const dumps = readdirSync(join(r.out, '..'))
      .filter((f) => f.startsWith('callgrind.out'))
      .sort()
    const file = join(r.out, '..', dumps.at(-1)!)
    const { stdout } = await execFileP('callgrind_annotate', ['--inclusive=no', '--threshold=100', file], { maxBuffer: 64 << 20 })
    const total = Number(
      /([\d,]+) \(100.0%\)\s+PROGRAM TOTALS/.exec(stdout)?.[1]?.replaceAll(',', '') ?? /([\d,]+)\s+PROGRAM TOTALS/.exec(stdout)?.[1]?.replaceAll(',', '') ?? 0,
    )
    const fns = new Map<string, number>()
    for (const m of stdout.matchAll(/^\s*([\d,]+) \([\s\d.]+%\)\s+(\S.*)$/gm)) {
      if (/PROGRAM TOTALS|\(below main\)|\bmain\b|__libc_start_main/.test(m[2]!)) continue
      // file:function [object]: the function, and the object's name when the function has none.
      const obj = /\[(?:.*\/)?([^/\]]+)\]$/.exec(m[2]!)?.[1] ?? ''
      const fn = m[2]!.replace(/\s*\[.*\]$/, '').replace(/^.*:/, '')
      const name = /^0x/.test(fn) ? `${obj} ${fn}` : fn
      fns.set(name, (fns.get(name) ?? 0) + Number(m[1]!.replaceAll(',', '')) / Math.max(1, w.requests))
    }
    per.push({ name: r.v.name, ir: total / Math.max(1, w.requests), fns })
    console.log(
      `  ${r.v.name.padEnd(28)} ${(total / Math.max(1, w.requests)).toFixed(0).padStart(7)} instructions/request (${w.requests} requests${w.errors ? `, ${w.errors} errors` : ''})`,
    )
  }
  const first = per[0]!
  for (const p of per.slice(1)) {
    const names = new Set([...first.fns.keys(), ...p.fns.keys()])
    const d = [...names].map((n) => [n, (p.fns.get(n) ?? 0) - (first.fns.get(n) ?? 0)] as const).filter(([, x]) => Math.abs(x) >= 30)
    d.sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))
    console.log(`\n  ${p.name} - ${first.name}: ${(p.ir - first.ir).toFixed(0)} instructions/request; by function:`)
    for (const [n, x] of d.slice(0, 25)) console.log(`    ${x > 0 ? '+' : ''}${x.toFixed(0).padStart(6)}  ${n}`)
  }
}

try {
  for (const v of chosen) await start(v)
  if (CALLGRIND) {
    await callgrind()
    process.exitCode = 0
  } else {
    const cpu = running.map(() => [] as number[])
    const rps = running.map(() => [] as number[])
    for (let i = 0; i < RUNS; i++) {
      const line: string[] = []
      for (let k = 0; k < running.length; k++) {
        const j = (i + k) % running.length
        const r = running[j]!
        const c0 = nginxWorkersCpuUs(r.pidfile)
        const n0 = backendConnections
        const w = await wrk(r.port, RUN_S)
        const us = (nginxWorkersCpuUs(r.pidfile) - c0) / Math.max(1, w.requests)
        if (w.errors) console.log(`  (${r.v.name}: ${w.errors} errors)`)
        const opened = backendConnections - n0
        if (opened > w.requests / 100) console.log(`  (${r.v.name}: ${opened} connections to the app for ${w.requests} requests: not pooled)`)
        cpu[j]!.push(us)
        rps[j]!.push(w.rps)
        line[j] = `${r.v.name} ${us.toFixed(1)}`
      }
      console.log(`  turn ${i + 1} (us/request): ${line.join(', ')}; load ${loadavg()[0]!.toFixed(1)}`)
    }
    console.log(
      `\nnginx workers' CPU per request, median of ${RUNS} turns of wrk -t1 -c${CONNECTIONS} ${RUN_S} s (${APPS} apps in the dict; load ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}):`,
    )
    for (let j = 0; j < running.length; j++) {
      console.log(`  ${running[j]!.v.name.padEnd(28)} ${median(cpu[j]!).toFixed(2).padStart(6)} us   (${median(rps[j]!).toFixed(0)} req/s)`)
    }
  }
} finally {
  for (const r of running) r.child.kill('SIGQUIT')
  await sleep(500)
  backend.close()
  rmSync(root, { recursive: true, force: true })
}
