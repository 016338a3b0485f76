/**
 * The many-hosts benchmark (`npm run bench:multihost`): Wharf on three simulated hosts
 * (infra/hosts.ts: network namespaces with a Docker engine each, one swarm, a NATS server in each
 * namespace in one cluster, the streams at replicas 3). Like an integration test it runs through
 * `make test`'s harness (a throw-away Postgres, registry, nginx and the rest on free ports) with
 * `WHARF_TEST_ENGINE=none`: no Docker engine in the root namespace, host 1 builds the image; as one
 * tap file: `WHARF_TEST_ENGINE=none node dist/infra/main.js test bench/multihost.ts`. It prints, on stderr:
 *
 * 1. Deploy of web=30 over the three hosts (scale from web=1): until Swarm runs 30 tasks, until the
 *    publishers announced all 30, until the router's nginx has all 30 in its routes (time to all
 *    serving); then every container is checked to answer through the router.
 * 2. The same for a rolling deploy of a new release at web=30 (a config change), to DeployCompleted.
 * 3. Route update: from a container's `ContainerStarted` append (its host's publisher) until the
 *    router's nginx serves the app with it, p50/p99/max over the containers of 1 and 2 (60 samples:
 *    the p99 is the second largest).
 * With the load average before and after. Takes ~1.5 min on an idle machine.
 */
import { mkdtempSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { DockerEngine, dockerClient } from '../core/engine/docker.js'
import { LABELS } from '../domain/runtime/labels.js'
import { streamId, type RecordedEvent } from '../events/index.js'
import { freeSubnet, startHosts, stopHosts, type Topology } from '../infra/hosts.js'
import { importBusybox } from '../infra/parts/docker.js'
import { clusterUrl, startNatsCluster, stopNatsCluster, type NatsMember } from '../infra/nats-cluster.js'
import { buildTestImage, testRegistry } from '../services/builder/testing.js'
import { registerAndLogin, startTestController } from '../services/controller/testing.js'
import { Publisher } from '../services/publisher/publisher.js'
import { startTestRouter, testRouterPort } from '../services/router/testing.js'
import { serviceName } from '../services/scheduler/model.js'
import { startScheduler } from '../services/scheduler/service.js'
import { until } from '../test/harness.js'
import { get } from '../test/http.js'

t.setTimeout(600_000)

const N = 30
const DOMAIN = 'wharf.localhost'
const DOCKERFILE = 'FROM busybox\nRUN mkdir /www && echo hello > /www/index.html\nCMD ["httpd", "-f", "-p", "5000", "-h", "/www"]\n'
const PROCFILE = { web: `echo "$HOSTNAME" > /www/who.txt; httpd -f -p $PORT -h /www & trap 'exit 0' TERM; wait` }

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')
const say = (line: string) => console.error(`# bench:multihost: ${line}`)

t.test(`bench: web=${N} over three hosts, time to all serving, route update p99`, async (t) => {
  say(`load average before: ${load()}`)
  const registry = testRegistry()
  const registryPort = Number(registry.split(':')[1])
  const subnet = await freeSubnet()
  const prefix = `b${Math.random().toString(36).slice(2, 7)}`
  const dir = mkdtempSync(join(tmpdir(), 'wharf-multihost-'))
  let topology: Topology | undefined
  t.teardown(async () => {
    if (topology) await stopHosts(topology)
  })
  let t0 = Date.now()
  topology = await startHosts({ dir, prefix, subnet, count: 3, labels: [{ zone: 'a' }, { zone: 'b' }, { zone: 'c' }], registryPort })
  const hosts = topology.hosts
  const members: NatsMember[] = hosts.map((h) => ({ name: h.name, host: h.address, clientPort: 4222, clusterPort: 6222, netns: h.netns }))
  const nats = await startNatsCluster(join(dir, 'nats'), members, prefix)
  t.teardown(() => stopNatsCluster(nats, 2_000))
  const natsUrl = clusterUrl(members)
  const nc = await connect({ servers: natsUrl.split(','), maxReconnectAttempts: -1 })
  t.teardown(() => nc.close())
  await until('JetStream of the cluster', async () => !!(await (await jetstreamManager(nc)).getAccountInfo()), 60_000, 200)
  say(`three hosts, one swarm, a NATS cluster of three: up in ${secs(Date.now() - t0)}`)

  const c = await startTestController(t, {
    WHARF_DOMAIN: DOMAIN,
    // Host 1's engine (the swarm's manager) builds and pushes: the machine's own engine is not needed.
    WHARF_DOCKER_HOST: hosts[0]!.dockerHost,
    WHARF_REGISTRY_PORT: String(registryPort),
    WHARF_NATS_URL: natsUrl,
    WHARF_NATS_REPLICAS: '3',
  })
  const { store, pool, log } = c.deps
  const namespace = c.deps.cfg.namespace
  const token = await registerAndLogin(c, 'bench')
  /** `host:port` -> when its ContainerStarted was appended. */
  const announced = new Map<string, number>()
  for (const h of hosts) {
    const p = await Publisher.start({
      docker: DockerEngine.at(h.dockerHost),
      store,
      pool,
      log,
      namespace,
      host: h.address,
      onAnnounced: (a) => {
        if (a.kind === 'started' && a.port) announced.set(`${a.host}:${a.port}`, Date.now())
      },
    })
    t.teardown(() => p.stop())
  }
  const manager = DockerEngine.at(hosts[0]!.dockerHost)
  const scheduler = await startScheduler(
    { store, pool, docker: manager, namespace, registry, log },
    { deployTimeoutMs: 120_000, lostHostsMs: 1_000, spec: { stopGraceMs: 2_000, updateMonitorMs: 1_000 } },
  )
  t.teardown(() => scheduler.stop())
  const app = `mhb${Date.now().toString(36).slice(-5)}`
  /** `host:port` -> when nginx first served the app with it. */
  const routed = new Map<string, number>()
  await startTestRouter(t, c, {
    domain: DOMAIN,
    onApplied: ({ result, done, table }) => {
      if (!('ok' in result) || result.ok === false) return
      for (const r of table.routes)
        if (r.app === app) for (const s of r.servers) if (!routed.has(`${s.host}:${s.port}`)) routed.set(`${s.host}:${s.port}`, done)
    },
  })
  const port = testRouterPort()
  const call = async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await c.call(method, `/v1/apps/${app}${path}`, { token, ...(body === undefined ? {} : { body }) })
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body
  }
  t.equal((await c.call('POST', '/v1/apps', { token, body: { name: app } })).status, 201)
  // Built on host 1 from a busybox made there (its images go with the host's data-root at the end).
  const docker = dockerClient(hosts[0]!.dockerHost)
  await importBusybox(docker, dir)
  const runtime = async (): Promise<RecordedEvent[]> => (await store.readStream(streamId('runtime', app))).events
  const outcome = (release: number) =>
    until(
      `the deploy of v${release}`,
      async () =>
        (await runtime()).find((e) => (e.type === 'DeployCompleted' || e.type === 'DeployFailed') && (e.data as { release: number }).release === release),
      180_000,
    )
  type Proc = { container: string; type: string; state: string; host: string; release: number; port: number | null }
  const upOf = async (release: number) =>
    ((await call('GET', '/ps')).processes as Proc[]).filter((p) => p.type === 'web' && p.state === 'up' && p.release === release)
  const swarmRunning = async (release: number) => {
    const tasks = await manager.listTasks(serviceName(namespace, app, 'web'))
    return tasks.filter((x) => x.desiredState === 'running' && x.state === 'running' && x.spec.ContainerSpec?.Labels?.[LABELS.release] === String(release))
      .length
  }

  await call('POST', '/config', { values: { WHARF_PLACEMENT_SPREAD: 'zone' } })
  const image = await buildTestImage(t, docker, DOCKERFILE)
  const v1 = (await call('POST', '/builds', { image, procfile: PROCFILE, port: 5000 })).release as number
  t.equal((await outcome(v1)).type, 'DeployCompleted', `v${v1} at web=1`)

  /** Times of one deploy of `release` to web=N: all running in Swarm, all announced, all in nginx's routes. */
  const measure = async (label: string, release: number, t0: number, withOutcome: boolean) => {
    const marks: Record<string, number> = {}
    await until(
      `${N} tasks of v${release} running`,
      async () => {
        if (!marks.running && (await swarmRunning(release)) >= N) marks.running = Date.now()
        const up = await upOf(release)
        if (!marks.announced && up.length >= N) marks.announced = Date.now()
        if (!marks.routed && up.length >= N && up.every((p) => routed.has(`${p.host}:${p.port}`)))
          marks.routed = Math.max(...up.map((p) => routed.get(`${p.host}:${p.port}`)!))
        return marks.running && marks.announced && marks.routed
      },
      180_000,
      50,
    )
    const up = await upOf(release)
    const per = Object.fromEntries(hosts.map((h) => [h.name, up.filter((p) => p.host === h.address).length]))
    // A scale spreads evenly over the zones; a rolling deploy's start-first order may leave it uneven (e.g. 8/11/11).
    t.ok(
      Object.values(per).every((n) => n > 0),
      `${label}: on all three hosts (${JSON.stringify(per)})`,
    )
    let completed = ''
    if (withOutcome) {
      const done = await outcome(release)
      t.equal(done.type, 'DeployCompleted', `v${release} completed`)
      completed = `, DeployCompleted ${secs(Date.parse(done.occurredAt) - t0)}`
    }
    say(
      `${label}: ${N} running in Swarm ${secs(marks.running! - t0)}, all announced ${secs(marks.announced! - t0)}, all in the router's routes (all serving) ${secs(marks.routed! - t0)}${completed}; per host ${JSON.stringify(per)}`,
    )
    // Every container answers through the router (who.txt names it).
    const ids = new Set(up.map((p) => p.container.slice(0, 12)))
    const seen = new Set<string>()
    await until(
      `all ${N} answering through the router`,
      async () => {
        const a = await get(port, `${app}.${DOMAIN}`, '/who.txt')
        if (a.status === 200 && ids.has(a.body.trim())) seen.add(a.body.trim())
        return seen.size === N
      },
      30_000,
      0,
    )
    return up.map((p) => routed.get(`${p.host}:${p.port}`)! - announced.get(`${p.host}:${p.port}`)!)
  }

  t0 = Date.now()
  await call('POST', '/formation', { web: N })
  const samples = await measure(`web=1 -> web=${N}`, v1, t0, false)
  t0 = Date.now()
  await call('POST', '/config', { values: { GREETING: 'again' } })
  const v2 = ((await call('GET', '/releases')).releases as { version: number }[])[0]!.version
  samples.push(...(await measure(`rolling deploy of v${v2} at web=${N}`, v2, t0, true)))
  t.ok(samples.every((x) => Number.isFinite(x) && x >= 0))
  say(
    `route update (ContainerStarted appended -> nginx serving it), ${samples.length} containers on three hosts: p50 ${pct(samples, 50)} ms, p99 ${pct(samples, 99)} ms, max ${Math.max(...samples)} ms`,
  )
  say(`load average after: ${load()}`)
  await call('POST', '/formation', { web: 0 })
  await sleep(500)
})
