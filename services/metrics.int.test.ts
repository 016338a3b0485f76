/**
 * `/metrics` of real service processes, as `make up` (one process) or a multi-host platform (`--only`)
 * runs them: the controller's process (projector + controller) on the controller port, and a
 * scheduler process on its own metrics listener. Both parse as the Prometheus text format; a
 * `builds:create` and a `config:set` move the deploy, event and HTTP series of the process that did
 * the work; who may scrape is checked.
 */
import type { ChildProcess } from 'node:child_process'
import type { PromFamily } from 'parse-prometheus-text-format'
import t from 'tap'

// Two service processes and a deploy on a loaded machine: more than tap's default two minutes. Set
// before anything heavy is loaded (the modules below are imported after it).
t.setTimeout(300_000)

const { spawn } = await import('node:child_process')
const { chmodSync, mkdtempSync, rmSync } = await import('node:fs')
const { tmpdir } = await import('node:os')
const { join } = await import('node:path')
const { default: parse } = await import('parse-prometheus-text-format')
const { request } = await import('undici')
const { pathsFor } = await import('../core/paths.js')
const { wharfCatalogue } = await import('../domain/index.js')
const { EventSubjects, JetStreamEventStore } = await import('../events/index.js')
const { stopPidfile } = await import('../infra/proc.js')
const { freePort } = await import('../infra/test-env.js')
const { freshDatabase, testNatsUrl, uniqueName, until } = await import('../test/harness.js')
const { buildTestImage, removeImage, testDocker, testRegistry, testRegistryEnv } = await import('./builder/testing.js')
const { removeNamespaceServices } = await import('./scheduler/testing.js')

const docker = testDocker()
const START_MS = 120_000

function startServices(env: NodeJS.ProcessEnv, args: string[]): { child: ChildProcess; out: string[] } {
  // The compiled services (make test builds them first): starting from the sources through tsx takes a minute on a loaded machine.
  const child = spawn(process.execPath, [new URL('../dist/services/main.js', import.meta.url).pathname, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const out: string[] = []
  child.stdout!.on('data', (d: Buffer) => out.push(d.toString()))
  child.stderr!.on('data', (d: Buffer) => out.push(d.toString()))
  return { child, out }
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; text: string }> {
  const res = await request(url, { headers })
  return { status: res.statusCode, type: String(res.headers['content-type']), text: await res.body.text() }
}

/** A scrape: the families as the parser reads them, and the text (for histograms' `_count`, which the parser leaves out). */
interface Scrape {
  families: PromFamily[]
  text: string
}

/** The sum of the samples named `name` whose labels include `labels` (a histogram's count: `<name>_count`). */
function value(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const line of s.text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3])
  }
  return sum
}

async function families(url: string): Promise<Scrape> {
  const r = await scrape(url)
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${r.text}`)
  return { families: parse(r.text), text: r.text }
}

t.test('every process serves /metrics: families, moving series, and who may scrape', async (t) => {
  const namespace = uniqueName('met').toLowerCase()
  const home = mkdtempSync(join(tmpdir(), 'wharf-met-'))
  chmodSync(home, 0o755)
  t.teardown(async () => {
    await stopPidfile(pathsFor(home).nginx.pid)
    rmSync(home, { recursive: true, force: true })
  })
  t.teardown(async () => {
    await removeNamespaceServices(namespace)
    const store = await JetStreamEventStore.connect({ servers: testNatsUrl(), catalogue: wharfCatalogue(), subjects: new EventSubjects(namespace) })
    await store.destroy()
    await store.close()
  })
  const port = await freePort()
  const metricsPort = await freePort()
  const env: NodeJS.ProcessEnv = {
    WHARF_NATS_URL: testNatsUrl(),
    WHARF_DATABASE_URL: await freshDatabase(t, 'met'),
    WHARF_CONTROLLER_PORT: String(port),
    WHARF_BUILDER_PORT: String(await freePort()),
    WHARF_SYSLOG_PORT: String(await freePort()),
    WHARF_ROUTER_PORT: String(await freePort()),
    WHARF_ROUTER_TLS_PORT: String(await freePort()),
    WHARF_DOCKER_HOST: process.env.WHARF_TEST_DOCKER_HOST,
    ...testRegistryEnv(),
    WHARF_NAMESPACE: namespace,
    WHARF_HOME: home,
  }
  const ctl = startServices(env, ['--only', 'projector,controller'])
  t.teardown(() => void ctl.child.kill('SIGKILL'))
  const api = `http://127.0.0.1:${port}`
  const ctlMetrics = `${api}/metrics`
  const schMetrics = `http://127.0.0.1:${metricsPort}/metrics`
  const started = async (what: string, url: string, p: { out: string[] }) => {
    try {
      await until(what, async () => (await request(url)).statusCode === 200, START_MS)
    } catch (err) {
      throw new Error(`${(err as Error).message}; it printed: ${p.out.join('').slice(-2000)}`)
    }
  }
  await started('the controller', `${api}/healthz`, ctl)
  // The scheduler reads the read models: it starts once the projector (in the first process) made them.
  const sch = startServices({ ...env, WHARF_METRICS_PORT: String(metricsPort) }, ['--only', 'scheduler'])
  t.teardown(() => void sch.child.kill('SIGKILL'))
  await started('the scheduler metrics', schMetrics, sch)

  const call = async (method: string, path: string, token?: string, body?: unknown) => {
    const res = await request(`${api}${path}`, {
      method: method as 'GET',
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
    const text = await res.body.text()
    return { status: res.statusCode, body: text ? JSON.parse(text) : undefined }
  }
  await call('POST', '/v1/auth/register', undefined, { username: 'alice', password: 'correct horse', email: 'a@example.com' })
  const admin = (await call('POST', '/v1/auth/login', undefined, { username: 'alice', password: 'correct horse' })).body.token as string
  await call('POST', '/v1/auth/register', undefined, { username: 'bob', password: 'correct horse', email: 'b@example.com' })
  const bob = (await call('POST', '/v1/auth/login', undefined, { username: 'bob', password: 'correct horse' })).body.token as string

  // The text format, with the families of the issue (some only in the process that records them).
  const first = await scrape(ctlMetrics)
  t.equal(first.status, 200)
  t.match(first.type, /^text\/plain; version=0\.0\.4/)
  const c0 = parse(first.text)
  t.ok(c0.length > 20, `the parser reads ${c0.length} families`)
  const names = new Set(c0.map((f) => f.name))
  for (const n of [
    'wharf_http_requests_total',
    'wharf_http_request_duration_seconds',
    'wharf_events_appended_total',
    'wharf_projection_lag_events',
    'wharf_consumer_pending_messages',
    'wharf_builds_total',
    'wharf_build_duration_seconds',
    'wharf_deploys_total',
    'wharf_deploy_duration_seconds',
    'wharf_route_updates_total',
    'wharf_route_update_duration_seconds',
    'wharf_log_lines_received_total',
    'wharf_log_lines_dropped_total',
    'wharf_drain_deliveries_total',
    'wharf_webhook_deliveries_total',
    'wharf_push_lock_waits_total',
    'wharf_push_lock_wait_seconds',
    'wharf_part_up',
    'process_cpu_seconds_total',
    'nodejs_heap_size_used_bytes',
  ])
    t.ok(names.has(n), `the controller's process has ${n}`)
  for (const f of c0.filter((f) => f.name.startsWith('wharf_'))) if (f.type === 'COUNTER') t.match(f.name, /_total$/, `${f.name}: a counter ends in _total`)
  t.ok(
    c0.find((f) => f.name === 'wharf_projection_lag_events')?.metrics.some((m) => m.labels?.projection === 'apps'),
    'projection lag per read model (apps)',
  )
  t.ok(
    c0.find((f) => f.name === 'wharf_part_up')?.metrics.some((m) => m.labels?.part === 'postgres' && m.value === '1'),
    'Postgres is up',
  )
  const sch0 = await families(schMetrics)
  t.ok(
    sch0.families.some((f) => f.name === 'process_resident_memory_bytes'),
    'the scheduler process has its own process metrics',
  )
  t.equal(value(sch0, 'wharf_deploys_total', { outcome: 'completed' }), 0, 'no deploy yet')

  // A route is labelled by its pattern, never by the URL asked for.
  const app = `met${Date.now().toString(36).slice(-5)}`
  t.equal((await call('POST', '/v1/apps', admin, { name: app })).status, 201)
  t.teardown(async () => {
    for (const img of await docker.listImages({ filters: { reference: [`${testRegistry()}/${app}`] } }))
      for (const tag of img.RepoTags ?? []) await removeImage(docker, tag)
  })
  const image = await buildTestImage(t, docker, 'FROM busybox\nRUN mkdir /www && echo hi > /www/index.html\nCMD ["httpd", "-f", "-p", "5000", "-h", "/www"]\n')
  const built = await call('POST', `/v1/apps/${app}/builds`, admin, { image, procfile: { web: 'exec httpd -f -p $PORT -h /www' }, port: 5000 })
  t.equal(built.status, 201, `builds:create ${JSON.stringify(built.body)}`)
  const sch1 = await until(
    'the deploy counted',
    async () => {
      const f = await families(schMetrics)
      return value(f, 'wharf_deploys_total', { outcome: 'completed' }) + value(f, 'wharf_deploys_total', { outcome: 'failed' }) >= 1 ? f : undefined
    },
    60_000,
  )
  t.equal(value(sch1, 'wharf_deploys_total', { outcome: 'completed' }), 1, 'builds:create: one deploy completed, in the scheduler process')
  t.equal(value(sch1, 'wharf_deploy_duration_seconds_count', { outcome: 'completed' }), 1, '... and timed')
  t.equal(value(sch1, 'wharf_events_appended_total', { type: 'DeployStarted' }), 1, '... DeployStarted appended by the scheduler')

  const c1 = await families(ctlMetrics)
  const route = { method: 'POST', route: '/v1/apps/:app/config' }
  const set = await call('POST', `/v1/apps/${app}/config`, admin, { values: { GREETING: 'hi' } })
  t.equal(set.status, 200, 'config:set')
  const c2 = await families(ctlMetrics)
  t.equal(value(c2, 'wharf_events_appended_total', { type: 'ConfigSet' }) - value(c1, 'wharf_events_appended_total', { type: 'ConfigSet' }), 1, 'ConfigSet +1')
  t.equal(
    value(c2, 'wharf_events_appended_total', { type: 'ReleaseCreated' }) - value(c1, 'wharf_events_appended_total', { type: 'ReleaseCreated' }),
    1,
    'ReleaseCreated +1',
  )
  t.equal(
    value(c2, 'wharf_http_requests_total', { ...route, status: '200' }) - value(c1, 'wharf_http_requests_total', { ...route, status: '200' }),
    1,
    'HTTP by route pattern',
  )
  t.equal(
    value(c2, 'wharf_http_request_duration_seconds_count', { ...route, status: '200' }),
    value(c2, 'wharf_http_requests_total', { ...route, status: '200' }),
    '... timed',
  )
  t.notOk(
    c2.families.find((f) => f.name === 'wharf_http_requests_total')?.metrics.some((m) => m.labels?.route?.includes(app)),
    'no series names the app in its route',
  )
  const sch2 = await until(
    'the second deploy',
    async () => {
      const f = await families(schMetrics)
      return value(f, 'wharf_deploys_total', { outcome: 'completed' }) >= 2 ? f : undefined
    },
    60_000,
  )
  t.equal(value(sch2, 'wharf_deploys_total', { outcome: 'failed' }), 0, 'config:set: the second deploy completed, none failed')

  // Who may scrape: through the router (X-Forwarded-For) only with an admin's token.
  t.equal((await scrape(ctlMetrics, { 'x-forwarded-for': '203.0.113.9' })).status, 401, 'through the router without a token: 401')
  t.equal((await scrape(ctlMetrics, { 'x-forwarded-for': '203.0.113.9', authorization: `Bearer ${bob}` })).status, 403, "a user's token: 403")
  t.equal((await scrape(ctlMetrics, { authorization: 'Bearer not-a-token' })).status, 401, 'a wrong token: 401')
  t.equal((await scrape(ctlMetrics, { 'x-forwarded-for': '203.0.113.9', authorization: `Bearer ${admin}` })).status, 200, "an admin's token: 200")
  t.equal((await scrape(schMetrics, { 'x-forwarded-for': '203.0.113.9' })).status, 403, 'a service listener answers this host only')
  t.equal((await scrape(`http://127.0.0.1:${metricsPort}/other`)).status, 404, '... and only /metrics')
})
