/**
 * For the tests and the bench on three simulated hosts (infra/hosts-cut.int.test.ts, bench/multihost.ts; run
 * through `make test`'s harness): the hosts (infra/hosts.ts, swarm labels `zone=a,b,c`), a NATS
 * server in each host's namespace in one cluster (the streams at replicas 3, every client given the
 * three URLs), and the platform's services against them: a test controller whose engine is host 1's
 * (the swarm's manager: it builds and pushes, so no engine is needed in the root namespace), one
 * publisher per host announcing at its host's address, the scheduler on the manager, the router of
 * the test nginx; an app of its own, spread over the zones, at v1 (web=1) of a busybox httpd whose
 * `/who.txt` names the container. Everything is taken down in teardown.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Docker from 'dockerode'
import type { Test } from 'tap'
import { connect } from '@nats-io/transport-node'
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream'
import { DockerEngine, dockerClient } from '../core/engine/docker.js'
import { LABELS } from '../domain/runtime/labels.js'
import { streamId, type RecordedEvent } from '../events/index.js'
import { CONNECT_TIMEOUT_MS, leastRecentlyDialled, PING_INTERVAL_MS } from '../events/connection.js'
import type { Announcement } from '../domain/runtime/decider.js'
import { buildTestImage, testRegistry, testRegistryEnv, testRegistryLogin } from '../services/builder/testing.js'
import { registerAndLogin, startTestController, type TestController } from '../services/controller/testing.js'
import { Publisher } from '../services/publisher/publisher.js'
import type { StartRouterOptions } from '../services/router/service.js'
import { startTestRouter, testRouterPort } from '../services/router/testing.js'
import { serviceName } from '../services/scheduler/model.js'
import { startScheduler } from '../services/scheduler/service.js'
import { until as poll } from '../test/harness.js'
import { addHost, freeSubnet, startHosts, stopHosts, type SimHost, type Topology } from './hosts.js'
import { clusterUrl, startNatsCluster, stopNatsCluster, type NatsMember, type RunningMember } from './nats-cluster.js'
import { importBusybox } from './parts/docker.js'

export const HOSTS_DOMAIN = 'wharf.localhost'
/** `/cgi-bin/slow` answers who.txt after 3 s (a request in flight when a host is cut). */
const DOCKERFILE = [
  'FROM busybox',
  'RUN mkdir -p /www/cgi-bin && echo hello > /www/index.html',
  `RUN printf '#!/bin/sh\\nsleep 3\\necho Content-Type: text/plain\\necho\\ncat /www/who.txt\\n' > /www/cgi-bin/slow && chmod +x /www/cgi-bin/slow`,
  'CMD ["httpd", "-f", "-p", "5000", "-h", "/www"]',
  '',
].join('\n')
/** `/who.txt` names the container; the shell exits at SIGTERM (httpd as PID 1 would ignore it). */
const PROCFILE = { web: `echo "$HOSTNAME" > /www/who.txt; httpd -f -p $PORT -h /www & trap 'exit 0' TERM; wait` }

export const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`

/** test/harness.ts's poll, with a minute's patience by default. */
export const until = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000, intervalMs?: number): Promise<T> =>
  poll(what, fn, ms, ...(intervalMs === undefined ? [] : [intervalMs]))

export type Proc = { container: string; type: string; state: string; host: string; release: number; port: number | null }

export interface HostsPlatformOptions {
  /** First letter of the names made (namespaces, links, the app), `[a-z]`. */
  letter: string
  /** Start two hosts and add the third as an operator's `infra hosts:add` does (timed), rather than three at once. */
  addThird?: boolean
  /** Times of the steps, as they are taken. */
  figure?: (what: string, ms: number) => void
  deployTimeoutMs: number
  /** The scheduler's look for lost hosts, ms. */
  lostHostsMs: number
  onAnnounced?: (a: Announcement) => void
  onApplied?: StartRouterOptions['onApplied']
  /** The app's name, default `<letter>h<time><random>`. */
  app?: string
}

export interface HostsPlatform {
  topology: Topology
  /** Host 1's engine (the swarm's manager), with the registry's credentials. */
  manager: DockerEngine
  /** Host 1's engine, raw: it builds the app's image. */
  docker: Docker
  /** The NATS members (one per host), their servers as running, where they keep their data. */
  members: NatsMember[]
  nats: RunningMember[]
  natsDir: string
  /** The test's own JetStream manager on the cluster. */
  jsm: JetStreamManager
  c: TestController
  namespace: string
  token: string
  publishers: Map<string, Publisher>
  routerPort: number
  app: string
  /** The host name the router serves the app at. */
  appHost: string
  /** `/v1/apps/<app><path>` as the app's owner; throws on a status >= 300 (with `res`). */
  call(method: string, path: string, body?: unknown): Promise<any>
  runtime(): Promise<RecordedEvent[]>
  /** `DeployCompleted` or `DeployFailed` of `release`, once on the app's runtime stream. */
  outcome(release: number, ms?: number): Promise<RecordedEvent>
  ps(): Promise<Proc[]>
  releases(): Promise<{ version: number }[]>
  /** The app's web processes up, when there are `n` of them and `ok` says yes. */
  webUp(n: number, ok?: (up: Proc[]) => boolean): Promise<Proc[] | undefined>
  perHost(up: Proc[]): Record<string, number>
  /** What Swarm has of the app's web service and what the read model has, on stderr (to tell why a wait failed). */
  dumpTasks(): Promise<void>
  /** The release of the first build (web=1). */
  v1: number
  /** The third host (added last when `addThird`). */
  h3: SimHost
}

/** Starts the hosts, the NATS cluster and the services, and deploys the app's first release (see the file's comment). */
export async function startHostsPlatform(t: Test, opts: HostsPlatformOptions): Promise<HostsPlatform> {
  const figure = opts.figure ?? (() => {})
  const registryPort = Number(testRegistry().split(':')[1])
  const subnet = await freeSubnet()
  const prefix = `${opts.letter}${Math.random().toString(36).slice(2, 7)}`
  const dir = mkdtempSync(join(tmpdir(), 'wharf-hosts-'))
  let topology: Topology | undefined
  t.teardown(async () => {
    if (topology) await stopHosts(topology)
  })
  const zones = [{ zone: 'a' }, { zone: 'b' }, { zone: 'c' }]
  let t0 = Date.now()
  topology = await startHosts({ dir, prefix, subnet, count: opts.addThird ? 2 : 3, labels: zones, registryPort })
  figure(opts.addThird ? 'two hosts up and in one swarm' : 'three hosts up and in one swarm', Date.now() - t0)
  const manager = DockerEngine.at(topology.hosts[0]!.dockerHost, testRegistryLogin())
  if (opts.addThird) {
    t0 = Date.now()
    const h = await addHost(topology, { labels: zones[2]! })
    await until('the third node ready', async () => (await manager.listNodes()).find((n) => n.address === h.address)?.state === 'ready')
    figure('a host added (namespace, engine, join, ready)', Date.now() - t0)
  }
  const h3 = topology.hosts[2]!

  // A NATS server in each host's namespace, one cluster; the services (in this namespace) reach them at the hosts' addresses.
  t0 = Date.now()
  const natsDir = join(dir, 'nats')
  const members: NatsMember[] = topology.hosts.map((h) => ({
    name: h.name,
    host: h.address,
    clientPort: 4222,
    clusterPort: 6222,
    monitorPort: 8222,
    netns: h.netns,
  }))
  const nats = await startNatsCluster(natsDir, members, prefix)
  // Stopped after the services (teardowns run last first).
  t.teardown(() => stopNatsCluster(nats, 2_000))
  const natsUrl = clusterUrl(members)
  // As the services connect (events/connection.ts): after a cut, another server first. nats.js' own
  // choice, the lost server, left a dial to it that the library gives up on but does not end; the
  // kernel did, after ~2 minutes of SYNs, and the test's process could not exit until then.
  const nc = await connect({
    servers: natsUrl.split(','),
    maxReconnectAttempts: -1,
    pingInterval: PING_INTERVAL_MS,
    timeout: CONNECT_TIMEOUT_MS,
    reconnectToServer: leastRecentlyDialled,
  })
  t.teardown(() => nc.close())
  // JetStream answers once the cluster has elected its meta leader.
  const jsm = await until('JetStream of the cluster', async () => {
    const m = await jetstreamManager(nc)
    await m.getAccountInfo()
    return m
  })
  figure('NATS cluster of three up (JetStream ready)', Date.now() - t0)

  // Not the test engine's controller: there may be none (`WHARF_TEST_ENGINE=none`).
  const c = await startTestController(t, {
    ...testRegistryEnv(),
    WHARF_DOMAIN: HOSTS_DOMAIN,
    WHARF_DOCKER_HOST: topology.hosts[0]!.dockerHost,
    WHARF_NATS_URL: natsUrl,
    WHARF_NATS_REPLICAS: '3',
  })
  const { store, pool, log } = c.deps
  const namespace = c.deps.cfg.namespace
  const token = await registerAndLogin(c, 'alice')
  const publishers = new Map<string, Publisher>()
  for (const h of topology.hosts) {
    const p = await Publisher.start({
      docker: DockerEngine.at(h.dockerHost),
      swarm: manager,
      store,
      pool,
      log,
      namespace,
      host: h.address,
      ...(opts.onAnnounced ? { onAnnounced: opts.onAnnounced } : {}),
    })
    publishers.set(h.name, p)
    t.teardown(() => p.stop())
  }
  const scheduler = await startScheduler(
    { store, pool, docker: manager, namespace, registry: testRegistry(), log },
    { deployTimeoutMs: opts.deployTimeoutMs, lostHostsMs: opts.lostHostsMs, spec: { stopGraceMs: 2_000, updateMonitorMs: 1_000, drainMs: 1_000 } },
  )
  t.teardown(() => scheduler.stop())
  await startTestRouter(t, c, { domain: HOSTS_DOMAIN, ...(opts.onApplied ? { onApplied: opts.onApplied } : {}) })
  const routerPort = testRouterPort()

  const app = opts.app ?? `${opts.letter}h${Date.now().toString(36).slice(-5)}${Math.floor(Math.random() * 1e3)}`
  const call = async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await c.call(method, `/v1/apps/${app}${path}`, { token, ...(body === undefined ? {} : { body }) })
    if (res.status >= 300) throw Object.assign(new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`), { res })
    return res.body
  }
  const created = await c.call('POST', '/v1/apps', { token, body: { name: app } })
  if (created.status !== 201) throw new Error(`create ${app}: ${created.status} ${JSON.stringify(created.body)}`)
  // Built on host 1 from a busybox made there (its images go with the host's data-root at the end).
  const docker = dockerClient(topology.hosts[0]!.dockerHost)
  await importBusybox(docker, dir)
  // The app's runtime stream, read on from where the last read ended (the waits poll it often).
  let known: RecordedEvent[] = []
  const runtime = async (): Promise<RecordedEvent[]> => {
    const last = known.at(-1)?.seq ?? 0
    const { events } = await store.readStream(streamId('runtime', app), { fromSeq: last + 1 })
    const after = known.at(-1)?.seq ?? 0
    known = known.concat(events.filter((e) => e.seq > after))
    return known
  }
  const outcome = (release: number, ms?: number) =>
    until(
      `the deploy of v${release}`,
      async () =>
        (await runtime()).find((e) => (e.type === 'DeployCompleted' || e.type === 'DeployFailed') && (e.data as { release: number }).release === release),
      ms,
    )
  const ps = async () => (await call('GET', '/ps')).processes as Proc[]
  const webUp = async (n: number, ok: (up: Proc[]) => boolean = () => true) => {
    const up = (await ps()).filter((p) => p.type === 'web' && p.state === 'up')
    return up.length === n && ok(up) ? up : undefined
  }
  const hosts = topology.hosts
  const perHost = (up: Proc[]) => Object.fromEntries(hosts.map((h) => [h.name, up.filter((p) => p.host === h.address).length]))
  const dumpTasks = async () => {
    const nodeName = new Map((await manager.listNodes()).map((n) => [n.id, `${n.address} ${n.state}`]))
    for (const x of await manager.listTasks(serviceName(namespace, app, 'web')))
      console.error(
        `# hosts: task ${x.id.slice(0, 10)} slot ${x.slot ?? '-'} release ${x.spec.ContainerSpec?.Labels?.[LABELS.release]} container ${x.containerId?.slice(0, 12) ?? '-'} on ${nodeName.get(x.nodeId ?? '') ?? x.nodeId}: desired ${x.desiredState}, ${x.state} ${x.message ?? ''} ${x.err ?? ''}`,
      )
    for (const p of await ps()) console.error(`# hosts: ps ${p.container} v${p.release} ${p.state} at ${p.host}:${p.port}`)
  }
  const releases = async () => (await call('GET', '/releases')).releases as { version: number }[]

  // Spread over the zones; v1 at web=1.
  await call('POST', '/config', { values: { WHARF_PLACEMENT_SPREAD: 'zone' } })
  const image = await buildTestImage(t, docker, DOCKERFILE)
  const v1 = (await call('POST', '/builds', { image, procfile: PROCFILE, port: 5000 })).release as number
  const first = await outcome(v1, Math.max(60_000, opts.deployTimeoutMs))
  if (first.type !== 'DeployCompleted') throw new Error(`v${v1} at web=1: ${first.type} ${JSON.stringify(first.data)}`)
  return {
    topology,
    manager,
    docker,
    members,
    nats,
    natsDir,
    jsm,
    c,
    namespace,
    token,
    publishers,
    routerPort,
    app,
    appHost: `${app}.${HOSTS_DOMAIN}`,
    call,
    runtime,
    outcome,
    ps,
    releases,
    webUp,
    perHost,
    dumpTasks,
    v1,
    h3,
  }
}
