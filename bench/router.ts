/**
 * The router benchmark (`npm run bench:router`), against the running platform (`make up`) and its
 * router, loopback only. It registers a user, deploys one app (a small Node HTTP server on the
 * platform's `node:26` image, through `builds:create`), and prints:
 *
 * 1. Throughput through the Wharf router vs the same nginx binary with a hand-written minimal config
 *    (one keepalive upstream, one server, one location; the router's worker count, pool size and
 *    keepalive timeout, no access log either) to the same container, as a ratio of requests/s: wrk
 *    runs alternate (router, minimal, minimal with the router's X-Forwarded-* and X-Request-Id
 *    headers, in turns whose order rotates), and the ratio is the median of each turn's ratios.
 *    Target >= 0.97. On a machine others load, requests/s swing with their load; the nginx workers'
 *    CPU time per request (from /proc, summed over the master's workers) is printed beside them as
 *    the figure that load moves least.
 * 2. Container announced -> routable: from the append of `ContainerStarted` (the publisher's event)
 *    until a request for the app's host gets the container's answer through the router, p50/p99, with
 *    10 and with 1,000 apps routed (`BENCH_APP_COUNTS`, e.g. `10,1000,10000`). The bench announces
 *    extra containers of its own apps itself, pointing at the deployed container's port, so that it
 *    can take many samples without starting a Swarm task for each; it announces them stopped
 *    afterwards. Also domain added -> routable: from `POST /domains` sent until the new host answers (probed
 *    meanwhile: the route may be live before the API answers), and the API's own answer time.
 *    Target p99 <= 20 ms. Then where the time went, p50/p99 per step, from the router's own
 *    `routes changed` log lines of those passes (the router process's log): event appended -> handed to the
 *    router, -> in its read models, waiting for the pass before, rows read, model and change set,
 *    nginx's answer.
 * 3. Failed requests out of >= 30,000 from wrk (kept-alive connections, a failed request is never
 *    sent again, as many load balancers) through a config deploy (`config:set` with web=3: new
 *    containers start together, old ones drain then stop), a scale 3 -> 1 -> 3, a rollback, and a
 *    restart of the router (its process stopped and started again, nginx left alone). Target 0.
 *
 * Everything it created (apps, containers) is destroyed at the end; the bench users stay (there is no
 * user deletion). Needs `wrk` (`make up` installs it).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import pg from 'pg'
import { ROUTER_HEADERS, WORKER_PRIORITY } from '../infra/parts/nginx.js'
import { loadConfig } from '../core/config.js'
import { withPlatformEnv } from '../core/platform-env.js'
import { dataOf, isEvent, wharfCatalogue } from '../domain/index.js'
import { EventSubjects, JetStreamEventStore, streamId } from '../events/index.js'
import { freePort } from '../infra/test-env.js'
import { countContainers, countLiveApps, upWebContainers } from '../projections/index.js'
import { get } from '../test/http.js'
import { contextFor } from '../infra/platform.js'
import { router as routerApart, services } from '../infra/parts/services.js'
import { livePid, stopPid } from '../infra/proc.js'
import { apiCaller, median } from './common.js'
import { nginxWorkersCpuUs } from './proccpu.js'

const execFileP = promisify(execFile)
const cfg = loadConfig(withPlatformEnv(process.env))
const base = process.env.WHARF_URL ?? `http://127.0.0.1:${cfg.ports.controller}`
const must = apiCaller(base)
const ROUTER = { host: '127.0.0.1', port: cfg.ports.router }
/** Throughput: seconds per wrk run, runs per side, connections. */
const RUN_S = Number(process.env.BENCH_RUN_S ?? 8)
const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const CONNECTIONS = 32
/** Latency samples per app count. */
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 60)
const APP_COUNTS = (process.env.BENCH_APP_COUNTS ?? '10,1000').split(',').map(Number)
/** Which of the three figures to measure (`BENCH_PARTS=2` for the latency only), default all. */
const PARTS = new Set((process.env.BENCH_PARTS ?? '1,2,3').split(',').map(Number))
/** The faults under load: at least this many requests, from this many kept-alive connections. */
const DEPLOY_MIN_REQUESTS = 30_000
const FAULT_CONNECTIONS = Number(process.env.BENCH_FAULT_CONNECTIONS ?? 8)

if (!cfg.databaseUrl) throw new Error('no running platform: run `make up` first (settings come from .wharf/wharf.env)')
await execFileP('wrk', ['--version']).catch((err: { code?: string; stdout?: string }) => {
  // wrk --version exits 1 after printing its version.
  if (err.code === 'ENOENT') throw new Error('wrk is not installed: `make up` installs it (apt-get install wrk)')
})

const pool = new pg.Pool({ connectionString: cfg.databaseUrl, max: 4 })
const store = await JetStreamEventStore.connect({
  servers: cfg.natsUrl,
  catalogue: wharfCatalogue(),
  subjects: new EventSubjects(cfg.namespace),
  name: `wharf-bench-router-${process.pid}`,
})
const suffix = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`
const username = `bench-${suffix}`
const app = `benchrouter-${suffix}`
const host = `${app}.${cfg.domain}`
const extraApps: string[] = []
const announced: { app: string; container: string }[] = []
let token: string | undefined
const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-router-'))

/** The app: answers "ok <hostname>" on $PORT, closes gracefully on SIGTERM. */
const SERVER = `const h=require("os").hostname();const s=require("http").createServer((q,r)=>r.end("ok "+h+"\\n"));s.keepAliveTimeout=65000;s.listen(process.env.PORT);process.on("SIGTERM",()=>s.close(()=>process.exit(0)))`
const PROCFILE = { web: `exec node -e '${SERVER}'` }

/** One GET through the router with a Host header, on a new connection; status 0 when it failed. */
const probe = (port: number, hostHeader: string, timeoutMs = 2_000) =>
  get(port, hostHeader, '/', false, timeoutMs).catch(() => ({ status: 0, body: '', retried: 0 }))

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 120_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(everyMs)
  }
}

interface WrkResult {
  requests: number
  rps: number
  non2xx: number
  socketErrors: number
}

/** Runs wrk against `port` with `Host: hostHeader` and parses its summary. */
async function wrk(port: number, hostHeader: string, seconds: number, connections = CONNECTIONS): Promise<WrkResult> {
  const { stdout } = await execFileP(
    'wrk',
    ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-H', `Host: ${hostHeader}`, `http://127.0.0.1:${port}/`],
    { maxBuffer: 1 << 20 },
  )
  return parseWrk(stdout)
}

/** wrk's summary: requests, requests/s, non-2xx answers and socket errors (connect, read, write, timeout). */
function parseWrk(stdout: string): WrkResult {
  const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? 0)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout)
  return {
    requests: num(/(\d+) requests in/),
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors: socket ? socket.slice(1).reduce((n, x) => n + Number(x), 0) : 0,
  }
}

/** A baseline nginx. */
interface Minimal {
  port: number
  child: ChildProcess
  pidfile: string
}
const minimals: Minimal[] = []

/**
 * The minimal nginx: the same binary, worker count, access log (off), upstream pool size and
 * keepalive timeout as the router's; one upstream, one server, one location. `headers`: also the
 * headers the router sends (with nginx's own `$request_id`, as a hand-written config would; the
 * router makes its request ids in Lua, see infra/parts/nginx-lua.ts).
 */
async function startMinimal(backend: { host: string; port: number }, name: string, headers: boolean): Promise<Minimal> {
  const port = await freePort()
  const d = join(dir, name)
  rmSync(d, { recursive: true, force: true })
  mkdirSync(d, { recursive: true })
  const conf = join(d, 'nginx.conf')
  const pidfile = join(d, 'nginx.pid')
  writeFileSync(
    conf,
    `daemon off;
worker_processes auto;
worker_priority ${WORKER_PRIORITY};
pid ${pidfile};
error_log ${join(d, 'error.log')} warn;
user www-data;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server ${backend.host}:${backend.port}; keepalive 64; keepalive_timeout 4s; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      ${headers ? ROUTER_HEADERS : ''}
    }
  }
}
`,
  )
  const child = spawn('nginx', ['-e', join(d, 'error.log'), '-p', d, '-c', conf], { stdio: 'ignore' })
  const m = { port, child, pidfile }
  minimals.push(m)
  await until(`the ${name} nginx to answer`, async () => (await probe(port, 'x')).status === 200, 10_000)
  return m
}

async function runtimeOutcome(release: number, afterSeq: number): Promise<string | undefined> {
  const { events } = await store.readStream(streamId('runtime', app), { fromSeq: afterSeq + 1 })
  return events.find((e) => (dataOf(e, 'DeployCompleted') ?? dataOf(e, 'DeployFailed'))?.release === release)?.type
}

/** The app's newest release version (`ReleaseCreated` on its stream). */
async function latestRelease(): Promise<number> {
  const { events } = await store.readStream(streamId('app', app))
  const e = events.filter((e) => isEvent(e, 'ReleaseCreated')).at(-1)
  if (!e) throw new Error(`${app} has no release`)
  return e.data.version
}

async function upContainers(name: string): Promise<{ container: string; host: string; port: number; release: number }[]> {
  return upWebContainers(pool, name)
}

/** Apps one bench user owns at most (under the default `WHARF_APPS_PER_USER`, 50). */
const APPS_PER_OWNER = 40
/** The token of the user owning each extra app. */
const ownerOf = new Map<string, string>()
const owners: string[] = []

/** Registers another bench user (apps are spread over users: each may own only so many). */
async function newOwner(): Promise<string> {
  const name = `${username}-${owners.length + 1}`
  const password = `pw-${suffix}-${randomBytes(6).toString('hex')}`
  await must('POST', '/v1/auth/register', undefined, { username: name, password, email: `${name}@bench.invalid` })
  const t = (await must<{ token: string }>('POST', '/v1/auth/login', undefined, { username: name, password })).token
  owners.push(t)
  return t
}

/** Creates apps with a few requests in flight at once, {@link APPS_PER_OWNER} per bench user. */
async function createApps(names: string[]): Promise<void> {
  const tokens: string[] = []
  for (let i = 0; i < Math.ceil(names.length / APPS_PER_OWNER); i++) tokens.push(await newOwner())
  let next = 0
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < names.length) {
        const i = next++
        const name = names[i]!
        const owner = tokens[Math.floor(i / APPS_PER_OWNER)]!
        await must('POST', '/v1/apps', owner, { name })
        ownerOf.set(name, owner)
        extraApps.push(name)
      }
    }),
  )
}

/** Appends a container event the way the publisher does. */
async function announce(type: 'ContainerStarted' | 'ContainerStopped', data: Record<string, unknown>): Promise<void> {
  await store.append(streamId('runtime', data.app as string), [{ type, data }], { expectedVersion: 'any', actor: 'system:bench-router' })
}

/** wrk in the background until stopped (SIGINT: it prints its summary then); counts as {@link wrk} does. */
function startWrk(port: number, hostHeader: string, connections: number) {
  const child = spawn('wrk', ['-t1', `-c${connections}`, '-d3600s', '--timeout', '10s', '-H', `Host: ${hostHeader}`, `http://127.0.0.1:${port}/`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c))
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return {
    startedAt: Date.now(),
    async stop(): Promise<WrkResult & { socketText: string }> {
      child.kill('SIGINT')
      await exited
      const socket = /Socket errors: (connect \d+, read \d+, write \d+, timeout \d+)/.exec(out)
      return { ...parseWrk(out), socketText: socket?.[1] ?? 'none' }
    },
  }
}

/** The process the router runs in: its own (`make up` runs it so), else the services process. */
const routerPart = () => (livePid(contextFor(cfg, () => {}).paths.router.pid) ? routerApart : services)

/**
 * Restarts the router as `make restart` does: its process (its own, or the services process it runs
 * in) is stopped (SIGTERM) and started again; nginx is left alone. Answers when the router serves again.
 */
async function restartRouter(): Promise<void> {
  const ctx = contextFor(cfg, () => {})
  const part = routerPart()
  const pidfile = part === routerApart ? ctx.paths.router.pid : ctx.paths.services.pid
  const pid = livePid(pidfile)
  if (!pid) throw new Error(`the ${part.name} process is not running`)
  const nginxPid = livePid(ctx.paths.nginx.pid)
  await stopPid(pid, { timeoutMs: 30_000 })
  // The supervisor, when it runs, may start it first.
  await sleep(1_500)
  if (!livePid(pidfile)) await part.start(ctx)
  await until(
    'the router running again',
    async () => {
      const health = await must<{ checks: { router?: { ok?: boolean }; services?: { detail?: { running?: string[] } } } }>('GET', '/healthz').catch(
        () => undefined,
      )
      return part === routerApart ? health?.checks.router?.ok === true : (health?.checks.services?.detail?.running?.includes('router') ?? false)
    },
    60_000,
    200,
  )
  if (livePid(ctx.paths.nginx.pid) !== nginxPid) throw new Error('nginx was restarted with the router: its dict and pooled connections were lost')
}

/** The router's log (it logs each pass there): its process's own, or the services log. */
const routerLog = () => (routerPart() === routerApart ? contextFor(cfg, () => {}).paths.router.log : contextFor(cfg, () => {}).paths.services.log)
const logSize = () => {
  try {
    return statSync(routerLog()).size
  } catch {
    return 0
  }
}

/**
 * Per step, p50 / p99 ms, of the router's passes logged since `from` (a byte offset of the services
 * log): `steps` of its `router: routes changed` lines, and the parts of the post to nginx (`apply.*`)
 * and the router's process during the pass (`process.*`: CPU ms, event loop busy share, how late it ran).
 */
function routerSteps(from: number): string {
  const size = logSize()
  if (size <= from) return 'no router pass logged'
  const fd = openSync(routerLog(), 'r')
  const buf = Buffer.alloc(size - from)
  try {
    readSync(fd, buf, 0, buf.length, from)
  } finally {
    closeSync(fd)
  }
  const steps = new Map<string, number[]>()
  let passes = 0
  for (const line of buf.toString('utf8').split('\n')) {
    if (!line.includes('"router: routes changed"')) continue
    let v: { steps?: Record<string, number>; apply?: Record<string, number>; process?: Record<string, number>; covered?: number }
    try {
      v = JSON.parse(line)
    } catch {
      continue
    }
    if (!v.steps) continue
    passes++
    const add = (k: string, x: number) => steps.set(k, [...(steps.get(k) ?? []), x])
    for (const [k, x] of Object.entries(v.steps)) if (k !== 'seq') add(k, x)
    // The post to nginx in parts, and the router's process during the pass.
    for (const [k, x] of Object.entries(v.apply ?? {})) add(`apply.${k}`, x)
    for (const [k, x] of Object.entries(v.process ?? {})) add(`process.${k}`, x)
    steps.set('covered apps', [...(steps.get('covered apps') ?? []), v.covered ?? 0])
  }
  return `${passes} passes: ${[...steps].map(([k, xs]) => `${k} ${pct(xs, 50).toFixed(1)}/${pct(xs, 99).toFixed(1)}`).join(', ')}`
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!

try {
  const health = await must<{ checks: { router?: unknown; services?: { detail?: { running?: string[] } }; workers?: { detail?: { running?: string[] } } } }>(
    'GET',
    '/healthz',
  )
  // The router in this process or in its own (then /healthz has its check all the same); the scheduler and
  // the publisher in this process or in the workers' (their check lists them).
  const running = [
    ...(health.checks.services?.detail?.running ?? []),
    ...(health.checks.workers?.detail?.running ?? []),
    ...(health.checks.router ? ['router'] : []),
  ]
  for (const s of ['router', 'scheduler', 'publisher', 'projector']) {
    if (!running.includes(s)) throw new Error(`the platform runs no ${s} (it runs ${running.join(', ')}): start it with make up`)
  }
  const password = `pw-${suffix}-${randomBytes(6).toString('hex')}`
  await must('POST', '/v1/auth/register', undefined, { username, password, email: `${username}@bench.invalid` })
  token = (await must<{ token: string }>('POST', '/v1/auth/login', undefined, { username, password })).token
  await must('POST', '/v1/apps', token, { name: app })
  const built = await must<{ release: number }>('POST', `/v1/apps/${app}/builds`, token, { image: 'node:26', procfile: PROCFILE, port: 5000 })
  await until(`v${built.release} deployed`, async () => (await runtimeOutcome(built.release, 0)) !== undefined)
  if ((await runtimeOutcome(built.release, 0)) !== 'DeployCompleted') throw new Error(`v${built.release} did not deploy`)
  await until('the app to answer through the router', async () => (await probe(ROUTER.port, host)).status === 200)
  const [backend] = await upContainers(app)
  if (!backend) throw new Error('no container announced for the app')
  console.log(`app ${app} deployed (v${built.release}), container ${backend.container.slice(0, 12)} at ${backend.host}:${backend.port}`)

  // 1. Throughput.
  if (PARTS.has(1)) {
    const routerPid = contextFor(cfg, () => {}).paths.nginx.pid
    const sides = [
      { name: 'wharf router', port: ROUTER.port, pidfile: routerPid },
      { name: 'minimal nginx', ...(await startMinimal(backend, 'minimal', false)) },
      { name: 'minimal nginx + the router headers', ...(await startMinimal(backend, 'headers', true)) },
    ]
    for (const side of sides) await wrk(side.port, host, 2)
    const rps = sides.map(() => [] as number[])
    const cpu = sides.map(() => [] as number[])
    const ratios = sides.map(() => [] as number[])
    for (let i = 0; i < RUNS; i++) {
      const turn: number[] = []
      // The order rotates: none of them always runs first after a pause, or last.
      for (let k = 0; k < sides.length; k++) {
        const j = (i + k) % sides.length
        const side = sides[j]!
        const c0 = nginxWorkersCpuUs(side.pidfile)
        const r = await wrk(side.port, host, RUN_S)
        const usPerRequest = (nginxWorkersCpuUs(side.pidfile) - c0) / Math.max(1, r.requests)
        if (r.non2xx + r.socketErrors > 0) console.log(`  (errors: ${side.name} ${r.non2xx} non-2xx ${r.socketErrors} socket)`)
        turn[j] = r.rps
        rps[j]!.push(r.rps)
        cpu[j]!.push(usPerRequest)
      }
      for (let j = 0; j < sides.length; j++) ratios[j]!.push(turn[0]! / turn[j]!)
      console.log(
        `  turn ${i + 1}: ${sides.map((s, j) => `${s.name} ${turn[j]!.toFixed(0)} req/s (nginx ${cpu[j]!.at(-1)!.toFixed(1)} us/request)`).join(', ')}; load ${loadavg()[0]!.toFixed(1)}`,
      )
    }
    for (const m of minimals.splice(0)) m.child.kill('SIGQUIT')
    const load = loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')
    console.log(
      `\n(1) throughput, wrk -t1 -c${CONNECTIONS} ${RUN_S} s x ${RUNS} turns, medians: ${sides.map((s, j) => `${s.name} ${median(rps[j]!).toFixed(0)} req/s, nginx CPU ${median(cpu[j]!).toFixed(2)} us/request`).join('; ')}`,
    )
    console.log(
      `    wharf router / minimal nginx = ${median(ratios[1]!).toFixed(3)} (target >= 0.97), / minimal with the router's headers = ${median(ratios[2]!).toFixed(3)} (median of the turns' ratios; load average ${load})\n`,
    )
  }

  // 2. Announced -> routable, with 10 and 1,000 apps routed.
  const release = backend.release
  for (const count of PARTS.has(2) ? APP_COUNTS : []) {
    const routed = await countLiveApps(pool)
    // At least one app of the bench's own to announce containers of.
    const want = Math.max(extraApps.length === 0 ? 1 : 0, count - routed)
    const made = extraApps.length
    if (want > 0) {
      const t0 = Date.now()
      await createApps(Array.from({ length: want }, (_, i) => `brt-${suffix}-${made + i}`))
      console.log(`  created ${want} apps in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    }
    const total = await countLiveApps(pool)
    // Until the router serves the last app made (its 503 page: routed, nothing running).
    const last = extraApps.at(-1) ?? app
    await until('the router to route every app', async () => (await probe(ROUTER.port, `${last}.${cfg.domain}`)).status === 503)
    await sleep(500)
    const logFrom = logSize()
    const xs: number[] = []
    for (let i = 0; i < SAMPLES; i++) {
      const target = extraApps[(i * 7) % extraApps.length]!
      const container = randomBytes(32).toString('hex')
      const t0 = performance.now()
      await announce('ContainerStarted', { app: target, type: 'web', release, container, host: backend.host, port: backend.port, number: 1 })
      announced.push({ app: target, container })
      await until(`${target} routable`, async () => (await probe(ROUTER.port, `${target}.${cfg.domain}`, 1_000)).status === 200, 10_000, 1)
      xs.push(performance.now() - t0)
      await announce('ContainerStopped', { app: target, type: 'web', container })
      announced.pop()
      await until(`${target} unrouted`, async () => (await probe(ROUTER.port, `${target}.${cfg.domain}`, 1_000)).status === 503, 10_000, 5)
    }
    console.log(
      `(2) announced -> routable with ${total} apps routed, ${SAMPLES} samples: p50 ${pct(xs, 50).toFixed(1)} ms, p99 ${pct(xs, 99).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms (target p99 <= 20 ms; load ${loadavg()[0]!.toFixed(1)})`,
    )
    // Domain added -> routable: the API call, the event, the router, nginx; probed from the moment the
    // call is sent (the route may be live before the API answers, which waits for its read models).
    const ds: number[] = []
    const api: number[] = []
    /** From the call sent until `DomainAdded` was appended (the controller's part), and from then until routable, ms. */
    const toEvent: number[] = []
    const fromEvent: number[] = []
    for (let i = 0; i < Math.min(SAMPLES, 20); i++) {
      const target = extraApps[(i * 7) % extraApps.length]!
      const domain = `d${i}-${count}.${target}.example.test`
      const sentAt = Date.now()
      const t0 = performance.now()
      const call = must('POST', `/v1/apps/${target}/domains`, ownerOf.get(target), { domain }).then(() => api.push(performance.now() - t0))
      await until(`${domain} routable`, async () => (await probe(ROUTER.port, domain, 1_000)).status === 503, 10_000, 1)
      const took = performance.now() - t0
      ds.push(took)
      await call
      // The event's occurredAt (ms, this machine's clock) splits the time: the API until the append, then the router.
      const { events } = await store.readStream(streamId('app', target))
      const added = events.findLast((e) => dataOf(e, 'DomainAdded')?.domain === domain)
      if (added) {
        toEvent.push(Date.parse(added.occurredAt) - sentAt)
        fromEvent.push(sentAt + took - Date.parse(added.occurredAt))
      }
    }
    console.log(
      `(2) domain added -> routable with ${total} apps routed, ${ds.length} samples: p50 ${pct(ds, 50).toFixed(1)} ms, p99 ${pct(ds, 99).toFixed(1)} ms, max ${Math.max(...ds).toFixed(1)} ms; the API's answer p50 ${pct(api, 50).toFixed(1)} ms, p99 ${pct(api, 99).toFixed(1)} ms (load ${loadavg()[0]!.toFixed(1)})`,
    )
    if (toEvent.length > 0)
      console.log(
        `    call sent -> DomainAdded made (its occurredAt: the controller's auth, claim and app stream) p50 ${pct(toEvent, 50).toFixed(1)} ms, p99 ${pct(toEvent, 99).toFixed(1)} ms; made -> routable p50 ${pct(fromEvent, 50).toFixed(1)} ms, p99 ${pct(fromEvent, 99).toFixed(1)} ms`,
      )
    console.log(`    where the time went (router's log, ms p50/p99): ${routerSteps(logFrom)}`)
  }
  console.log()

  // 3. Faults under load: wrk (keep-alive, never sends a failed request again) through a config deploy,
  // a scale 3 -> 1 -> 3, a rollback and a restart of the router (its process).
  if (PARTS.has(3)) {
    let seq = await store.streamVersion(streamId('runtime', app))
    await must('POST', `/v1/apps/${app}/formation`, token, { web: 3 })
    await until('web=3 deployed', async () => (await runtimeOutcome(release, seq)) !== undefined)
    await until('three containers routed', async () => (await upContainers(app)).length === 3)
    await sleep(1_000)
    const load = startWrk(ROUTER.port, host, FAULT_CONNECTIONS)
    const steps: string[] = []
    const step = async (what: string, fn: () => Promise<void>) => {
      const t0 = Date.now()
      await fn()
      steps.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)} s`)
      await sleep(1_000)
    }
    /** Until the app runs `n` containers of `release`, announced and routed, and no other (drained and stopped). */
    const settled = (what: string, n: number, rel: number) =>
      until(
        what,
        async () => {
          const up = await upContainers(app)
          return up.length === n && up.every((c) => c.release === rel) && (await countContainers(pool, app)) === n
        },
        90_000,
      )
    await sleep(2_000)
    let version = release
    await step('config deploy', async () => {
      seq = await store.streamVersion(streamId('runtime', app))
      await must('POST', `/v1/apps/${app}/config`, token, { values: { BENCH_ROLL: suffix } })
      version = await latestRelease()
      await until('the config deploy', async () => (await runtimeOutcome(version, seq)) !== undefined, 60_000)
      await settled('the config deploy settled', 3, version)
    })
    await step('scale 3 -> 1 -> 3', async () => {
      for (const web of [1, 3]) {
        await must('POST', `/v1/apps/${app}/formation`, token, { web })
        await settled(`web=${web}`, web, version)
      }
    })
    await step('rollback', async () => {
      seq = await store.streamVersion(streamId('runtime', app))
      version = (await must<{ version: number }>('POST', `/v1/apps/${app}/releases/rollback`, token, {})).version
      await until('the rollback deploy', async () => (await runtimeOutcome(version, seq)) !== undefined, 60_000)
      await settled('the rollback settled', 3, version)
    })
    await step('router restart', restartRouter)
    while (Date.now() - load.startedAt < 5_000) await sleep(100)
    const r = await load.stop()
    const failed = r.non2xx + r.socketErrors
    console.log(
      `(3) wrk -t1 -c${FAULT_CONNECTIONS} (keep-alive, no retries) through ${steps.join(', ')}: ${failed} failed out of ${r.requests} requests (target 0 of >= ${DEPLOY_MIN_REQUESTS}); ${r.non2xx} non-2xx, socket errors ${r.socketText}; ${r.rps.toFixed(0)} req/s (load average ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')})`,
    )
    if (r.requests < DEPLOY_MIN_REQUESTS) console.log(`    fewer than ${DEPLOY_MIN_REQUESTS} requests: the figure does not count`)
  }
} finally {
  for (const m of minimals) m.child.kill('SIGQUIT')
  for (const a of announced) await announce('ContainerStopped', { app: a.app, type: 'web', container: a.container }).catch(() => {})
  if (token) {
    const all = [app, ...extraApps]
    let next = 0
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < all.length) {
          const name = all[next++]!
          await must('DELETE', `/v1/apps/${name}`, ownerOf.get(name) ?? token, { confirm: name }).catch((err: Error) =>
            console.error(`could not destroy ${name}: ${err.message}`),
          )
        }
      }),
    )
  }
  rmSync(dir, { recursive: true, force: true })
  await store.close()
  await pool.end()
}
