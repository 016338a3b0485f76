/**
 * The API benchmark (`npm run bench:api`): latency of queries and commands through the real
 * controller of the running platform (`make up`), at a steady rate, loopback only.
 *
 * - GET /v1/apps and GET /v1/apps/:app/config at 1,000 req/s (together) for 10 s: p50/p99.
 * - POST /v1/apps/:app/config (config:set, a command: event appended, read models caught up before
 *   the answer) at 200 req/s for 10 s: p50/p99.
 * Targets: GET p99 <= 10 ms; command p99 <= 30 ms. It registers a user of its own (or uses
 * WHARF_BENCH_TOKEN), creates an app of its own and destroys it at the end.
 *
 * The config:set app runs (busybox httpd answering `$K0`, through `builds:create`, `BENCH_DEPLOY=0`
 * for none), so each release is also a deploy; the platform has at least `BENCH_APPS` apps (default
 * 1,000: the bench creates what is missing, and destroys them at the end unless `BENCH_KEEP_APPS=1`).
 * Beside the figures: where a config:set's time went (the controller's `Server-Timing` steps,
 * p50/p99), the services process's event-loop delay during the burst (its /metrics), and a final
 * check that the app serves the last value and that no release is missing from releases:list.
 * `BENCH_GETS=0` leaves out the GETs.
 */
import { loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { Pool } from 'undici'
import { loadConfig } from '../core/config.js'
import { withPlatformEnv } from '../core/platform-env.js'
import { countLiveApps } from '../projections/index.js'
import { get } from '../test/http.js'
import { cpuByPart, cpuPerOp, platformProcesses } from './proccpu.js'

const cfg = loadConfig(withPlatformEnv(process.env))
const base = process.env.WHARF_URL ?? `http://127.0.0.1:${cfg.ports.controller}`
const http = new Pool(base, { connections: 64, pipelining: 1 })
const SECONDS = 10
const TARGETS = { getP99Ms: 10, commandP99Ms: 30 }

const DEPLOY = process.env.BENCH_DEPLOY !== '0'
/** config:set per second (default 200), for a look at the costs below the target rate. */
const SET_RATE = Number(process.env.BENCH_SET_RATE ?? 200)
const parts = platformProcesses(cfg.home, cfg.dockerHost)
const APPS = Number(process.env.BENCH_APPS ?? 1000)

/** `config:set` steps (Server-Timing) by name, ms. */
const steps = new Map<string, number[]>()

async function call<T>(
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; body: T; timing: string | undefined }> {
  const res = await http.request({
    path,
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  })
  const text = await res.body.text()
  const timing = res.headers['server-timing']
  return { status: res.statusCode, body: (text ? JSON.parse(text) : undefined) as T, timing: typeof timing === 'string' ? timing : undefined }
}

function noteSteps(header: string | undefined): void {
  for (const part of (header ?? '').split(',')) {
    const m = /^\s*([\w-]+);dur=([\d.]+)/.exec(part)
    if (!m) continue
    let xs = steps.get(m[1]!)
    if (!xs) steps.set(m[1]!, (xs = []))
    xs.push(Number(m[2]))
  }
}

/**
 * From the services process's /metrics: its event-loop delay since the last scrape (prom-client
 * resets it on each), ms, and the CPU time it has used, s.
 */
async function processMetrics(): Promise<{ lag: Record<string, number>; cpuS: number }> {
  const res = await http.request({ path: '/metrics', method: 'GET' })
  const text = await res.body.text()
  const lag: Record<string, number> = {}
  for (const m of text.matchAll(/^nodejs_eventloop_lag_(p50|p99|max)_seconds (\S+)$/gm)) lag[m[1]!] = r1(Number(m[2]) * 1000)
  const cpuS = Number(/^process_cpu_seconds_total (\S+)$/m.exec(text)?.[1] ?? NaN)
  return { lag, cpuS }
}

async function must<T>(method: 'GET' | 'POST' | 'DELETE', path: string, token?: string, body?: unknown): Promise<T> {
  const r = await call<T & { code?: string; message?: string }>(method, path, token, body)
  if (r.status >= 400) throw new Error(`${method} ${path}: ${r.status} ${r.body?.code ?? ''} ${r.body?.message ?? ''}`)
  return r.body
}

/** Sends `make(i)` at `rate` per second for `seconds`, open loop; returns sorted latencies (ms) and errors. */
async function steady(rate: number, seconds: number, make: (i: number) => Promise<number>): Promise<{ lat: number[]; errors: number }> {
  const lat: number[] = []
  let errors = 0
  const inFlight = new Set<Promise<void>>()
  const total = rate * seconds
  const started = performance.now()
  let sent = 0
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) * rate) / 1000))
    for (; sent < due; sent++) {
      const t0 = performance.now()
      const p = make(sent).then(
        (status) => {
          if (status >= 400) errors++
          else lat.push(performance.now() - t0)
        },
        () => void errors++,
      )
      inFlight.add(p)
      void p.finally(() => inFlight.delete(p))
    }
    await new Promise((r) => setTimeout(r, 1))
  }
  await Promise.all(inFlight)
  lat.sort((a, b) => a - b)
  return { lat, errors }
}

async function until(what: string, ms: number, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/** When `done` first answers true (epoch ms), or undefined after `ms`. */
async function within(ms: number, done: () => Promise<boolean>): Promise<number | undefined> {
  const deadline = Date.now() + ms
  while (!(await done())) {
    if (Date.now() > deadline) return undefined
    await sleep(250)
  }
  return Date.now()
}

const q = (lat: number[], p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN
const r1 = (x: number) => Math.round(x * 10) / 10

const suffix = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`
const username = `bench-${suffix}`
const app = `bench-${suffix}`
let token = process.env.WHARF_BENCH_TOKEN
const extraApps: { name: string; token: string }[] = []
/** Apps one bench user owns at most (a multiple of 20, under the default `WHARF_APPS_PER_USER`, 50). */
const APPS_PER_OWNER = 40

/** Registers another bench user to own some of the extra apps; answers its token. */
async function newOwner(n: number): Promise<string> {
  const name = `${username}-${n + 1}`
  const password = `pw-${suffix}-${Math.random().toString(36).slice(2)}`
  await must('POST', '/v1/auth/register', undefined, { username: name, password, email: `${name}@bench.invalid` })
  return (await must<{ token: string }>('POST', '/v1/auth/login', undefined, { username: name, password })).token
}
const pool = cfg.databaseUrl ? new pg.Pool({ connectionString: cfg.databaseUrl, max: 2 }) : undefined
try {
  if (!token) {
    const password = `pw-${suffix}-${Math.random().toString(36).slice(2)}`
    await must('POST', '/v1/auth/register', undefined, { username, password, email: `${username}@bench.invalid` })
    token = (await must<{ token: string }>('POST', '/v1/auth/login', undefined, { username, password })).token
  }
  await must('POST', '/v1/apps', token, { name: app })
  if (pool) {
    const want = APPS - (await countLiveApps(pool))
    const t0 = Date.now()
    // Spread over bench users of their own: a user may own WHARF_APPS_PER_USER apps (default 50).
    let owner = ''
    for (let i = 0; i < want; i += 20) {
      if (i % APPS_PER_OWNER === 0) owner = await newOwner(i / APPS_PER_OWNER)
      const names = Array.from({ length: Math.min(20, want - i) }, (_, j) => `bapi-${suffix}-${i + j}`)
      const by = owner
      await Promise.all(names.map((name) => must('POST', '/v1/apps', by, { name })))
      for (const name of names) extraApps.push({ name, token: by })
    }
    if (want > 0) console.log(`created ${want} apps in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    console.log(`apps on the platform: ${await countLiveApps(pool)}`)
  }
  if (DEPLOY) {
    const procfile = { web: `mkdir -p /tmp/www && echo "$K0" > /tmp/www/index.html; httpd -f -p $PORT -h /tmp/www & trap 'exit 0' TERM; wait` }
    await must('POST', `/v1/apps/${app}/builds`, token, { image: 'busybox:latest', procfile, port: 5000 })
    await until(
      'the app to serve',
      60_000,
      async () => (await get(cfg.ports.router, `${app}.${cfg.domain}`, '/', false, 1_000).catch(() => undefined))?.status === 200,
    )
  }
  await must('POST', `/v1/apps/${app}/config`, token, { values: { WARM: 'up' } })
  // Warm the JIT and the connection pool.
  await steady(200, 1, (i) => call('GET', i % 2 ? '/v1/apps' : `/v1/apps/${app}/config`, token).then((r) => r.status))

  const gets =
    process.env.BENCH_GETS === '0'
      ? { lat: [], errors: 0 }
      : await steady(1000, SECONDS, (i) => call('GET', i % 2 ? '/v1/apps' : `/v1/apps/${app}/config`, token).then((r) => r.status))
  const before = (await must<{ releases: { version: number }[] }>('GET', `/v1/apps/${app}/releases?limit=1`, token)).releases[0]?.version ?? 0
  const cpuBefore = (await processMetrics()).cpuS
  const partsBefore = cpuByPart(parts)
  console.log(`config:set at ${SET_RATE}/s for ${SECONDS} s on ${app} (v${before})`)
  const loadBefore = loadavg()[0]!.toFixed(1)
  const setsStarted = Date.now()
  const sets = await steady(SET_RATE, SECONDS, (i) =>
    call('POST', `/v1/apps/${app}/config`, token, { values: { [`K${i % 50}`]: String(i) } }).then((r) => {
      noteSteps(r.timing)
      return r.status
    }),
  )
  const partsAfter = cpuByPart(parts)
  const { lag, cpuS: cpuAfter } = await processMetrics()
  const cpuMsPerSet = r1(((cpuAfter - cpuBefore) * 1000) / Math.max(1, sets.lat.length + sets.errors))
  const burstS = (Date.now() - setsStarted) / 1000
  const loadAfter = loadavg()[0]!.toFixed(1)
  // The last value of K0 sent: the app must serve it once the deploys are through.
  const lastK0 = String(Math.floor((SET_RATE * SECONDS - 1) / 50) * 50)
  const rows: [string, string, string, string][] = [
    [
      `GET apps:list + config:list @ 1000/s`,
      `p50 ${r1(q(gets.lat, 0.5))} ms`,
      `p99 ${r1(q(gets.lat, 0.99))} ms`,
      `<= ${TARGETS.getP99Ms} ms ${q(gets.lat, 0.99) <= TARGETS.getP99Ms ? 'yes' : 'NO'}`,
    ],
    [
      `POST config:set @ ${SET_RATE}/s`,
      `p50 ${r1(q(sets.lat, 0.5))} ms`,
      `p99 ${r1(q(sets.lat, 0.99))} ms`,
      `<= ${TARGETS.commandP99Ms} ms ${q(sets.lat, 0.99) <= TARGETS.commandP99Ms ? 'yes' : 'NO'}`,
    ],
  ]
  for (const r of rows) console.log(`${r[0].padEnd(38)} ${r[1].padStart(14)} ${r[2].padStart(14)}   target ${r[3]}`)
  console.log(`errors: GET ${gets.errors}, config:set ${sets.errors}; load ${loadBefore} before the config:set burst, ${loadAfter} after`)
  const stepRows = [...steps].map(([name, xs]) => {
    xs.sort((a, b) => a - b)
    return `${name} p50 ${r1(q(xs, 0.5))} p99 ${r1(q(xs, 0.99))}`
  })
  console.log(`config:set steps (Server-Timing, ms): ${stepRows.join('; ')}`)
  console.log(`services process event-loop delay during the burst (ms): p50 ${lag.p50} p99 ${lag.p99} max ${lag.max}`)
  console.log(
    `services process CPU during the burst: ${r1(cpuAfter - cpuBefore)} s in ${r1(burstS)} s, ${cpuMsPerSet} ms per config:set (the deploys it caused meanwhile included)`,
  )
  const perSet = cpuPerOp(partsBefore, partsAfter, sets.lat.length + sets.errors)
  console.log(`CPU per config:set by process, from the burst's start to its last answer (ms): ${JSON.stringify(perSet)}`)
  let servedAfter: number | undefined
  if (DEPLOY && sets.errors === 0) {
    servedAfter = await within(300_000, async () => {
      const r = await get(cfg.ports.router, `${app}.${cfg.domain}`, '/', false, 1_000).catch(() => undefined)
      return r?.status === 200 && r.body.trim() === lastK0
    })
    if (servedAfter !== undefined) servedAfter -= setsStarted
  }
  // What the burst cost in all, deploys included: once the app serves the last value and the platform settled.
  await sleep(2_000)
  const perSetAll = cpuPerOp(partsBefore, cpuByPart(parts), sets.lat.length + sets.errors)
  console.log(`CPU per config:set by process, until the app served the last value and 2 s after (ms): ${JSON.stringify(perSetAll)}`)
  const { releases } = await must<{ releases: { version: number }[] }>('GET', `/v1/apps/${app}/releases?limit=${Math.min(1000, SET_RATE * SECONDS)}`, token)
  const newest = releases[0]?.version ?? 0
  const made = newest - before
  const contiguous = releases.every((r, i) => r.version === newest - i)

  console.log(
    `releases: ${made} made for ${sets.lat.length} answered config:set (${made === sets.lat.length ? 'none lost' : 'MISMATCH'}), newest ${releases.length} contiguous: ${contiguous ? 'yes' : 'NO'}`,
  )
  if (DEPLOY)
    console.log(
      `the app served the last value (K0=${lastK0}) ${servedAfter === undefined ? 'NOT within 300 s' : `${(servedAfter / 1000).toFixed(1)} s after the burst began`}`,
    )
  console.log(
    JSON.stringify({
      getP50Ms: r1(q(gets.lat, 0.5)),
      getP99Ms: r1(q(gets.lat, 0.99)),
      getRequests: gets.lat.length,
      getErrors: gets.errors,
      setP50Ms: r1(q(sets.lat, 0.5)),
      setP99Ms: r1(q(sets.lat, 0.99)),
      setRequests: sets.lat.length,
      setErrors: sets.errors,
      steps: Object.fromEntries([...steps].map(([name, xs]) => [name, { p50: r1(q(xs, 0.5)), p99: r1(q(xs, 0.99)) }])),
      loopDelayMs: lag,
      cpuMsPerSet,
      cpuMsPerSetByProcess: perSet,
      cpuMsPerSetByProcessUntilServed: perSetAll,
      releasesMade: made,
      servedLastMs: servedAfter ?? null,
    }),
  )
} finally {
  if (token) await call('DELETE', `/v1/apps/${app}`, token, { confirm: app }).catch(() => {})
  if (token && process.env.BENCH_KEEP_APPS !== '1')
    for (let i = 0; i < extraApps.length; i += 20)
      await Promise.all(extraApps.slice(i, i + 20).map((a) => call('DELETE', `/v1/apps/${a.name}`, a.token, { confirm: a.name }).catch(() => {})))
  await pool?.end()
  await http.close()
}
