import t from 'tap'
import { durationText, loadConfig, registryHeaders, registryLogin } from './config.js'

t.test('the store: Wharf own gateway by default, its keys resolved later by infra', async (t) => {
  const cfg = loadConfig({ WHARF_HOME: '/tmp/x' })
  t.same(cfg.s3, { endpoint: 'http://127.0.0.1:7480', accessKey: '', secretKey: '', region: 'us-east-1', external: false })
  t.equal(cfg.ports.cephMon, 16789)
  t.equal(cfg.ports.routerTls, 8443)
  t.equal(loadConfig({ WHARF_S3_PORT: '17480' }).s3.endpoint, 'http://127.0.0.1:17480', 'the endpoint follows WHARF_S3_PORT')
})

t.test('the store: an external S3 when endpoint and both keys are set', async (t) => {
  const cfg = loadConfig({ WHARF_S3_ENDPOINT: 'https://s3.example.test/', WHARF_S3_ACCESS_KEY: 'AK', WHARF_S3_SECRET_KEY: 'SK', WHARF_S3_REGION: 'eu-west-1' })
  t.same(cfg.s3, { endpoint: 'https://s3.example.test', accessKey: 'AK', secretKey: 'SK', region: 'eu-west-1', external: true })
})

t.test('the store: bad settings are refused with the variable named', async (t) => {
  t.throws(
    () => loadConfig({ WHARF_S3_ENDPOINT: 'https://s3.example.test' }),
    /WHARF_S3_ACCESS_KEY and WHARF_S3_SECRET_KEY together; only WHARF_S3_ENDPOINT is set/,
  )
  t.throws(
    () => loadConfig({ WHARF_S3_ENDPOINT: 's3.example.test', WHARF_S3_ACCESS_KEY: 'a', WHARF_S3_SECRET_KEY: 'b' }),
    /WHARF_S3_ENDPOINT must be an http\(s\) URL/,
  )
  t.throws(
    () => loadConfig({ WHARF_S3_ENDPOINT: 'ftp://s3.example.test', WHARF_S3_ACCESS_KEY: 'a', WHARF_S3_SECRET_KEY: 'b' }),
    /WHARF_S3_ENDPOINT must be an http\(s\) URL/,
  )
  t.throws(() => loadConfig({ WHARF_S3_PORT: '8000' }), /port 8000 is given to both controller and s3/)
  t.throws(() => loadConfig({ WHARF_CEPH_MON_PORT: '7480' }), /port 7480 is given to both s3 and cephMon/)
  t.throws(() => loadConfig({ WHARF_ROUTER_TLS_PORT: '8080' }), /port 8080 is given to both router and routerTls/)
})

t.test('the registry cache and backups: defaults, spellings, refusals', async (t) => {
  const cfg = loadConfig({})
  t.equal(cfg.registryCache, 'inmemory')
  t.equal(cfg.ports.redis, 16379)
  t.same(cfg.backups, { intervalMs: 24 * 3_600_000, keep: 7 })
  t.equal(loadConfig({ WHARF_REGISTRY_CACHE: 'redis' }).registryCache, 'redis')
  t.same(loadConfig({ WHARF_BACKUP_INTERVAL: '90m', WHARF_BACKUP_KEEP: '2' }).backups, { intervalMs: 90 * 60_000, keep: 2 })
  t.equal(loadConfig({ WHARF_BACKUP_INTERVAL: 'off' }).backups.intervalMs, 0)
  for (const text of ['off', '1d', '90m', '6h', '45m'])
    t.equal(durationText(loadConfig({ WHARF_BACKUP_INTERVAL: text }).backups.intervalMs), text, `${text} round-trips`)
  t.throws(() => loadConfig({ WHARF_REGISTRY_CACHE: 'memcached' }), /WHARF_REGISTRY_CACHE must be inmemory or redis/)
  t.throws(() => loadConfig({ WHARF_BACKUP_INTERVAL: '10s' }), /WHARF_BACKUP_INTERVAL must be a duration of at least a minute/)
  t.throws(() => loadConfig({ WHARF_BACKUP_INTERVAL: 'daily' }), /WHARF_BACKUP_INTERVAL/)
  t.throws(() => loadConfig({ WHARF_BACKUP_KEEP: '0' }), /WHARF_BACKUP_KEEP must be a whole number from 1/)
  t.throws(() => loadConfig({ WHARF_REDIS_PORT: '5000' }), /port 5000 is given to both registry and redis/)
  t.equal(loadConfig({}).logs.inputSecret, undefined, 'no log-input secret unless given (make up generates one)')
  t.equal(loadConfig({ WHARF_LOG_INPUT_SECRET: 'a-secret-of-16-chars' }).logs.inputSecret, 'a-secret-of-16-chars')
  for (const bad of ['short', 'sixteen chars with spaces'])
    t.throws(() => loadConfig({ WHARF_LOG_INPUT_SECRET: bad }), /WHARF_LOG_INPUT_SECRET must be at least 16 characters, with no space/)
})

t.test('the registry credentials: user wharf, a password only when given; the engine login and header follow the port', async (t) => {
  const none = loadConfig({})
  t.same(none.registryAuth, { username: 'wharf', password: undefined }, 'infra generates the password when none is given')
  t.equal(registryLogin(none), undefined, 'no login without a password')
  t.same(registryHeaders(none.registryAuth), {})
  const cfg = loadConfig({ WHARF_REGISTRY_PORT: '5001', WHARF_REGISTRY_USER: 'ops', WHARF_REGISTRY_PASSWORD: 'p@ss:w0rd' })
  t.same(registryLogin(cfg), { serveraddress: '127.0.0.1:5001', username: 'ops', password: 'p@ss:w0rd' })
  t.same(registryHeaders(cfg.registryAuth), { authorization: `Basic ${Buffer.from('ops:p@ss:w0rd').toString('base64')}` })
  t.throws(() => loadConfig({ WHARF_REGISTRY_USER: 'a:b' }), /WHARF_REGISTRY_USER must be 1-64 letters/)
  t.throws(() => loadConfig({ WHARF_REGISTRY_PASSWORD: 'x'.repeat(73) }), /WHARF_REGISTRY_PASSWORD must be at most 72 bytes on one line/)
  const err = (() => {
    try {
      loadConfig({ WHARF_REGISTRY_PASSWORD: 'secret\nline' })
    } catch (e) {
      return (e as Error).message
    }
  })()
  t.notMatch(err, /secret/, 'the error does not show the value')
})

t.test('the log plane: defaults, bounds, and the syslog port in the conflict check', async (t) => {
  const cfg = loadConfig({})
  t.equal(cfg.ports.syslog, 5514)
  t.same(cfg.logs, { appLines: 10_000, appRate: 10_000, streamHours: 24, streamMb: 1024 })
  t.same(loadConfig({ WHARF_LOG_LINES: '500', WHARF_LOG_RATE: '20000', WHARF_LOG_STREAM_HOURS: '48', WHARF_LOG_STREAM_MB: '64' }).logs, {
    appLines: 500,
    appRate: 20_000,
    streamHours: 48,
    streamMb: 64,
  })
  t.throws(() => loadConfig({ WHARF_LOG_LINES: '0' }), /WHARF_LOG_LINES must be a whole number from 1 to 1000000, got "0"/)
  t.throws(() => loadConfig({ WHARF_LOG_RATE: 'fast' }), /WHARF_LOG_RATE must be a whole number/)
  t.throws(() => loadConfig({ WHARF_SYSLOG_PORT: '8000' }), /port 8000 is given to both controller and syslog/)
})

t.test('push, token and sign-in bounds: defaults, values, clear errors', async (t) => {
  const d = loadConfig({})
  t.same(d.pushes, { idleMs: 60_000, perUser: 3, max: 10, waitsForDeploy: false })
  t.same(d.auth, { tokenTtlMs: 30 * 86_400_000, loginFailures: 10 })
  t.same(d.importFrom, [])
  const c = loadConfig({
    WHARF_PUSH_IDLE_TIMEOUT: '5',
    WHARF_PUSHES_PER_USER: '2',
    WHARF_PUSHES_MAX: '4',
    WHARF_TOKEN_TTL: '12h',
    WHARF_LOGIN_FAILURES: '3',
    WHARF_IMPORT_FROM: 'old, older',
  })
  t.same(c.pushes, { idleMs: 5000, perUser: 2, max: 4, waitsForDeploy: false })
  t.same(c.auth, { tokenTtlMs: 12 * 3_600_000, loginFailures: 3 })
  t.same(c.importFrom, ['old', 'older'])
  t.throws(() => loadConfig({ WHARF_TOKEN_TTL: '30s' }), /WHARF_TOKEN_TTL must be a duration of at least 1m/)
  t.throws(() => loadConfig({ WHARF_TOKEN_TTL: 'forever' }), /WHARF_TOKEN_TTL/)
  t.throws(() => loadConfig({ WHARF_PUSHES_MAX: '0' }), /WHARF_PUSHES_MAX must be a whole number/)
})

t.test('many hosts: the host address and the NATS replicas, with defaults for one host', async (t) => {
  const one = loadConfig({})
  t.equal(one.hostAddress, '127.0.0.1')
  t.equal(one.natsReplicas, 1)
  const many = loadConfig({ WHARF_HOST_ADDRESS: '192.168.217.12', WHARF_NATS_REPLICAS: '3' })
  t.equal(many.hostAddress, '192.168.217.12')
  t.equal(many.natsReplicas, 3)
  for (const bad of ['host-2', '10.0.0', '256.1.1.1', '0.0.0.0', '01.2.3.4', '1.2.3.4:80'])
    t.throws(() => loadConfig({ WHARF_HOST_ADDRESS: bad }), /WHARF_HOST_ADDRESS must be this host's IPv4 address/, bad)
  for (const bad of ['2', '0', 'three']) t.throws(() => loadConfig({ WHARF_NATS_REPLICAS: bad }), /WHARF_NATS_REPLICAS must be 1, 3 or 5/, bad)
  t.same(one.appPortSources, [], 'no one reaches the app ports around the router by default')
  t.same(loadConfig({ WHARF_APP_PORT_SOURCES: '192.168.217.1, 10.1.0.0/16' }).appPortSources, ['192.168.217.1', '10.1.0.0/16'])
  for (const bad of ['router-host', '10.0.0.0/4', '1.2.3.4/33', '1.2.3.4/8/1', '0/0'])
    t.throws(() => loadConfig({ WHARF_APP_PORT_SOURCES: bad }), /WHARF_APP_PORT_SOURCES must be IPv4 addresses or CIDRs/, bad)
})

t.test(
  'metrics: WHARF_METRICS_PORT (default 9464, off for none), WHARF_ROUTER_METRICS_PORT (9465), WHARF_WORKERS_METRICS_PORT (9466) and WHARF_METRICS_MAX_APPS',
  async (t) => {
    t.same(loadConfig({}).metrics, { port: 9464, maxApps: 500, routerPort: 9465, workersPort: 9466 })
    t.same(
      loadConfig({ WHARF_METRICS_PORT: 'off', WHARF_METRICS_MAX_APPS: '50', WHARF_ROUTER_METRICS_PORT: 'off', WHARF_WORKERS_METRICS_PORT: 'off' }).metrics,
      {
        port: undefined,
        maxApps: 50,
        routerPort: undefined,
        workersPort: undefined,
      },
    )
    t.throws(() => loadConfig({ WHARF_ROUTER_METRICS_PORT: 'x' }), /WHARF_ROUTER_METRICS_PORT must be a port number/)
    t.throws(() => loadConfig({ WHARF_WORKERS_METRICS_PORT: 'x' }), /WHARF_WORKERS_METRICS_PORT must be a port number/)
    t.throws(() => loadConfig({ WHARF_METRICS_PORT: '70000' }), /WHARF_METRICS_PORT must be a port number/)
    t.throws(() => loadConfig({ WHARF_METRICS_MAX_APPS: '0' }), /WHARF_METRICS_MAX_APPS must be a whole number/)
  },
)

t.test('limits: defaults, and a clear error on a bad value', (t) => {
  const { limits } = loadConfig({}, '/w')
  t.same(limits, {
    pushBytes: 1024 * 1024 * 1024,
    buildLogBytes: 16 * 1024 * 1024,
    buildTimeoutMs: 30 * 60_000,
    bodySizeCap: '100m',
    runStdinBytes: 1024 * 1024,
    runPids: 256,
    runMemoryBytes: 512 * 1024 * 1024,
    runCpus: 1,
    appsPerUser: 50,
    replicasPerUser: 100,
  })
  t.equal(loadConfig({ WHARF_BUILD_TIMEOUT: '90s', WHARF_MAX_BODY_SIZE_CAP: '1G' }, '/w').limits.buildTimeoutMs, 90_000)
  t.equal(loadConfig({ WHARF_MAX_BODY_SIZE_CAP: '1G' }, '/w').limits.bodySizeCap, '1g')
  t.throws(() => loadConfig({ WHARF_BUILD_TIMEOUT: '5s' }, '/w'), /WHARF_BUILD_TIMEOUT must be a duration from 10s to 1d/)
  t.throws(() => loadConfig({ WHARF_MAX_BODY_SIZE_CAP: '0' }, '/w'), /WHARF_MAX_BODY_SIZE_CAP must be an nginx size above 0/)
  t.throws(() => loadConfig({ WHARF_APPS_PER_USER: '0' }, '/w'), /WHARF_APPS_PER_USER must be a whole number from 1/)
  t.throws(() => loadConfig({ WHARF_RUN_CPUS: 'lots' }, '/w'), /WHARF_RUN_CPUS must be a number/)
  t.end()
})

t.test('WHARF_ROUTER_HEALTH_SOCKET: where a router of its own process answers its health (unset: none)', async (t) => {
  t.equal(loadConfig({}).routerHealthSocket, undefined)
  t.equal(loadConfig({ WHARF_ROUTER_HEALTH_SOCKET: '/h/run/router.sock' }).routerHealthSocket, '/h/run/router.sock')
})

t.test('WHARF_WORKERS_HEALTH_SOCKET: where the workers of their own process answer their health (unset: none)', async (t) => {
  t.equal(loadConfig({}).workersHealthSocket, undefined)
  t.equal(loadConfig({ WHARF_WORKERS_HEALTH_SOCKET: '/h/run/workers.sock' }).workersHealthSocket, '/h/run/workers.sock')
})
