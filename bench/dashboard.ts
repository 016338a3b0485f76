/**
 * `npm run bench:dashboard`: the dashboard's first page with 1,000 apps (BENCH_APPS), in Debian's
 * chromium driven by playwright-core: navigation to the apps list showing its rows, median of 5
 * (goal < 300 ms), the `GET /v1/overview/apps` behind it (p50/p99 of 20), and the size of the page's
 * JavaScript gzipped (goal < 150 KB). Against the running platform's NATS and Postgres (`make up`;
 * $WHARF_HOME/wharf.env), in an event namespace and a database of its own, removed at the end; the
 * controller runs in this process, serving the built dashboard (`make build`).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import pg from 'pg'
import { chromium } from 'playwright-core'
import { request } from 'undici'
import { loadConfig } from '../core/config.js'
import { createLogger } from '../core/log.js'
import { withPlatformEnv } from '../core/platform-env.js'
import { wharfCatalogue } from '../domain/index.js'
import { EventSubjects } from '../events/index.js'
import { JetStreamEventStore } from '../events/jetstream.js'
import { Projector, wharfProjections } from '../projections/index.js'
import { tokenAuthenticator } from '../services/controller/auth.js'
import { dashboardDir } from '../services/controller/dashboard.js'
import { buildHttp } from '../services/controller/http.js'
import { ROUTES } from '../services/controller/routes/index.js'
import { platformStore } from '../services/store/index.js'

const APPS = Number(process.env.BENCH_APPS ?? 1000)
const CHROMIUM = process.env.WHARF_CHROMIUM ?? '/usr/bin/chromium'
const TARGET = { firstPageMs: 300, jsGzipKb: 150 }

const cfg = loadConfig(withPlatformEnv(process.env))
if (!cfg.databaseUrl) throw new Error('no Postgres to measure against: run `make up` first (or set WHARF_DATABASE_URL)')
const dir = dashboardDir()
if (!dir) throw new Error('the dashboard is not built: run `make build` first')
const log = createLogger({ level: process.env.WHARF_LOG_LEVEL ?? 'warn' })
const suffix = `${process.pid}_${Date.now().toString(36)}`
const namespace = `benchdash_${suffix}`
const dbName = `benchdash_${suffix}`
const admin = new pg.Client({ connectionString: cfg.databaseUrl })
await admin.connect()
await admin.query(`CREATE DATABASE ${dbName}`)
const dbUrl = new URL(cfg.databaseUrl)
dbUrl.pathname = `/${dbName}`
const pool = new pg.Pool({ connectionString: dbUrl.href, max: 10 })
pool.on('error', () => {})
const catalogue = wharfCatalogue()
const store = await JetStreamEventStore.connect({ servers: cfg.natsUrl, catalogue, subjects: new EventSubjects(namespace), name: 'wharf-bench-dashboard' })
const projector = new Projector({ store, pool, projections: wharfProjections(), log, batch: { maxWaitMs: 1 } })
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!
const median = (xs: number[]) => pct(xs, 50)

try {
  await projector.start()
  const bcfg = { ...cfg, namespace }
  const deps = {
    cfg: bcfg,
    log,
    store,
    pool,
    catalogue,
    objects: undefined,
    platform: platformStore({ cfg: bcfg, pool, store, catalogue, log, objects: undefined }),
  }
  const app = await buildHttp({ log, deps, routes: ROUTES, authenticate: tokenAuthenticator(deps), version: 'bench', checks: {}, dashboard: dir })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const call = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await request(`${base}${path}`, {
      method: method as 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body ?? {}),
    })
    const json = (await res.body.json()) as Record<string, unknown>
    if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${JSON.stringify(json)}`)
    return json
  }
  const password = 'bench password long'
  await call('POST', '/v1/auth/register', { username: 'bench', password, email: 'bench@example.com' })
  const token = (await call('POST', '/v1/auth/login', { username: 'bench', password })).token as string
  const t0 = performance.now()
  let next = 0
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < APPS) {
        const i = next++
        await call('POST', '/v1/apps', { name: `b${i.toString().padStart(5, '0')}` }, token)
      }
    }),
  )
  console.log(`${APPS} apps created in ${((performance.now() - t0) / 1000).toFixed(1)} s`)

  const apiMs: number[] = []
  for (let i = 0; i < 20; i++) {
    const s = performance.now()
    const res = await request(`${base}/v1/overview/apps`, { headers: { authorization: `Bearer ${token}` } })
    await res.body.text()
    apiMs.push(performance.now() - s)
  }

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
  try {
    const ctx = await browser.newContext()
    await ctx.request.post(`${base}/v1/auth/session`, { data: { username: 'bench', password } })
    const page = await ctx.newPage()
    // The list's first page: 100 rows (web/src/apps.tsx), the others behind "Show more" or the filter.
    const shown = Math.min(APPS, 100)
    const pageMs: number[] = []
    for (let i = 0; i < 6; i++) {
      const s = performance.now()
      await page.goto(`${base}/`)
      await page.locator(`table.apps tbody tr:nth-child(${shown})`).waitFor({ timeout: 60_000 })
      // The first load warms the browser's and the server's caches: not counted.
      if (i > 0) pageMs.push(performance.now() - s)
    }
    // Where the last load's time went, in the page's clock (ms from the navigation's start).
    const phases = await page.evaluate<string>(`(() => {
      const nav = performance.getEntriesByType('navigation')[0]
      const res = performance.getEntriesByType('resource')
      const span = (part) => { const r = res.find((x) => x.name.includes(part)); return r ? r.startTime.toFixed(0) + '-' + r.responseEnd.toFixed(0) : 'n/a' }
      return 'html ' + nav.responseEnd.toFixed(0) + ', scripts run ' + nav.domContentLoadedEventEnd.toFixed(0) + ', session ' + span('/v1/auth/session') + ', apps ' + span('/v1/overview/apps') + ', drawn ' + performance.now().toFixed(0)
    })()`)
    console.log(`last load, ms from the navigation: ${phases}`)
    if (APPS > shown) {
      // The next page is one click away.
      await page.getByRole('button', { name: /^Show \d+ more$/ }).click()
      await page.locator(`table.apps tbody tr:nth-child(${Math.min(APPS, shown * 2)})`).waitFor({ timeout: 10_000 })
    }
    const js = readdirSync(join(dir, 'assets'))
      .filter((f) => f.endsWith('.js'))
      .reduce((n, f) => n + gzipSync(readFileSync(join(dir, 'assets', f))).length, 0)
    console.log(`GET /v1/overview/apps with ${APPS} apps: p50 ${median(apiMs).toFixed(0)} ms, p99 ${pct(apiMs, 99).toFixed(0)} ms`)
    console.log(
      `first page (navigation -> ${shown} rows of ${APPS} apps drawn): median of 5 ${median(pageMs).toFixed(0)} ms (goal < ${TARGET.firstPageMs} ms) [${pageMs.map((m) => m.toFixed(0)).join(', ')}]`,
    )
    console.log(`the page's JavaScript: ${(js / 1024).toFixed(1)} KB gzipped (goal < ${TARGET.jsGzipKb} KB)`)
  } finally {
    await browser.close()
    await app.close()
  }
} finally {
  await projector.stop().catch(() => {})
  await store.destroy().catch(() => {})
  await store.close().catch(() => {})
  await pool.end().catch(() => {})
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((err) => console.error(`could not drop ${dbName}: ${err.message}`))
  await admin.end()
}
