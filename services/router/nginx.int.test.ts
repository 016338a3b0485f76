/**
 * The router's data plane alone: an nginx of its own (infra's part, on free ports, a 1 MiB dict)
 * and a Node HTTP server as the app, change sets posted to the admin socket by the router's client.
 * Bad input is refused whole with a stable code and the last good routes keep serving; a dict too
 * small names its setting; a restarted nginx has no epoch, and the full table brings it back.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, request as httpRequest, type Server } from 'node:http'
import { connect as netConnect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { loadConfig } from '../../core/config.js'
import { createLogger } from '../../core/log.js'
import { pathsFor } from '../../core/paths.js'
import { nginx as nginxPart } from '../../infra/parts/nginx.js'
import { CONNECT_S, QUICK_CONNECT_S } from '../../infra/parts/nginx-lua.js'
import { freePort } from '../../infra/test-env.js'
import { fullSet, type AppEntry, type DictState } from './changes.js'
import { Nginx } from './nginx.js'

const home = mkdtempSync(join(tmpdir(), 'wharf-nginx-router-'))
const cfg = loadConfig({
  WHARF_HOME: home,
  WHARF_ROUTER_PORT: String(await freePort()),
  WHARF_ROUTER_TLS_PORT: String(await freePort()),
  WHARF_CONTROLLER_PORT: String(await freePort()),
  WHARF_ROUTER_DICT_MB: '1',
})
const paths = pathsFor(home)
mkdirSync(paths.logs, { recursive: true })
mkdirSync(join(home, 'run'), { recursive: true })
const ctx = { cfg, paths, say: () => {} } as unknown as Parameters<typeof nginxPart.start>[0]
await nginxPart.start(ctx)
t.teardown(async () => {
  await nginxPart.stop(ctx)
  rmSync(home, { recursive: true, force: true })
})
const ng = new Nginx({
  paths: paths.nginx,
  socket: paths.nginx.admin,
  log: createLogger({ level: 'silent' }),
})

const app: Server = createServer((req, res) => {
  // The body read whole (a chunked one is measured by the router first).
  req.resume()
  req.on('end', () => res.end(`app ${req.headers['x-forwarded-host']} ${req.headers['x-request-id'] ?? 'no-id'}\n`))
})
await new Promise<void>((r) => app.listen(0, '127.0.0.1', r))
t.teardown(() => new Promise<void>((r) => app.close(() => r())))
const appPort = (app.address() as { port: number }).port

function get(host: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: cfg.ports.router, method: body ? 'POST' : 'GET', path: '/', headers: { host, ...headers }, agent: false },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (text += c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

const up = (p: string[], b = 0): AppEntry => ({ s: 'up', b, t: 60, p })
const state = (apps: Record<string, AppEntry>, hosts: Record<string, string>): DictState => ({
  apps: new Map(Object.entries(apps)),
  hosts: new Map(Object.entries(hosts)),
  certs: new Map(),
  sni: new Map(),
})

t.test('before any full table: 503 (loading), not 404', async (t) => {
  t.equal(await ng.epoch(), null)
  t.equal((await get('shop.example.test')).status, 503)
})

t.test('a full table, then changes: routed at once, 404 unknown, 503 maintenance and idle, 413 over the body limit', async (t) => {
  const r = await ng.apply(
    fullSet(
      state(
        { shop: up([`127.0.0.1:${appPort}`], 8), down: { s: 'maintenance', b: 0, t: 60, p: [] } },
        { 'shop.example.test': 'shop', 'down.example.test': 'down' },
      ),
      'e1',
    ),
  )
  t.match(r, { ok: true })
  t.equal(await ng.epoch(), 'e1')
  const first = await get('shop.example.test')
  t.match(first, { status: 200, body: /^app shop\.example\.test [0-9a-f]{32}\n$/ }, 'X-Forwarded-Host and X-Request-Id (32 hex digits) reach the app')
  const ids = new Set<string>([first.body])
  for (let i = 0; i < 20; i++) ids.add((await get('shop.example.test')).body)
  t.equal(ids.size, 21, 'a request id of its own for each request')
  t.equal((await get('SHOP.example.test')).status, 200, 'host names are matched lower-case')
  t.equal((await get('nobody.example.test')).status, 404)
  t.match(await get('down.example.test'), { status: 503, body: /down for maintenance/ })
  t.equal((await get('shop.example.test', {}, 'way over eight bytes')).status, 413, 'Content-Length over WHARF_MAX_BODY_SIZE')
  t.equal((await get('shop.example.test', { 'transfer-encoding': 'chunked' }, 'way over eight bytes')).status, 413, 'a chunked body over it too')
  t.match(
    await get('shop.example.test', { 'transfer-encoding': 'chunked' }, 'small'),
    { status: 200, body: /^app shop\.example\.test [0-9a-f]{32}\n$/ },
    'a chunked body under it is measured, then proxied with a request id',
  )
  t.match(await ng.apply({ apps: { shop: { s: 'idle', b: 0, t: 60, p: [] } } }), { ok: true })
  t.match(await get('shop.example.test'), { status: 503, body: /no web process/ })
  t.match(await ng.apply({ apps: { shop: up([`127.0.0.1:${appPort}`]) }, hosts: { 'new.example.test': 'shop', 'down.example.test': null } }), { ok: true })
  t.equal((await get('new.example.test')).status, 200, 'a host added')
  t.equal((await get('down.example.test')).status, 404, 'a host removed')
})

t.test('passive failover: a peer that refuses connections is passed over', async (t) => {
  const dead = await freePort()
  t.match(await ng.apply({ apps: { shop: up([`127.0.0.1:${dead}`, `127.0.0.1:${appPort}`]) } }), { ok: true })
  const statuses = new Set<number>()
  for (let i = 0; i < 10; i++) statuses.add((await get('shop.example.test')).status)
  t.same([...statuses], [200], 'every request answered by the live peer')
  // Three peers gone at once (a parallel deploy's old tasks): a failed try marks its peer down in every worker.
  const gone = [await freePort(), await freePort(), await freePort()].map((p) => `127.0.0.1:${p}`)
  t.match(await ng.apply({ apps: { shop: up([...gone, `127.0.0.1:${appPort}`]) } }), { ok: true })
  const answers: number[] = []
  for (let i = 0; i < 20; i++) answers.push((await get('shop.example.test')).status)
  t.ok(
    answers.slice(1).every((s) => s === 200),
    `after the first request, every one answered (${answers.join(' ')})`,
  )
})

/**
 * `count` ports on `address` that neither accept nor refuse a connection, as those of a host that is
 * lost: listeners (backlog 1) of a child process that is then stopped, their accept queues filled.
 */
async function silentPorts(t: Test, address: string, count: number): Promise<number[]> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const net = require('node:net'); const ports = []; let n = ${count};
       for (let i = 0; i < ${count}; i++) net.createServer().listen({ host: '${address}', port: 0, backlog: 1 }, function () { ports.push(this.address().port); if (--n === 0) console.log(JSON.stringify(ports)) })`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  const ports = await new Promise<number[]>((resolve, reject) => {
    child.stdout!.once('data', (b: Buffer) => resolve(JSON.parse(b.toString())))
    child.once('exit', (code) => reject(new Error(`the listeners' process exited (${code})`)))
  })
  child.kill('SIGSTOP')
  const fillers: Socket[] = []
  t.teardown(() => {
    for (const s of fillers) s.destroy()
  })
  for (const port of ports) {
    // The kernel completes handshakes into the queue until it is full (backlog + 1), then drops the SYNs.
    for (let i = 0; ; i++) {
      if (i === 10) throw new Error(`${address}:${port} keeps accepting connections`)
      const s = netConnect({ host: address, port })
      fillers.push(s)
      const connected = await Promise.race([once(s, 'connect').then(() => true), sleep(300).then(() => false)])
      if (!connected) break
    }
  }
  return ports
}

async function timedGet(host: string): Promise<{ status: number; ms: number }> {
  const t0 = performance.now()
  const { status } = await get(host)
  return { status, ms: performance.now() - t0 }
}

t.test('a host that answers nothing: its peer passed over after a short connect, and its other peers with it', async (t) => {
  const silent = (await silentPorts(t, '127.0.0.2', 4)).map((p) => `127.0.0.2:${p}`)
  t.match(await ng.apply({ apps: { shop: up([...silent, `127.0.0.1:${appPort}`]) } }), { ok: true })
  const answers: { status: number; ms: number }[] = []
  for (let i = 0; i < 12; i++) answers.push(await timedGet('shop.example.test'))
  const shown = answers.map((a) => `${a.status} ${Math.round(a.ms)} ms`).join(', ')
  t.ok(
    answers.every((a) => a.status === 200),
    `every request answered by the live peer (${shown})`,
  )
  t.ok(
    answers.every((a) => a.ms < CONNECT_S * 1000 * 0.75),
    `none waited for a whole connect timeout (${shown})`,
  )
  // Each silent peer tried once would be four short connects (each marks only its peer down).
  const waited = answers.reduce((sum, a) => sum + Math.max(0, a.ms - 100), 0)
  t.ok(waited < QUICK_CONNECT_S * 1000 * 2, `one short connect to the silent host in all, then the host is passed over (${shown})`)
})

t.test('a retry goes to the peers the app has then, not to those of the first try', async (t) => {
  const silent = (await silentPorts(t, '127.0.0.3', 2)).map((p) => `127.0.0.3:${p}`)
  t.match(await ng.apply({ apps: { shop: up(silent) } }), { ok: true })
  // The first try waits on a silent peer; meanwhile a deploy replaces both with a live one.
  const answer = timedGet('shop.example.test')
  await sleep(QUICK_CONNECT_S * 1000 * 0.3)
  t.match(await ng.apply({ apps: { shop: up([`127.0.0.1:${appPort}`]) } }), { ok: true })
  const { status, ms } = await answer
  t.equal(status, 200, `answered by the new peer after ${Math.round(ms)} ms`)
  t.ok(ms < CONNECT_S * 1000 * 0.75, `in about QUICK_CONNECT_S (${Math.round(ms)} ms)`)
})

t.test('bad change sets are refused whole with a stable code; the last good routes serve on', async (t) => {
  const bad: [string, unknown][] = [
    ['a host of an unknown app', { hosts: { 'x.example.test': 'nope' } }],
    ['a peer that is not address:port', { apps: { shop: up(['127.0.0.1:80;evil']) } }],
    ['a port out of range', { apps: { shop: up(['127.0.0.1:99999']) } }],
    ['an unsafe app name', { apps: { 'a b': up([]) } }],
    ['an unsafe host name', { hosts: { 'x.test;\nlisten 1': 'shop' } }],
    ['a bad state', { apps: { shop: { s: 'open', b: 0, t: 60, p: [] } } }],
    ['a timeout out of range', { apps: { shop: { s: 'up', b: 0, t: 0, p: [] } } }],
    ['a certificate that does not parse', { certs: { abcd: { c: 'not a pem', k: 'nope' } } }],
    ['SNI for an unknown certificate', { sni: { 'shop.example.test': 'abcd' } }],
    ['a full set without an epoch', { full: true, apps: {} }],
  ]
  for (const [what, cs] of bad) {
    // With a good part beside the bad one: nothing of it is applied.
    const r = await ng.apply({ ...(cs as object), hosts: { ...((cs as { hosts?: object }).hosts ?? {}), 'partial.example.test': 'shop' } })
    t.match(r, { ok: false, code: 'WHARF_ROUTER_BAD_CHANGES', unreachable: false }, what)
  }
  t.equal((await get('partial.example.test')).status, 404, 'no part of a refused set applied')
  t.equal((await get('shop.example.test')).status, 200, 'the last good routes serve')
  const raw = await new Promise<number>((resolve) => {
    const req = httpRequest({ socketPath: paths.nginx.admin, method: 'POST', path: '/changes', headers: { host: 'x' } }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.end('{"apps": [1, 2')
  })
  t.equal(raw, 400, 'not JSON: 400')
})

t.test('a dict too small: a clear error naming WHARF_ROUTER_DICT_MB', async (t) => {
  const apps: Record<string, AppEntry> = {}
  for (let i = 0; i < 20_000; i++) apps[`app-${i}`] = up([`127.0.0.1:${10_000 + (i % 50_000)}`, `127.0.0.2:${10_000 + (i % 50_000)}`])
  const r = await ng.apply({ apps })
  t.match(r, { ok: false, code: 'WHARF_ROUTER_DICT_FULL', reason: /WHARF_ROUTER_DICT_MB/ })
  t.equal((await get('shop.example.test')).status, 200, 'what was there still serves')
  const free = await new Promise<{ free: number; capacity: number }>((resolve) => {
    const req = httpRequest({ socketPath: paths.nginx.admin, path: '/epoch', headers: { host: 'x' } }, (res) => {
      let text = ''
      res.on('data', (c) => (text += c))
      res.on('end', () => resolve(JSON.parse(text)))
    })
    req.end()
  })
  t.ok(free.free > free.capacity / 2, `nothing of the refused set stays (free ${free.free} of ${free.capacity} bytes)`)
})

t.test('nginx restarted: no epoch (an empty dict) until the full table is posted again', async (t) => {
  const pid = Number(readFileSync(paths.nginx.pid, 'utf8'))
  await nginxPart.stop(ctx)
  t.equal(await ng.epoch(), undefined, 'no answer while down')
  const full = fullSet(state({ shop: up([`127.0.0.1:${appPort}`]) }, { 'shop.example.test': 'shop' }), 'e2')
  t.match(await ng.apply(full), { ok: false, unreachable: true }, 'the client never starts nginx: a post while it is down is unreachable')
  t.equal(ng.masterPid(), undefined, 'and nginx is still down')
  // Started again by its owner (the supervisor, here the test).
  await nginxPart.start(ctx)
  t.not(Number(readFileSync(paths.nginx.pid, 'utf8')), pid)
  t.equal(await ng.epoch(), null, 'a restarted nginx holds no table')
  t.match(await ng.apply(full), { ok: true })
  t.equal(await ng.epoch(), 'e2')
  t.equal((await get('shop.example.test')).status, 200)
  t.equal((await get('new.example.test')).status, 404, 'a full set replaces the whole table')
})
