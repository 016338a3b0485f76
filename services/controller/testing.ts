/**
 * A controller of its own for integration tests: the real HTTP server, event store on the test
 * NATS (a namespace of its own), a fresh Postgres database, and the projector running every read
 * model. `make test` provides the servers (see test/harness.ts).
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import pg from 'pg'
import type { Test } from 'tap'
import { request } from 'undici'
import { loadConfig, registryLogin } from '../../core/config.js'
import { DockerEngine } from '../../core/engine/docker.js'
import { createLogger } from '../../core/log.js'
import { wharfCatalogue } from '../../domain/index.js'
import { EventSubjects, JetStreamEventStore, LogSubjects } from '../../events/index.js'
import { LoggerClient, LogStream } from '../../logs/index.js'
import { Projector, wharfProjections } from '../../projections/index.js'
import { s3Client, s3ObjectStores } from '../../core/objectstore/index.js'
import { sshSign } from '../../test/git.js'
import { freshDatabase, testNatsUrl, testS3Env, uniqueName } from '../../test/harness.js'
import { platformStore } from '../store/index.js'
import { tokenAuthenticator } from './auth.js'
import type { ControllerDeps } from './context.js'
import { dashboardDir } from './dashboard.js'
import { buildHttp } from './http.js'
import { ROUTES } from './routes/index.js'

export interface TestController {
  url: string
  deps: ControllerDeps
  /** Calls the API; answers status and parsed JSON body (undefined when empty). */
  call<T = any>(
    method: string,
    path: string,
    opts?: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; body: T }>
}

export async function startTestController(t: Test, env: NodeJS.ProcessEnv = {}): Promise<TestController> {
  const namespace = uniqueName('ctl').toLowerCase()
  const databaseUrl = await freshDatabase(t)
  const cfg = loadConfig({
    WHARF_CONTROLLER_PORT: '1',
    WHARF_NAMESPACE: namespace,
    WHARF_DATABASE_URL: databaseUrl,
    // The log-input tokens' secret, as `make up` generates one.
    WHARF_LOG_INPUT_SECRET: randomBytes(24).toString('base64url'),
    ...testS3Env(),
    ...env,
  })
  // WHARF_TEST_LOG_FILE: the services' logs appended to that file (at WHARF_TEST_LOG_LEVEL, default info there), to tell why a test failed.
  const logFile = process.env.WHARF_TEST_LOG_FILE
  const log = createLogger({
    level: process.env.WHARF_TEST_LOG_LEVEL ?? (logFile ? 'info' : 'silent'),
    ...(logFile ? { destination: createWriteStream(logFile, { flags: 'a' }) } : {}),
  })
  const catalogue = wharfCatalogue()
  // WHARF_NATS_URL in `env`: a NATS (cluster) of the test's own instead of make test's, with its WHARF_NATS_REPLICAS.
  const natsUrl = env.WHARF_NATS_URL || testNatsUrl()
  const store = await JetStreamEventStore.connect({ servers: natsUrl, catalogue, subjects: new EventSubjects(namespace), replicas: cfg.natsReplicas })
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 })
  // The database is dropped in teardown (with force): idle connections then fail, as expected.
  pool.on('error', (err) => log.debug({ err }, 'idle test database connection failed'))
  const projector = new Projector({ store, pool, projections: wharfProjections(), log, batch: { maxWaitMs: 1 } })
  await projector.start()
  // The test store (make test's gateway), keys under this controller's namespace.
  const s3 = cfg.s3.accessKey ? s3Client(cfg.s3) : undefined
  // The log plane of the namespace: the logs routes read it; a test that needs a logger starts one (services/logger/testing.ts).
  const logs = await LogStream.connect({ servers: natsUrl, subjects: new LogSubjects(namespace), replicas: cfg.natsReplicas })
  const objects = s3 && s3ObjectStores(s3, cfg.s3.endpoint)
  const deps: ControllerDeps = {
    cfg,
    log,
    store,
    pool,
    catalogue,
    objects,
    platform: platformStore({ cfg, pool, store, catalogue, log, objects }),
    logger: new LoggerClient(logs),
    engine: cfg.dockerHost ? DockerEngine.at(cfg.dockerHost, registryLogin(cfg)) : undefined,
  }
  const app = await buildHttp({ log, deps, routes: ROUTES, authenticate: tokenAuthenticator(deps), version: 'test', checks: {}, dashboard: dashboardDir() })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  t.teardown(async () => {
    await app.close()
    await projector.stop()
    // Closed even when deleting the streams fails (a NATS cluster that lost a server): an open connection keeps the test running.
    await store.destroy().catch(() => {})
    await store.close()
    await logs.destroy().catch(() => {})
    await logs.close()
    await pool.end()
    s3?.destroy()
  })
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    deps,
    async call(method, path, opts = {}) {
      const res = await request(`${url}${path}`, {
        method: method as 'GET',
        headers: {
          ...(opts.body !== undefined || opts.rawBody !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...opts.headers,
        },
        ...(opts.rawBody !== undefined ? { body: opts.rawBody } : opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      })
      const text = await res.body.text()
      return { status: res.statusCode, body: text ? JSON.parse(text) : undefined }
    },
  }
}

/**
 * The body of `POST /v1/keys` for the key pair at `key.path` with its proof: the challenge the API
 * gives `token`'s user, signed with the private key (what `wharf keys:add` does).
 */
export async function provenKey(c: TestController, token: string, key: { path: string; publicKey: string }, extra: { name?: string } = {}) {
  const res = await c.call('GET', '/v1/keys/challenge', { token })
  if (res.status !== 200) throw new Error(`keys challenge: ${res.status} ${JSON.stringify(res.body)}`)
  const challenge = res.body.challenge as string
  return { key: key.publicKey, ...extra, challenge, signature: sshSign(key.path, challenge) }
}

/** Registers `username` through the API and signs in; answers the bearer token. */
export async function registerAndLogin(c: TestController, username: string, password = 'correct horse'): Promise<string> {
  const reg = await c.call('POST', '/v1/auth/register', { body: { username, password, email: `${username}@example.com` } })
  if (reg.status !== 201) throw new Error(`register ${username}: ${reg.status} ${JSON.stringify(reg.body)}`)
  const login = await c.call('POST', '/v1/auth/login', { body: { username, password } })
  if (login.status !== 200) throw new Error(`login ${username}: ${login.status} ${JSON.stringify(login.body)}`)
  return login.body.token
}

/** Asserts a refusal with `status` and `code` that appended nothing to the log. */
export async function refused(
  t: Test,
  c: TestController,
  status: number,
  code: string,
  method: string,
  path: string,
  opts: Parameters<TestController['call']>[2] = {},
) {
  const before = await c.deps.store.lastSeq()
  const res = await c.call(method, path, opts)
  t.equal(res.status, status, `${method} ${path} ${JSON.stringify(opts.body ?? opts.rawBody ?? '')} -> ${status}`)
  t.equal(res.body?.code, code, `... ${code} (${res.body?.message})`)
  t.equal(await c.deps.store.lastSeq(), before, '... and appends nothing')
  return res
}

/**
 * A test controller that also reaches the test Docker engine and registry (`make test` names them in
 * WHARF_TEST_DOCKER_HOST, WHARF_TEST_REGISTRY and its credentials): for builds, runs, the scheduler and the builder.
 * `env` adds to (or overrides) that, e.g. `WHARF_HOME` or `WHARF_BUILDER_PORT`.
 */
export async function startEngineController(t: Test, env: NodeJS.ProcessEnv = {}): Promise<TestController> {
  const docker = process.env.WHARF_TEST_DOCKER_HOST
  const registry = process.env.WHARF_TEST_REGISTRY
  if (!docker || !registry) throw new Error('WHARF_TEST_DOCKER_HOST / WHARF_TEST_REGISTRY are not set: run integration tests through `make test`')
  return startTestController(t, {
    WHARF_DOCKER_HOST: docker,
    WHARF_REGISTRY_PORT: registry.split(':')[1],
    WHARF_REGISTRY_USER: process.env.WHARF_TEST_REGISTRY_USER,
    WHARF_REGISTRY_PASSWORD: process.env.WHARF_TEST_REGISTRY_PASSWORD,
    ...env,
  })
}
