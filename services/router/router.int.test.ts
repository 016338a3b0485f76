/**
 * The router against the real nginx and Swarm that `make test` started: a test controller,
 * `builds:create` of a busybox httpd image (with a CGI script that prints what the app sees), the
 * scheduler and the publisher on the same event store, and the router writing the test nginx's
 * routes. Every request goes to 127.0.0.1:<router port> with a Host header.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { ROUTER_STREAM, type RouteServedData } from '../../domain/platform/events.js'
import { streamId, type RecordedEvent } from '../../events/index.js'
import { waitFor } from '../../projections/index.js'
import { buildTestImage, removeImage, testDocker, testEngine, testRegistry } from '../builder/testing.js'
import { registerAndLogin, startEngineController, type TestController } from '../controller/testing.js'
import { Publisher } from '../publisher/publisher.js'
import { removeNamespaceServices, startTestScheduler } from '../scheduler/testing.js'
import type { RouteTable } from './model.js'
import type { StartRouterOptions } from './service.js'
import { startTestNginx, startTestRouter, testRouterPort } from './testing.js'
import type { SpecOptions } from '../scheduler/model.js'
import { certMaker } from '../../test/certs.js'
import { get, requestLoop, type Answer } from '../../test/http.js'

// Deploys and rollbacks on Swarm, on a machine others load too.
t.setTimeout(480_000)

const docker = testDocker()
const engine = testEngine()
const DOMAIN = 'wharf.localhost'

/** `/who.txt` names the container; `/cgi-bin/env` prints the CGI environment (the request headers as HTTP_*). */
const DOCKERFILE = [
  'FROM busybox',
  'RUN mkdir -p /www/cgi-bin && echo hello > /www/index.html \\',
  ` && printf '#!/bin/sh\\necho "Content-Type: text/plain"\\necho\\nenv\\n' > /www/cgi-bin/env && chmod +x /www/cgi-bin/env`,
  'CMD ["httpd", "-f", "-p", "5000", "-h", "/www"]',
  '',
].join('\n')
/** httpd as PID 1 ignores SIGTERM (drained for the grace period, then killed). */
const PROCFILE = { web: 'echo "$HOSTNAME" > /www/who.txt; exec httpd -f -p $PORT -h /www' }
/** A process that exits the moment SIGTERM comes: what is in flight to it when it stops is lost unless retried elsewhere. */
const PROCFILE_ABRUPT = { web: `echo "$HOSTNAME" > /www/who.txt; httpd -f -p $PORT -h /www & trap 'exit 0' TERM; wait` }

/** The worker processes of an nginx master (children whose title says `worker process`). */
function workersOf(master: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === master && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('worker process')) out.push(Number(name))
    } catch {
      // Gone meanwhile.
    }
  }
  return out
}

interface Kit {
  c: TestController
  token: string
  port: number
}

async function setup(t: Test, spec: Partial<SpecOptions> = {}): Promise<Kit> {
  const c = await startEngineController(t, { WHARF_DOMAIN: DOMAIN })
  t.teardown(() => removeNamespaceServices(c.deps.cfg.namespace))
  const token = await registerAndLogin(c, 'alice')
  const publisher = await Publisher.start({ docker: engine, store: c.deps.store, pool: c.deps.pool, log: c.deps.log, namespace: c.deps.cfg.namespace })
  t.teardown(() => publisher.stop())
  // A short grace period: the drain is what is tested, not its length.
  await startTestScheduler(t, c, { spec: { stopGraceMs: 3_000, updateMonitorMs: 1_000, ...spec } })
  return { c, token, port: testRouterPort() }
}

async function createApp(t: Test, k: Kit, prefix: string): Promise<string> {
  const app = `${prefix}${Date.now().toString(36).slice(-5)}${Math.floor(Math.random() * 1e3)}`
  const res = await k.c.call('POST', '/v1/apps', { token: k.token, body: { name: app } })
  if (res.status !== 201) throw new Error(`create ${app}: ${res.status} ${JSON.stringify(res.body)}`)
  t.teardown(async () => {
    for (const img of await docker.listImages({ filters: { reference: [`${testRegistry()}/${app}`] } }))
      for (const tag of img.RepoTags ?? []) await removeImage(docker, tag)
  })
  return app
}

async function call(k: Kit, app: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await k.c.call(method, `/v1/apps/${app}${path}`, { token: k.token, ...(body === undefined ? {} : { body }) })
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}

async function build(t: Test, k: Kit, app: string, procfile: Record<string, string>): Promise<number> {
  const image = await buildTestImage(t, docker, DOCKERFILE)
  return (await call(k, app, 'POST', '/builds', { image, procfile, port: 5000 })).release
}

async function runtimeEvents(k: Kit, app: string): Promise<RecordedEvent[]> {
  return (await k.c.deps.store.readStream(streamId('runtime', app))).events
}

async function outcome(k: Kit, app: string, release: number, afterSeq = 0, timeoutMs = 60_000): Promise<RecordedEvent> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const e = (await runtimeEvents(k, app)).find(
      (e) => e.seq > afterSeq && (e.type === 'DeployCompleted' || e.type === 'DeployFailed') && (e.data as { release: number }).release === release,
    )
    if (e) return e
    if (Date.now() > deadline) throw new Error(`no deploy outcome of v${release}`)
    await sleep(100)
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined && v !== false) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await sleep(50)
  }
}

const statusIs =
  (k: Kit, host: string, status: number, path = '/index.html') =>
  async () =>
    (await get(k.port, host, path)).status === status

/** GET over HTTPS on the test router's TLS port with SNI `host`, trusting only `ca`; answers the served certificate's fingerprint too. */
function getTls(host: string, ca: string, path = '/'): Promise<Answer & { fingerprint: string }> {
  const port = Number(process.env.WHARF_TEST_ROUTER_TLS_PORT)
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, servername: host, headers: { host }, ca, agent: false, timeout: 5_000 }, (res) => {
      const fingerprint = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

t.test('routes by host and domain with no reload; 404, 503, maintenance, headers, TLS by SNI, scale, bad input refused, nginx killed', async (t) => {
  const k = await setup(t)
  let breakIt = false
  const app = await createApp(t, k, 'rt')
  const applied: { done: number; ok: boolean | 'unchanged'; servers?: number }[] = []
  const running = await startTestRouter(t, k.c, {
    domain: DOMAIN,
    // Bad input as nginx sees it: a peer that is no address:port pair; nginx refuses the whole set.
    transform: (cs) => (breakIt ? { ...cs, apps: { ...cs.apps, [app]: { s: 'up', b: 0, t: 60, p: ['127.0.0.1:5000;evil'] } } } : cs),
    onApplied: ({ result, done, table }) => applied.push({ done, ok: result.ok, servers: table.routes.find((r) => r.app === app)?.servers.length }),
  })
  const host = `${app}.${DOMAIN}`
  // Route changes go to nginx's memory: the workers seen now serve until nginx is killed below.
  const master = running.nginx.masterPid()!
  const workers = workersOf(master).sort()
  t.ok(workers.length > 0, `nginx workers ${workers.join(', ')}`)

  t.equal((await get(k.port, 'nobody.example.com')).status, 404, 'an unknown host: the default 404')
  await until('a created app without a build answers 503', statusIs(k, host, 503))
  t.match((await get(k.port, host)).body, /has no web process running/, 'a plain page says why')

  const v2 = await build(t, k, app, PROCFILE)
  t.equal((await outcome(k, app, v2)).type, 'DeployCompleted')
  await until('the app answers at <app>.<domain>', statusIs(k, host, 200))
  t.equal((await get(k.port, host, '/index.html')).body, 'hello\n')
  t.equal((await get(k.port, `other.${DOMAIN}`)).status, 404, 'another app name: 404')

  // What the app sees.
  const env = (await get(k.port, host, '/cgi-bin/env')).body
  t.match(env, /HTTP_X_FORWARDED_FOR=127\.0\.0\.1/, 'X-Forwarded-For')
  t.match(env, /HTTP_X_FORWARDED_PROTO=http\b/, 'X-Forwarded-Proto')
  t.match(env, new RegExp(`HTTP_X_FORWARDED_HOST=${host.replace(/\./g, '\\.')}`), 'X-Forwarded-Host')
  t.match(env, new RegExp(`HTTP_X_FORWARDED_PORT=${k.port}\\b`), 'X-Forwarded-Port')
  t.match(env, /HTTP_X_REQUEST_ID=[0-9a-f]{32}/, 'X-Request-Id')
  t.match(env, new RegExp(`HTTP_HOST=${host.replace(/\./g, '\\.')}`), 'Host kept')

  // A custom domain.
  const custom = `${app}.example.test`
  t.equal((await get(k.port, custom)).status, 404, 'before domains:add: 404')
  await call(k, app, 'POST', '/domains', { domain: custom })
  await until('the custom domain answers', statusIs(k, custom, 200))

  // HTTPS by SNI: certs:add, certs:attach; other names are refused in the handshake.
  const { make } = certMaker(t)
  const pair = make({ cn: custom, sans: [custom] })
  await t.rejects(getTls(custom, pair.cert), 'no certificate attached: the handshake is refused')
  const added = await call(k, app, 'POST', '/certs', { certificate: pair.cert, key: pair.key })
  await call(k, app, 'POST', `/certs/${added.cert.name}/attach`, { domain: custom })
  const tls = await until('HTTPS answers for the attached domain', async () => getTls(custom, pair.cert, '/cgi-bin/env'), 10_000)
  t.equal(tls.status, 200)
  t.equal(tls.fingerprint, added.cert.fingerprint, 'the attached certificate is served')
  t.match(tls.body, /HTTP_X_FORWARDED_PROTO=https\b/, 'X-Forwarded-Proto https')
  await t.rejects(getTls(host, pair.cert), 'another host of the app (no certificate for it): refused')
  await t.rejects(getTls('unknown.example.test', pair.cert), 'an unknown SNI name: refused in the handshake')
  await call(k, app, 'POST', `/certs/${added.cert.name}/detach`, { domain: custom })
  await until(
    'detached: HTTPS refused again',
    async () =>
      getTls(custom, pair.cert).then(
        () => false,
        () => true,
      ),
    10_000,
  )
  t.equal((await get(k.port, custom)).status, 200, 'plain HTTP still answers')

  // Maintenance.
  await call(k, app, 'POST', '/maintenance', { enabled: true })
  await until('maintenance: 503', statusIs(k, host, 503))
  // Seen from one new worker: the reload is under way; once the router says done, every worker has it.
  await running.router.idle()
  t.match((await get(k.port, custom)).body, /down for maintenance/, 'a plain page, on every host of the app')
  await call(k, app, 'POST', '/maintenance', { enabled: false })
  await until('maintenance off: 200', statusIs(k, host, 200))

  // ps:scale web=3: requests reach three containers.
  let seq = (await runtimeEvents(k, app)).at(-1)!.seq
  await call(k, app, 'POST', '/formation', { web: 3 })
  t.equal((await outcome(k, app, v2, seq)).type, 'DeployCompleted', 'web=3')
  const seen = await until(
    'three containers answer',
    async () => {
      const who = new Set<string>()
      for (let i = 0; i < 30; i++) who.add((await get(k.port, host, '/who.txt')).body.trim())
      return who.size === 3 ? who : undefined
    },
    15_000,
  )
  t.equal(seen.size, 3, `requests reached three containers (${[...seen].join(', ')})`)

  // A change set nginx refuses (bad input): nothing of it applied, the last good routes serve; the next change retries.
  breakIt = true
  const failuresBefore = running.router.failures
  const broken = `${app}-2.example.test`
  await call(k, app, 'POST', '/domains', { domain: broken })
  await until('the router tried and failed', async () => running.router.failures > failuresBefore, 10_000)
  t.equal((await get(k.port, host, '/index.html')).status, 200, 'the app still answers')
  t.equal((await get(k.port, broken)).status, 404, 'the change is not served')
  breakIt = false
  await call(k, app, 'POST', '/domains', { domain: `${app}-3.example.test` })
  await until('the next change applies both', statusIs(k, broken, 200), 10_000)
  t.equal(running.router.failures, 0)
  t.same(workersOf(master).sort(), workers, 'no reload: the same nginx workers served every change')

  // nginx stopped: the router does not start it (its supervisor does, here the test); once it runs
  // again, the router sees an empty dict and posts the full table.
  const pid = running.nginx.masterPid()!
  t.ok(pid, 'nginx runs')
  process.kill(pid, 'SIGTERM')
  await until('nginx gone', async () => !running.nginx.masterPid(), 10_000)
  t.match(await running.health(), { ok: false, reason: /nginx is not running/ }, 'the router is unhealthy while nginx is down')
  await sleep(2_500)
  t.equal(running.nginx.masterPid(), undefined, 'the router did not start nginx (its watchdog ran twice meanwhile)')
  await startTestNginx(k.c)
  await until('nginx back, serving the routes', async () => running.nginx.masterPid() !== pid && (await statusIs(k, host, 200)()), 20_000)
  t.pass(`nginx restarted (pid ${pid} -> ${running.nginx.masterPid()}) with the routes`)
  await until('the router healthy again', async () => (await running.health()).ok, 10_000)
  t.equal((await get(k.port, custom)).status, 200, 'custom domains too')

  // web=0: 503.
  seq = (await runtimeEvents(k, app)).at(-1)!.seq
  await call(k, app, 'POST', '/formation', { web: 0 })
  await until('web=0: 503', statusIs(k, host, 503), 20_000)
  await running.router.idle()
  const after = []
  for (let i = 0; i < 20; i++) after.push((await get(k.port, host)).status)
  t.same(
    after,
    after.map(() => 503),
    'and stays 503',
  )
  t.match((await get(k.port, host)).body, /no web process running/)
  t.ok(applied.length > 0)
})

t.test(
  'a kept-alive client that never retries sees no failed request through a config deploy, a scale 3 -> 1 -> 3, a rollback and a router restart',
  async (t) => {
    // A drain time above the router's update latency on a loaded machine; the grace after SIGTERM is short.
    const k = await setup(t, { drainMs: 3_000 })
    const app = await createApp(t, k, 'zd')
    const host = `${app}.${DOMAIN}`
    const tables: { done: number; table: RouteTable; ok: boolean | 'unchanged' }[] = []
    const onApplied: StartRouterOptions['onApplied'] = ({ result, done, table }) => void tables.push({ done, table, ok: result.ok })
    let running = await startTestRouter(t, k.c, { domain: DOMAIN, onApplied })
    const master = running.nginx.masterPid()!
    const workers = workersOf(master).sort()
    const routed = (n: number) => async () => tables.at(-1)?.table.routes.find((r) => r.app === app)?.servers.length === n
    // The process dies the moment SIGTERM comes: only the drain (out of the routes first, SIGTERM later) keeps requests whole.
    const v2 = await build(t, k, app, PROCFILE_ABRUPT)
    t.equal((await outcome(k, app, v2)).type, 'DeployCompleted')
    let seq = (await runtimeEvents(k, app)).at(-1)!.seq
    await call(k, app, 'POST', '/formation', { web: 3 })
    t.equal((await outcome(k, app, v2, seq)).type, 'DeployCompleted')
    await until('three containers routed', routed(3), 20_000)
    await until('the app answers', statusIs(k, host, 200, '/who.txt'))

    // Until the containers announced are the wanted number (the old ones drained and stopped) and routed.
    const settled = async (what: string, n: number) => {
      await until(
        `${what}: settled`,
        async () => (await k.c.deps.pool.query(`SELECT count(*)::int AS n FROM rm_containers.containers WHERE app = $1`, [app])).rows[0].n === n && routed(n)(),
        30_000,
      )
    }
    /** One fault under a loop of its own: 8 kept-alive connections, never sending a failed request again (as wrk). */
    const underLoad = async (what: string, fault: () => Promise<void>) => {
      const loop = requestLoop(k.port, host, { path: '/who.txt', intervalMs: 3, connections: 8, retry: false })
      await sleep(300)
      await fault()
      // A fault that is over quickly (the router restart) still gets its share of requests after it.
      while (loop.counts.ok + loop.counts.failed < 1_500) await sleep(100)
      await loop.stop()
      const total = loop.counts.ok + loop.counts.failed
      t.ok(total > 1_000, `${what}: ${total} requests, ${loop.counts.bodies.size} containers answered`)
      t.equal(loop.counts.failed, 0, `${what}: no failed request out of ${total}${loop.failures.length ? `: ${loop.failures.slice(0, 10).join(' | ')}` : ''}`)
    }

    await underLoad('a config deploy (three containers)', async () => {
      seq = (await runtimeEvents(k, app)).at(-1)!.seq
      await call(k, app, 'POST', '/config', { values: { GREETING: 'v3' } })
      t.equal((await outcome(k, app, v2 + 1, seq)).type, 'DeployCompleted', 'config deploy')
      await settled('config deploy', 3)
    })
    await underLoad('a scale 3 -> 1 -> 3', async () => {
      for (const web of [1, 3]) {
        seq = (await runtimeEvents(k, app)).at(-1)!.seq
        await call(k, app, 'POST', '/formation', { web })
        t.equal((await outcome(k, app, v2 + 1, seq)).type, 'DeployCompleted', `web=${web}`)
        await settled(`web=${web}`, web)
      }
    })
    await underLoad('a rollback', async () => {
      seq = (await runtimeEvents(k, app)).at(-1)!.seq
      await call(k, app, 'POST', '/releases/rollback', {})
      t.equal((await outcome(k, app, v2 + 2, seq)).type, 'DeployCompleted', 'rollback to v2 (as v4)')
      await settled('rollback', 3)
    })
    await underLoad('a router restart', async () => {
      await running.stop()
      await sleep(500)
      running = await startTestRouter(t, k.c, { domain: DOMAIN, onApplied })
      await running.router.idle()
      t.ok(running.router.epoch, 'the new router posted its full table')
    })
    t.equal(running.nginx.masterPid(), master, 'nginx was never restarted')
    t.same(workersOf(master).sort(), workers, 'nor reloaded: the same workers served throughout')

    // ContainerStopping -> routes without it (nginx serving them): how soon a stopping container is out.
    const events = await runtimeEvents(k, app)
    const portOf = new Map(
      events.filter((e) => e.type === 'ContainerStarted').map((e) => [(e.data as { container: string }).container, (e.data as { port: number }).port]),
    )
    const drains: number[] = []
    for (const e of events.filter((e) => e.type === 'ContainerStopping')) {
      const port = portOf.get((e.data as { container: string }).container)
      const at = Date.parse(e.occurredAt)
      const out = tables.find((x) => x.done >= at && x.ok === true && !x.table.routes.find((r) => r.app === app)?.servers.some((s) => s.port === port))
      if (out) drains.push(out.done - at)
    }
    drains.sort((a, b) => a - b)
    t.ok(drains.length >= 5, `drain measured for ${drains.length} stops`)
    t.comment(`ContainerStopping -> nginx serving without it: p50 ${drains[Math.floor(drains.length / 2)]} ms, max ${drains.at(-1)} ms (${drains.join(', ')})`)
  },
)

t.test('a burst of changes is coalesced into few change sets; a router started again catches up with what changed while it was down', async (t) => {
  const c = await startEngineController(t, { WHARF_DOMAIN: DOMAIN })
  const token = await registerAndLogin(c, 'alice')
  const k: Kit = { c, token, port: testRouterPort() }
  const app = await createApp(t, k, 'co')
  let reloads = 0
  const first = await startTestRouter(t, c, { domain: DOMAIN, onApplied: ({ result }) => void (result.ok === true && reloads++) })
  await until('the app is routed', statusIs(k, `${app}.${DOMAIN}`, 503))
  reloads = 0
  const domains = Array.from({ length: 20 }, (_, i) => `d${i}.${app}.example.test`)
  await Promise.all(domains.map((domain) => call(k, app, 'POST', '/domains', { domain })))
  for (const d of domains) await until(`${d} routed`, statusIs(k, d, 503), 10_000)
  await first.router.idle()
  t.ok(reloads >= 1 && reloads < domains.length, `20 domains added at once: ${reloads} change sets`)

  // DomainAdded and DomainRemoved go into the routes straight from their events: routed while the
  // domains read model is held back (its table locked against writes), as containers are.
  const held = await c.deps.pool.connect()
  try {
    await held.query('BEGIN')
    await held.query('LOCK TABLE rm_domains.domains IN EXCLUSIVE MODE')
    const direct = `direct.${app}.example.test`
    const append = (type: 'DomainAdded' | 'DomainRemoved', domain: string) =>
      c.deps.store.append(streamId('app', app), [{ type, data: { app, domain } }], { expectedVersion: 'any', actor: 'system:router-test' })
    await append('DomainAdded', direct)
    await until('a domain added is routed with its read model held back', statusIs(k, direct, 503), 5_000)
    await append('DomainRemoved', domains[1]!)
    await until('a domain removed is unrouted with its read model held back', statusIs(k, domains[1]!, 404), 5_000)
    t.pass('domains changed from their events, not from the read model')
  } finally {
    await held.query('ROLLBACK')
    held.release()
  }

  // The router stops; nginx keeps serving; changes meanwhile are caught up by the next router.
  await first.stop()
  t.equal((await get(k.port, domains[0]!)).status, 503, 'nginx serves on with the router stopped')
  const late = `late.${app}.example.test`
  await call(k, app, 'POST', '/domains', { domain: late })
  await call(k, app, 'DELETE', `/domains/${domains[0]}`)
  await sleep(300)
  t.equal((await get(k.port, late)).status, 404, 'not routed while the router is down')
  await startTestRouter(t, c, { domain: DOMAIN })
  await until('the domain added meanwhile is routed', statusIs(k, late, 503), 10_000)
  await until('the domain removed meanwhile is not', statusIs(k, domains[0]!, 404), 10_000)
})

t.test('RouteServed: recorded once a change of the served containers is live, once per change; the trace ends with it', async (t) => {
  const k = await setup(t)
  const app = await createApp(t, k, 'rs')
  const host = `${app}.${DOMAIN}`
  const first = await startTestRouter(t, k.c, { domain: DOMAIN })
  const served = async () =>
    (await k.c.deps.store.readStream(ROUTER_STREAM)).events.filter((e) => (e.data as { app: string }).app === app) as RecordedEvent<
      'RouteServed',
      RouteServedData
    >[]
  const v = await build(t, k, app, { web: 'echo "$GREETING" > /www/greeting.txt; exec httpd -f -p $PORT -h /www' })
  t.equal((await outcome(k, app, v)).type, 'DeployCompleted')
  const started = await until('a container started', async () => (await runtimeEvents(k, app)).find((e) => e.type === 'ContainerStarted'))
  const record = await until('the router recorded it', async () => (await served()).find((e) => e.data.servers.length === 1))
  const c = started.data as { container: string; host: string; port: number }
  t.same(record.data.servers, [{ container: c.container, release: v, host: c.host, port: c.port }], 'the container, its release and address')
  t.ok(record.seq > started.seq, 'after the container started')
  t.equal(record.actor, 'system:router')
  // The record is live: a new connection gets the new container.
  t.equal((await get(k.port, host, '/index.html')).status, 200, 'served when recorded')

  // No change of the served set, no record: a render of the same routes, an unrelated change.
  const count = (await served()).length
  await first.router.sync()
  await call(k, app, 'POST', '/domains', { domain: `x.${app}.example.test` })
  await until('the domain is routed', statusIs(k, `x.${app}.example.test`, 200), 10_000)
  await first.router.idle()
  t.equal((await served()).length, count, 'nothing recorded without a change of the served containers')

  // A router started again records nothing it recorded before (it starts from the log).
  await waitFor(k.c.deps.pool, await k.c.deps.store.lastSeq(), { projections: ['eventlog'] })
  await first.stop()
  const second = await startTestRouter(t, k.c, { domain: DOMAIN })
  await second.router.sync()
  t.equal((await served()).length, count, 'a restarted router records nothing again')

  // config:set: the trace ends with the router serving only the new release.
  await k.c.call('POST', `/v1/apps/${app}/config`, { token: k.token, body: { values: { GREETING: 'hi' } }, headers: { 'x-request-id': `set-${app}` } })
  const trace = await until(
    'the config:set trace is served',
    async () => {
      const res = await k.c.call('GET', `/v1/apps/${app}/trace?ref=set-${app}`, { token: k.token })
      return res.body.status === 'served' ? res.body : res.body.status === 'failed' ? Promise.reject(new Error(res.body.reason)) : undefined
    },
    60_000,
  )
  // The router may serve the new container alone before or after the scheduler sees Swarm's update complete: the order of those two varies.
  t.same(
    trace.steps.map((s: { type: string }) => s.type).sort(),
    ['ConfigSet', 'ReleaseCreated', 'DeployStarted', 'ContainerStarted', 'DeployCompleted', 'RouteServed'].sort(),
    `the chain: ${trace.steps.map((s: { type: string; offsetMs: number }) => `${s.type} +${s.offsetMs}`).join(', ')}`,
  )
  t.same(
    trace.steps.slice(0, 4).map((s: { type: string }) => s.type),
    ['ConfigSet', 'ReleaseCreated', 'DeployStarted', 'ContainerStarted'],
  )
  const routed = trace.steps.find((s: { type: string }) => s.type === 'RouteServed')
  t.match(routed, { data: { servers: [{ release: v + 1 }] } }, 'only the new release served')
  t.equal(routed.data.servers.length, 1)
  const bodies = new Set<string>()
  for (let i = 0; i < 20; i++) bodies.add((await get(k.port, host, '/greeting.txt')).body)
  t.same([...bodies], ['hi\n'], 'every request after the record reaches the new release')
  const perChange = (await served()).length - count
  t.ok(perChange >= 1 && perChange <= 3, `a rolling deploy of one container: ${perChange} records (start-first: both, then the new one)`)
})
