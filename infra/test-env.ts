import { spawn } from 'node:child_process'
import { chmodSync, globSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { WharfConfig } from '../core/config.js'
import { contextFor, down, REAL_PARTS, realParts, up } from './platform.js'
import { docker, dockerHost } from './parts/docker.js'
import { s3Settings } from './parts/ceph.js'
import { natsClientUrl } from './parts/nats.js'
import { databaseUrl } from './parts/postgres.js'
import { registryCredentials } from './parts/registry.js'
import { pathsFor } from '../core/paths.js'
import { livePid } from './proc.js'
import { TapCounter } from './tap-count.js'

/** A free TCP port on 127.0.0.1, found by binding port 0. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

/**
 * `make test`: starts the real parts on free ports under a temporary WHARF_HOME, runs the tests
 * against them, stops what it started, and prints `N passed, N failed` last. A Docker engine that a
 * `make up` platform already runs is reused (two engines on one network namespace fight over bridges
 * and iptables); tests keep their containers and images apart by name and remove them.
 */
export async function runTests(platformCfg: WharfConfig, tapArgs: string[]): Promise<number> {
  const home = mkdtempSync(join(tmpdir(), 'wharf-test-'))
  chmodSync(home, 0o755)
  const platformEngine = livePid(pathsFor(platformCfg.home).docker.pid) ? `unix://${pathsFor(platformCfg.home).docker.socket}` : undefined
  // WHARF_TEST_ENGINE=none: no Docker engine at all in this namespace (for tests that make engines
  // of their own in network namespaces, e.g. infra/hosts-cut.int.test.ts); tests that need one fail.
  const noEngine = process.env.WHARF_TEST_ENGINE === 'none'
  const cfg: WharfConfig = {
    ...platformCfg,
    home,
    ports: {
      controller: await freePort(),
      builder: await freePort(),
      router: await freePort(),
      routerTls: await freePort(),
      registry: await freePort(),
      nats: await freePort(),
      natsMonitor: await freePort(),
      postgres: await freePort(),
      s3: await freePort(),
      cephMon: await freePort(),
      redis: await freePort(),
      syslog: await freePort(),
    },
    dockerHost: platformCfg.dockerHost ?? platformEngine,
    natsUrl: '',
    databaseUrl: undefined,
  }
  cfg.natsUrl = `nats://127.0.0.1:${cfg.ports.nats}`
  // An operator's external S3 is used as it is (tests make buckets of their own); else a Ceph of the test's own.
  if (!cfg.s3.external) cfg.s3 = { ...cfg.s3, endpoint: `http://127.0.0.1:${cfg.ports.s3}` }
  const ctx = contextFor(cfg, (line) => console.log(`  ${line}`))
  let stopping = false
  const cleanup = async () => {
    if (stopping) return
    stopping = true
    console.log('stopping the test platform')
    await down(ctx, REAL_PARTS).catch((err) => console.error(`stopping failed: ${(err as Error).message}`))
    if (process.env.WHARF_TEST_KEEP) return
    try {
      rmSync(home, { recursive: true, force: true, maxRetries: 3 })
    } catch (err) {
      // A leftover temporary directory is not a failed test: said, and the count still printed.
      console.error(`could not delete ${home}: ${(err as Error).message}`)
    }
  }
  const onSignal = () => void cleanup().then(() => process.exit(130))
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  let counter = new TapCounter()
  let tapExit: number | null = 1
  // The formatter and the linter (with the layering rules) count as one test, run first: they need no server.
  const lint = await runLint()
  try {
    console.log(`starting the test platform under ${home}${cfg.dockerHost ? ` (Docker engine: ${cfg.dockerHost})` : ''}`)
    const t0 = Date.now()
    await up(ctx, { real: realParts(cfg).filter((p) => !noEngine || p !== docker), services: false })
    console.log(`test platform up in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    const s3 = s3Settings(ctx)
    const env = {
      ...process.env,
      WHARF_TEST_S3_ENDPOINT: s3.endpoint,
      WHARF_TEST_S3_ACCESS_KEY: s3.accessKey,
      WHARF_TEST_S3_SECRET_KEY: s3.secretKey,
      WHARF_TEST_S3_REGION: s3.region,
      WHARF_TEST_HOME: home,
      WHARF_TEST_NATS_URL: natsClientUrl(cfg, ctx.paths),
      WHARF_TEST_PG_URL: databaseUrl(cfg, ctx.paths),
      ...(noEngine ? {} : { WHARF_TEST_DOCKER_HOST: dockerHost(ctx) }),
      WHARF_TEST_REGISTRY: `127.0.0.1:${cfg.ports.registry}`,
      WHARF_TEST_REGISTRY_USER: registryCredentials(ctx).username,
      WHARF_TEST_REGISTRY_PASSWORD: registryCredentials(ctx).password,
      WHARF_TEST_ROUTER_PORT: String(cfg.ports.router),
      WHARF_TEST_ROUTER_TLS_PORT: String(cfg.ports.routerTls),
      WHARF_TEST_NGINX_CONF: ctx.paths.nginx.conf,
      WHARF_TEST_NATS_MONITOR_PORT: String(cfg.ports.natsMonitor),
    }
    if (tapArgs.length) ({ counter, tapExit } = await runTap(tapArgs, env))
    else {
      // The whole suite in two lanes at once (CI has a time budget): the tests that share the engine,
      // the test nginx, the registry or start platforms of their own, one after another; beside them,
      // the rest (unit tests, and controllers, projections and CLI over the shared NATS and Postgres
      // in namespaces and databases of their own).
      const { shared, apart } = lanesOf(testFiles())
      console.log(`${shared.length} test files on the shared parts, ${apart.length} beside them`)
      const lanes = await Promise.all([runTap(shared, env), runTap(apart, env)])
      counter = TapCounter.merge(lanes.map((l) => l.counter))
      tapExit = lanes.every((l) => l.tapExit === 0) ? 0 : (lanes.find((l) => l.tapExit !== 0)?.tapExit ?? 1)
    }
  } catch (err) {
    console.error(`test platform failed: ${(err as Error).message}`)
    counter.counts.failed++
  } finally {
    await cleanup()
  }
  if (lint.ok) counter.counts.passed++
  else {
    counter.counts.failed++
    counter.counts.failures.push(LINT_TEST)
  }
  const { passed, failed, skipped, failures } = counter.counts
  let failedTotal = failed
  if (tapExit !== 0 && failed === 0) {
    console.error(`tap exited with code ${tapExit} without a failing test: counted as one failure`)
    failedTotal = 1
  }
  if (failures.length) console.log(`failed:\n${failures.map((f) => `  - ${f}`).join('\n')}`)
  console.log(`${passed} passed, ${failedTotal} failed${skipped ? `, ${skipped} skipped` : ''}`)
  return failedTotal === 0 ? 0 : 1
}

const LINT_TEST = 'lint: biome ci (format, lint rules, layering of biome.json)'

/**
 * `biome ci .`: the tree is formatted and passes the lint rules, among them the layering of issue 12
 * (a service imports no other service, read-model SQL only in projections/). Prints one line, and
 * Biome's diagnostics when it fails.
 */
function runLint(): Promise<{ ok: boolean }> {
  const child = spawn(join(process.cwd(), 'node_modules/.bin/biome'), ['ci', '--colors=off', '.'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const keep = (b: Buffer) => {
    // Bounded: a tree with thousands of diagnostics must not fill the memory of the test run.
    if (out.length < 1_000_000) out += b.toString()
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  return new Promise((resolve) => {
    child.on('error', (err) => {
      console.log(`FAILED ${LINT_TEST}: ${err.message}`)
      resolve({ ok: false })
    })
    child.on('close', (code) => {
      const ok = code === 0
      console.log(`${ok ? 'ok    ' : 'FAILED'} ${LINT_TEST}`)
      if (!ok) console.log(out)
      resolve({ ok })
    })
  })
}

/** Every test file of the tree (package.json's tap `include`, without its `exclude`), sorted. */
function testFiles(): string[] {
  return globSync('**/*.test.ts', { exclude: (f) => f === 'node_modules' || f === 'dist' || f === '.wharf' || f === '.git' }).sort()
}

/**
 * What a test file uses that another running at the same time could disturb: the test Docker engine
 * (Swarm services, images), the test nginx and its router port, the test registry, or a platform of its
 * own (infra/). Such a file goes in the shared lane, which runs one file at a time.
 */
const SHARED_PARTS =
  /WHARF_TEST_(DOCKER_HOST|NGINX_CONF|ROUTER_PORT|ROUTER_TLS_PORT|REGISTRY)|\b(startEngineController|testDocker|testEngine|testRegistry|buildTestImage|pullImage|startTestBuilder|startTestRouter|testRouterPort|DockerEngine)\b/

export function lanesOf(files: string[], read: (f: string) => string = (f) => readFileSync(f, 'utf8')): { shared: string[]; apart: string[] } {
  const shared: string[] = []
  const apart: string[] = []
  for (const f of files) (f.startsWith('infra/') || SHARED_PARTS.test(read(f)) ? shared : apart).push(f)
  return { shared, apart }
}

/** Runs tap with the TAP reporter, printing one line per test file and the full TAP of failing ones. */
function runTap(args: string[], env: NodeJS.ProcessEnv): Promise<{ counter: TapCounter; tapExit: number | null }> {
  const counter = new TapCounter()
  const child = spawn(join(process.cwd(), 'node_modules/.bin/tap'), ['--reporter=tap', '--no-color', ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  let fileLines: string[] = []
  const times: [string, number][] = []
  createInterface({ input: child.stdout! }).on('line', (line) => {
    fileLines.push(line)
    const closed = counter.line(line)
    if (closed && closed.depth === 0) {
      // The file's own line ends with tap's `# time=<ms>ms`: shown, and the slowest files listed at the end (CI has a time budget).
      const ms = Number(/# time=([\d.]+)ms/.exec(line)?.[1] ?? Number.NaN)
      if (Number.isFinite(ms)) times.push([closed.name, ms])
      console.log(`${closed.ok ? 'ok    ' : 'FAILED'} ${closed.name}${Number.isFinite(ms) ? ` (${(ms / 1000).toFixed(1)} s)` : ''}`)
      if (!closed.ok) console.log(fileLines.join('\n'))
      fileLines = []
    }
  })
  return new Promise((resolve) =>
    child.on('close', (code) => {
      const slowest = times.sort((a, b) => b[1] - a[1]).slice(0, 10)
      if (slowest.length) console.log(`slowest files: ${slowest.map(([f, ms]) => `${f} ${(ms / 1000).toFixed(0)} s`).join(', ')}`)
      resolve({ counter, tapExit: code })
    }),
  )
}
