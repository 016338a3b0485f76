import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { JetStreamEventStore } from '../events/jetstream.js'
import { wharfCatalogue } from '../domain/index.js'
import { EventSubjects } from '../events/index.js'
import { pathsFor } from '../core/paths.js'
import { loadConfig } from '../core/config.js'
import { nginx as nginxPart } from '../infra/parts/nginx.js'
import { contextFor, up } from '../infra/platform.js'
import { stopPidfile } from '../infra/proc.js'
import { freePort } from '../infra/test-env.js'
import { freshDatabase, testNatsUrl, testS3, uniqueName, until } from '../test/harness.js'

/** The services process as `make up` runs it: one Node process, config from the environment. */

interface Proc {
  child: ChildProcess
  lines: Record<string, unknown>[]
  stderr: string[]
  exited: Promise<number | null>
}

function startServices(env: NodeJS.ProcessEnv, args: string[] = []): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./main.ts', import.meta.url).pathname, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: Record<string, unknown>[] = []
  const stderr: string[] = []
  let buf = ''
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString()
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        lines.push({ unparsed: line })
      }
    }
  })
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()))
  // 'close', not 'exit': every line of stdout has been read by then.
  const exited = once(child, 'close').then(([code]) => code as number | null)
  return { child, lines, stderr, exited }
}

/** How long the services may take to start (or to answer what a test waits for), ms. */
const START_MS = 20_000

/** The exit code, or 'timeout' when the process still runs after `ms`. */
function exitedWithin(p: Proc, ms: number): Promise<number | null | 'timeout'> {
  return Promise.race([p.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())])
}

async function baseEnv(t: Test): Promise<{ env: NodeJS.ProcessEnv; port: number; namespace: string }> {
  const port = await freePort()
  const namespace = uniqueName('svc').toLowerCase()
  // A home of its own: the router renders into its nginx (which it starts, on ports of its own), not
  // into the test platform's, whose routes belong to the router tests.
  const home = mkdtempSync(join(tmpdir(), 'wharf-svc-'))
  chmodSync(home, 0o755)
  t.teardown(async () => {
    await stopPidfile(pathsFor(home).nginx.pid)
    rmSync(home, { recursive: true, force: true })
  })
  t.teardown(async () => {
    const store = await JetStreamEventStore.connect({ servers: testNatsUrl(), catalogue: wharfCatalogue(), subjects: new EventSubjects(namespace) })
    await store.destroy()
    await store.close()
  })
  return {
    port,
    namespace,
    env: {
      WHARF_NATS_URL: testNatsUrl(),
      WHARF_DATABASE_URL: await freshDatabase(t, 'svc'),
      WHARF_CONTROLLER_PORT: String(port),
      WHARF_BUILDER_PORT: String(await freePort()),
      WHARF_SYSLOG_PORT: String(await freePort()),
      WHARF_DOCKER_HOST: process.env.WHARF_TEST_DOCKER_HOST,
      WHARF_ROUTER_PORT: String(await freePort()),
      WHARF_ROUTER_TLS_PORT: String(await freePort()),
      WHARF_NAMESPACE: namespace,
      WHARF_HOME: home,
    },
  }
}

t.test('all services: /healthz answers, logs are pino JSON with service names, SIGTERM stops cleanly', async (t) => {
  const { env, port, namespace } = await baseEnv(t)
  // Its own nginx, started as `make up` does before the services (the router never starts it).
  await up(contextFor(loadConfig(env)), { real: [nginxPart], services: false })
  const p = startServices(env)
  t.teardown(() => void p.child.kill('SIGKILL'))
  const health = await until(
    'healthz',
    async () => {
      const res = await request(`http://127.0.0.1:${port}/healthz`, { headers: { 'x-request-id': 'req-abc' } })
      const body = (await res.body.json()) as { status: string; checks: Record<string, { ok: boolean }> }
      return res.statusCode === 200 ? { body, requestId: res.headers['x-request-id'] } : undefined
    },
    START_MS,
  )
  t.equal(health.body.status, 'ok')
  t.same(Object.keys(health.body.checks).sort(), ['consumers', 'nats', 'postgres', 'publisher', 'router', 'services'])
  t.equal(health.requestId, 'req-abc', 'the request id comes back')

  // The projector runs: an event appended now reaches the apps read model.
  const store = await JetStreamEventStore.connect({ servers: testNatsUrl(), catalogue: wharfCatalogue(), subjects: new EventSubjects(namespace) })
  t.teardown(() => store.close())
  await store.append('app.svc', [{ type: 'AppCreated', data: { app: 'svc', owner: 'alice' } }], {
    expectedVersion: 0,
    actor: 'user:alice',
    correlationId: 'corr-1',
  })
  const db = new pg.Client({ connectionString: env.WHARF_DATABASE_URL })
  await db.connect()
  t.teardown(() => db.end())
  const row = await until(
    'apps read model',
    async () => (await db.query('select name, owner from rm_apps.apps')).rows[0] as { name: string } | undefined,
    START_MS,
  )
  t.same(row, { name: 'svc', owner: 'alice' })

  const missing = await request(`http://127.0.0.1:${port}/v1/nope`, { headers: { 'x-request-id': 'req-404' } })
  t.equal(missing.statusCode, 404)
  t.same(await missing.body.json(), { code: 'WHARF_NOT_FOUND', message: 'no route GET /v1/nope' })

  const services = new Set(p.lines.map((l) => l.service).filter(Boolean))
  t.ok(services.has('controller') && services.has('projector'), `log lines name their service (${[...services].join(', ')})`)
  // The log line crosses a pipe: it may arrive a moment after the answer.
  const logged = await until('the request log line', async () => p.lines.find((l) => l.correlationId === 'req-404') ?? undefined, 5_000).catch(() => undefined)
  t.equal(logged?.service, 'controller', 'a request is logged with its correlation id and service')
  t.ok(
    p.lines.every((l) => !('unparsed' in l)),
    'every stdout line is JSON',
  )

  p.child.kill('SIGTERM')
  const code = await exitedWithin(p, 15_000)
  t.equal(code, 0, 'exits 0 after SIGTERM')
  t.ok(
    p.lines.some((l) => l.msg === 'stopped cleanly'),
    'says it stopped cleanly',
  )
  await t.rejects(request(`http://127.0.0.1:${port}/healthz`), 'the port is closed')
})

t.test('SIGTERM while the services are still starting: the started ones stop, the rest never start, exit 0', async (t) => {
  const { env } = await baseEnv(t)
  const p = startServices(env)
  t.teardown(() => void p.child.kill('SIGKILL'))
  await until('the projector started', async () => (p.lines.some((l) => l.msg === 'started' && l.service === 'projector') ? true : undefined), START_MS)
  p.child.kill('SIGTERM')
  const code = await exitedWithin(p, 15_000)
  t.equal(code, 0, 'exits 0')
  t.ok(
    p.lines.some((l) => l.msg === 'stopped cleanly'),
    'says it stopped cleanly',
  )
  t.notOk(
    p.lines.some((l) => l.msg === 'Wharf services running'),
    'does not go on to say it runs',
  )
  t.notOk(
    p.lines.some((l) => l.msg === 'could not start'),
    'no start-up failure',
  )
})

t.test('--only projector runs no HTTP server; --only with an unknown name fails clearly', async (t) => {
  const { env, port } = await baseEnv(t)
  const p = startServices(env, ['--only', 'projector'])
  t.teardown(() => void p.child.kill('SIGKILL'))
  await until('projector started', async () => (p.lines.some((l) => l.msg === 'Wharf services running') ? true : undefined), START_MS)
  await t.rejects(request(`http://127.0.0.1:${port}/healthz`), 'nothing listens on the controller port')
  t.same(p.lines.find((l) => l.msg === 'Wharf services running')?.services, ['projector'])
  p.child.kill('SIGTERM')
  t.equal(await p.exited, 0)

  const bad = startServices(env, ['--only', 'routr'])
  t.equal(await bad.exited, 1)
  t.match(bad.stderr.join(''), /unknown service routr; known: projector, controller/)
})

t.test('healthz answers 503 naming the part that is down', async (t) => {
  const { env, port } = await baseEnv(t)
  const deadPg = `postgres://wharf:x@127.0.0.1:${await freePort()}/wharf`
  const p = startServices({ ...env, WHARF_DATABASE_URL: deadPg }, ['--only', 'controller'])
  t.teardown(() => void p.child.kill('SIGKILL'))
  const res = await until(
    'healthz',
    async () => {
      const r = await request(`http://127.0.0.1:${port}/healthz`)
      return { status: r.statusCode, body: (await r.body.json()) as { status: string; checks: Record<string, { ok: boolean }> } }
    },
    START_MS,
  )
  t.equal(res.status, 503)
  t.equal(res.body.status, 'degraded')
  t.equal(res.body.checks.postgres?.ok, false)
  t.equal(res.body.checks.nats?.ok, true)
  p.child.kill('SIGTERM')
  t.equal(await p.exited, 0)
})

t.test('wrong S3 keys or an endpoint that does not answer: a clear error naming it, before anything starts', async (t) => {
  const { env, port } = await baseEnv(t)
  const s3 = testS3()
  // NATS on a dead port: reaching it would fail differently, so the store is checked first.
  const base = {
    ...env,
    WHARF_NATS_URL: `nats://127.0.0.1:${await freePort()}`,
    WHARF_S3_ACCESS_KEY: s3.accessKey,
    WHARF_S3_REGION: s3.region,
  }
  const wrong = startServices({ ...base, WHARF_S3_ENDPOINT: s3.endpoint, WHARF_S3_SECRET_KEY: 'not-the-secret' })
  t.equal(await wrong.exited, 1)
  t.match(
    wrong.stderr.join(''),
    new RegExp(`^wharf: store: the S3 endpoint ${s3.endpoint.replaceAll('.', '\\.')} refused Wharf's keys for bucket wharf-\\S+ \\(403`),
  )
  const gone = `http://127.0.0.1:${await freePort()}`
  const unreachable = startServices({ ...base, WHARF_S3_ENDPOINT: gone, WHARF_S3_SECRET_KEY: s3.secretKey })
  t.equal(await unreachable.exited, 1)
  t.match(unreachable.stderr.join(''), new RegExp(`^wharf: store: the S3 endpoint ${gone.replaceAll('.', '\\.')} cannot be reached`))
  await t.rejects(request(`http://127.0.0.1:${port}/healthz`), 'nothing was started')
})
