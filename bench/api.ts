/**
 * The API benchmark (`npm run bench:api`): latency of queries and commands through the real
 * controller of the running platform (`make up`), at a steady rate, loopback only.
 *
 * - GET /v1/apps and GET /v1/apps/:app/config at 1,000 req/s (together) for 10 s: p50/p99.
 * - POST /v1/apps/:app/config (config:set, a command: event appended, read models caught up before
 *   the answer) at 200 req/s for 10 s: p50/p99.
 * Targets: GET p99 <= 10 ms; command p99 <= 30 ms. It registers a user of its own (or uses
 * WHARF_BENCH_TOKEN), creates an app of its own and destroys it at the end.
 */
import { Pool } from 'undici'
import { loadConfig } from '../core/config.js'
import { withPlatformEnv } from '../core/platform-env.js'

const cfg = loadConfig(withPlatformEnv(process.env))
const base = process.env.WHARF_URL ?? `http://127.0.0.1:${cfg.ports.controller}`
const http = new Pool(base, { connections: 64, pipelining: 1 })
const SECONDS = 10
const TARGETS = { getP99Ms: 10, commandP99Ms: 30 }

async function call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, token?: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await http.request({
    path,
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  })
  const text = await res.body.text()
  return { status: res.statusCode, body: (text ? JSON.parse(text) : undefined) as T }
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

const q = (lat: number[], p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN
const r1 = (x: number) => Math.round(x * 10) / 10

const suffix = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`
const username = `bench-${suffix}`
const app = `bench-${suffix}`
let token = process.env.WHARF_BENCH_TOKEN
try {
  if (!token) {
    const password = `pw-${suffix}-${Math.random().toString(36).slice(2)}`
    await must('POST', '/v1/auth/register', undefined, { username, password, email: `${username}@bench.invalid` })
    token = (await must<{ token: string }>('POST', '/v1/auth/login', undefined, { username, password })).token
  }
  await must('POST', '/v1/apps', token, { name: app })
  await must('POST', `/v1/apps/${app}/config`, token, { values: { WARM: 'up' } })
  // Warm the JIT and the connection pool.
  await steady(200, 1, (i) => call('GET', i % 2 ? '/v1/apps' : `/v1/apps/${app}/config`, token).then((r) => r.status))

  const gets = await steady(1000, SECONDS, (i) => call('GET', i % 2 ? '/v1/apps' : `/v1/apps/${app}/config`, token).then((r) => r.status))
  const sets = await steady(200, SECONDS, (i) => call('POST', `/v1/apps/${app}/config`, token, { values: { [`K${i % 50}`]: String(i) } }).then((r) => r.status))

  const rows: [string, string, string, string][] = [
    [
      `GET apps:list + config:list @ 1000/s`,
      `p50 ${r1(q(gets.lat, 0.5))} ms`,
      `p99 ${r1(q(gets.lat, 0.99))} ms`,
      `<= ${TARGETS.getP99Ms} ms ${q(gets.lat, 0.99) <= TARGETS.getP99Ms ? 'yes' : 'NO'}`,
    ],
    [
      `POST config:set @ 200/s`,
      `p50 ${r1(q(sets.lat, 0.5))} ms`,
      `p99 ${r1(q(sets.lat, 0.99))} ms`,
      `<= ${TARGETS.commandP99Ms} ms ${q(sets.lat, 0.99) <= TARGETS.commandP99Ms ? 'yes' : 'NO'}`,
    ],
  ]
  for (const r of rows) console.log(`${r[0].padEnd(38)} ${r[1].padStart(14)} ${r[2].padStart(14)}   target ${r[3]}`)
  console.log(`errors: GET ${gets.errors}, config:set ${sets.errors}`)
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
    }),
  )
} finally {
  if (token) await call('DELETE', `/v1/apps/${app}`, token, { confirm: app }).catch(() => {})
  await http.close()
}
