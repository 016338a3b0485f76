// Not in `make test`: run it with `make test TESTS=infra/hosts-cut.int.scenario.ts` (add
// `WHARF_TEST_ENGINE=none` on a machine without an engine in the root namespace). In about half the
// runs on this machine it stalls after the cut: nats-server 2.9.10 takes a server cut off without a
// reset for offline only after ~3 minutes, and until then JetStream keeps placing read consumers on
// it (see the README, "Many hosts"). infra/hosts.int.test.ts (one NATS in the root namespace, a host
// cut while serving) is the part in CI.
/**
 * Wharf on three simulated hosts (infra/hosts.ts): network namespaces with a Docker engine each,
 * joined into one swarm of their own (nothing of it on the machine's engine, bridges or iptables),
 * and a NATS server in each namespace, the three in one cluster; the event and log streams at
 * replicas 3, every client given the three URLs. The platform's services run here against it: a test
 * controller, the scheduler on host 1's engine (the manager), one publisher per host announcing at
 * its host's address, and the router of the test nginx.
 *
 * An app runs web=6, two containers per host (spread over the zone labels), all six served through
 * the router. Host 3 is then cut off (link down; engine, containers and NATS server SIGKILLed) during
 * a rolling deploy while requests go through the router: the deploy converges on the two hosts left,
 * every container of the lost host ends once on its stream, the read model matches the engines. The
 * host then comes back (link up, engine and NATS server started again): its node is ready, its NATS
 * server catches up, its publisher announces again, and a scale places the new containers on it.
 * Prints the figures: time to add a host, deploy web=6, the deploy through the cut, recovery,
 * rejoin, failed requests out of the total.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { DockerEngine, dockerClient } from '../core/engine/docker.js'
import { LABELS } from '../domain/runtime/labels.js'
import { EventSubjects, streamId, type RecordedEvent } from '../events/index.js'
import { buildTestImage, testRegistry } from '../services/builder/testing.js'
import { registerAndLogin, startTestController } from '../services/controller/testing.js'
import { Publisher } from '../services/publisher/publisher.js'
import { startTestRouter, testRouterPort } from '../services/router/testing.js'
import { serviceName } from '../services/scheduler/model.js'
import { startScheduler } from '../services/scheduler/service.js'
import { until as poll } from '../test/harness.js'
import { get, requestLoop } from '../test/http.js'
import { addHost, freeSubnet, killHost, restartHost, startHosts, stopHosts, type Topology } from './hosts.js'
import { clusterUrl, restartNatsMember, startNatsCluster, stopNatsCluster, type NatsMember, type RunningMember } from './nats-cluster.js'
import { importBusybox } from './parts/docker.js'
import { isAlive } from './proc.js'

// ~1.5 min on an idle machine; up to ~5 min at a load average of 30, and its teardown must not be cut short (it removes namespaces and engines).
t.setTimeout(480_000)

const DOMAIN = 'wharf.localhost'
const DOCKERFILE = 'FROM busybox\nRUN mkdir /www && echo hello > /www/index.html\nCMD ["httpd", "-f", "-p", "5000", "-h", "/www"]\n'
/** `/who.txt` names the container; the shell exits at SIGTERM (httpd as PID 1 would ignore it). */
const PROCFILE = { web: `echo "$HOSTNAME" > /www/who.txt; httpd -f -p $PORT -h /www & trap 'exit 0' TERM; wait` }

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`

/** test/harness.ts's poll, with a minute's patience by default. */
const until = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> => poll(what, fn, ms)

type Proc = { container: string; type: string; state: string; host: string; release: number; port: number | null }

t.test(
  'three hosts, a NATS server on each: web=6 over them through the router; a host cut off during a rolling deploy, the deploy converges on the others; the host rejoins',
  async (t) => {
    const figures: Record<string, string> = {}
    // On stderr, so `make test` shows them (it prints the TAP of failing files only); also those of a run that failed.
    t.teardown(() => {
      for (const [k, v] of Object.entries(figures)) console.error(`# hosts: ${k}: ${v}`)
    })
    const registry = testRegistry()
    const registryPort = Number(registry.split(':')[1])
    const subnet = await freeSubnet()
    const prefix = `w${Math.random().toString(36).slice(2, 7)}`
    const dir = mkdtempSync(join(tmpdir(), 'wharf-hosts-'))
    let topology: Topology | undefined
    t.teardown(async () => {
      if (topology) await stopHosts(topology)
    })

    // Two hosts, then a third added as a worker: what an operator's `infra hosts:add` does.
    let t0 = Date.now()
    topology = await startHosts({ dir, prefix, subnet, count: 2, labels: [{ zone: 'a' }, { zone: 'b' }], registryPort })
    figures['two hosts up and in one swarm'] = secs(Date.now() - t0)
    t0 = Date.now()
    const h3 = await addHost(topology, { labels: { zone: 'c' } })
    const manager = DockerEngine.at(topology.hosts[0]!.dockerHost)
    await until('the third node ready', async () => (await manager.listNodes()).find((n) => n.address === h3.address)?.state === 'ready')
    figures['a host added (namespace, engine, join, ready)'] = secs(Date.now() - t0)
    const nodes = await manager.listNodes()
    t.strictSame(nodes.map((n) => n.address).sort(), topology.hosts.map((h) => h.address).sort(), "the swarm's nodes are the three hosts, at their addresses")
    t.strictSame(nodes.map((n) => n.labels.zone).sort(), ['a', 'b', 'c'], 'with their zone labels')
    t.ok(nodes.every((n) => n.state === 'ready' && n.availability === 'active'))

    // A NATS server in each host's namespace, one cluster; the services (in this namespace) reach them at the hosts' addresses.
    t0 = Date.now()
    const natsDir = join(dir, 'nats')
    const members: NatsMember[] = topology.hosts.map((h) => ({ name: h.name, host: h.address, clientPort: 4222, clusterPort: 6222, netns: h.netns }))
    const nats: RunningMember[] = await startNatsCluster(natsDir, members, prefix)
    t.teardown(() => stopNatsCluster(nats, 2_000))
    const natsUrl = clusterUrl(members)
    const nc = await connect({ servers: natsUrl.split(','), maxReconnectAttempts: -1, pingInterval: 2_000 })
    t.teardown(() => nc.close())
    // JetStream answers once the cluster has elected its meta leader.
    const jsm = await until('JetStream of the cluster', async () => {
      const m = await jetstreamManager(nc)
      await m.getAccountInfo()
      return m
    })
    figures['NATS cluster of three up (JetStream ready)'] = secs(Date.now() - t0)

    const c = await startTestController(t, {
      WHARF_DOMAIN: DOMAIN,
      // Host 1's engine (the swarm's manager) builds and pushes: the machine's own engine is not needed.
      WHARF_DOCKER_HOST: topology.hosts[0]!.dockerHost,
      WHARF_REGISTRY_PORT: String(registryPort),
      WHARF_NATS_URL: natsUrl,
      WHARF_NATS_REPLICAS: '3',
    })
    const { store, pool, log } = c.deps
    const namespace = c.deps.cfg.namespace
    // Through the cluster, again while it elects a leader after a loss.
    const streamInfo = () => until('the stream info', () => jsm.streams.info(new EventSubjects(namespace).stream))
    const info0 = await streamInfo()
    t.equal(info0.config.num_replicas, 3, 'the event stream has three replicas')
    t.strictSame([info0.cluster?.leader, ...(info0.cluster?.replicas ?? []).map((r) => r.name)].sort(), ['h1', 'h2', 'h3'], 'one on each host')
    const token = await registerAndLogin(c, 'alice')
    const publishers = new Map<string, Publisher>()
    for (const h of topology.hosts) {
      const p = await Publisher.start({ docker: DockerEngine.at(h.dockerHost), store, pool, log, namespace, host: h.address })
      publishers.set(h.name, p)
      t.teardown(() => p.stop())
    }
    const scheduler = await startScheduler(
      { store, pool, docker: manager, namespace, registry, log },
      { deployTimeoutMs: 90_000, lostHostsMs: 500, spec: { stopGraceMs: 2_000, updateMonitorMs: 1_000 } },
    )
    t.teardown(() => scheduler.stop())
    await startTestRouter(t, c, { domain: DOMAIN })
    const port = testRouterPort()

    const app = `mh${Date.now().toString(36).slice(-5)}${Math.floor(Math.random() * 1e3)}`
    const call = async (method: string, path: string, body?: unknown): Promise<any> => {
      const res = await c.call(method, `/v1/apps/${app}${path}`, { token, ...(body === undefined ? {} : { body }) })
      if (res.status >= 300) throw Object.assign(new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`), { res })
      return res.body
    }
    const created = await c.call('POST', '/v1/apps', { token, body: { name: app } })
    t.equal(created.status, 201)
    // Built on host 1 from a busybox made there (its images go with the host's data-root at the end).
    const docker = dockerClient(topology.hosts[0]!.dockerHost)
    await importBusybox(docker, dir)
    const runtime = async (): Promise<RecordedEvent[]> => (await store.readStream(streamId('runtime', app))).events
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
    const perHost = (up: Proc[]) => Object.fromEntries(topology!.hosts.map((h) => [h.name, up.filter((p) => p.host === h.address).length]))

    /** What Swarm has of the app's web service and what the read model has up, on stderr: to tell why when something is not as expected. */
    const dumpTasks = async () => {
      const nodeName = new Map((await manager.listNodes()).map((n) => [n.id, `${n.address} ${n.state}`]))
      for (const x of await manager.listTasks(serviceName(namespace, app, 'web')))
        console.error(
          `# hosts: task ${x.id.slice(0, 10)} release ${x.spec.ContainerSpec?.Labels?.[LABELS.release]} on ${nodeName.get(x.nodeId ?? '') ?? x.nodeId}: desired ${x.desiredState}, ${x.state} ${x.message ?? ''} ${x.err ?? ''}`,
        )
      for (const p of await ps()) console.error(`# hosts: ps ${p.container} v${p.release} ${p.state} at ${p.host}:${p.port}`)
    }

    // A placement setting that is not one: refused, nothing recorded.
    const releases = async () => (await call('GET', '/releases')).releases as { version: number }[]
    const before = (await releases()).length
    const bad = await c.call('POST', `/v1/apps/${app}/config`, { token, body: { values: { WHARF_PLACEMENT_WEB: 'zone==a' } } })
    t.equal(bad.status, 400)
    t.equal(bad.body.code, 'WHARF_INVALID')
    t.equal((await releases()).length, before, 'no release made')

    // Spread over the zones: two containers per host.
    await call('POST', '/config', { values: { WHARF_PLACEMENT_SPREAD: 'zone' } })
    const image = await buildTestImage(t, docker, DOCKERFILE)
    const v1 = (await call('POST', '/builds', { image, procfile: PROCFILE, port: 5000 })).release as number
    t.equal((await outcome(v1)).type, 'DeployCompleted', `v${v1} at web=1`)
    t0 = Date.now()
    await call('POST', '/formation', { web: 6 })
    const up6 = await until('six web containers up', () => webUp(6))
    figures['deploy web=6 over three hosts (scale to all announced)'] = secs(Date.now() - t0)
    t.strictSame(perHost(up6), { h1: 2, h2: 2, h3: 2 }, 'two containers on each host, announced at its host address')
    // Through the router: every container answers (who.txt is its hostname, the container id's first 12).
    const host = `${app}.${DOMAIN}`
    const seen = new Set<string>()
    await until('the router reaching all six', async () => {
      const a = await get(port, host, '/who.txt')
      if (a.status === 200) seen.add(a.body.trim())
      return seen.size === 6
    })
    t.strictSame([...seen].sort(), up6.map((p) => p.container.slice(0, 12)).sort(), 'each of the six served through the router')
    figures['web=6 -> the router served all six'] = secs(Date.now() - t0)

    // A rolling deploy (a config change makes a release); host 3 is cut off once its first new
    // container is announced, while requests go through the router.
    const lostBefore = up6.filter((p) => p.host === h3.address)
    const loop = requestLoop(port, host, { path: '/who.txt', intervalMs: 20, connections: 4, timeoutMs: 10_000 })
    t.teardown(() => loop.stop())
    await sleep(500)
    t0 = Date.now()
    await call('POST', '/config', { values: { GREETING: 'during the cut' } })
    const v2 = (await releases())[0]!.version
    t.ok(v2 > v1)
    const isV2Start = (e: RecordedEvent) => e.type === 'ContainerStarted' && (e.data as { release: number }).release === v2
    await until(`a v${v2} container announced`, async () => (await runtime()).some(isV2Start), 30_000)
    const tCut = Date.now()
    const natsH3 = nats.find((m) => m.name === 'h3')!
    await killHost(topology, 'h3')
    t.notOk(isAlive(h3.pid) || isAlive(natsH3.pid), "host 3's engine and NATS server are dead")
    // Reads may wait for the cluster to elect another metadata leader (consumers are made there).
    const atCut = await until('the runtime stream read after the cut', runtime)
    t.notOk(
      atCut.some((e) => e.type === 'DeployCompleted' && (e.data as { release: number }).release === v2 && Date.parse(e.occurredAt) <= tCut),
      `the deploy of v${v2} was under way when the host was cut (${atCut.filter((e) => isV2Start(e) && Date.parse(e.occurredAt) <= tCut).length} of 6 new containers announced)`,
    )
    figures['deploy started -> host 3 cut (first new container announced)'] = secs(tCut - t0)
    const done = await outcome(v2, 120_000)
    if (done.type !== 'DeployCompleted') await dumpTasks()
    t.equal(done.type, 'DeployCompleted', `v${v2} deployed through the loss of a host: ${JSON.stringify(done.data)}`)
    figures['host 3 cut -> the deploy completed on the two left'] = secs(Date.parse(done.occurredAt) - tCut)
    const final = await until(`six v${v2} web containers up`, () => webUp(6, (up) => up.every((p) => p.release === v2)), 120_000)
    figures['host 3 cut -> six new containers up and announced'] = secs(Date.now() - tCut)
    // Swarm spreads over the zones left as it can (3+3 or 4+2).
    t.match(perHost(final), { h3: 0 }, `all on the two hosts left (${JSON.stringify(perHost(final))})`)
    // The routes follow: only the six new containers answer.
    const finalIds = new Set(final.map((p) => p.container.slice(0, 12)))
    await until('the router serving only the new containers', async () => {
      const probe = requestLoop(port, host, { path: '/who.txt', intervalMs: 5, connections: 2, timeoutMs: 5_000 })
      await sleep(500)
      await probe.stop()
      return probe.counts.failed === 0 && [...probe.counts.bodies].every((b) => finalIds.has(b)) && probe.counts.bodies.size >= 4
    })
    await loop.stop()
    figures['requests through the router from the deploy to its end (host cut)'] = `${loop.counts.failed} failed of ${loop.counts.ok + loop.counts.failed}`
    if (loop.failures.length) console.error(`# hosts: failed requests, first: ${loop.failures.slice(0, 3).join('; ')}`)
    t.ok(loop.counts.ok > 0)
    t.ok(loop.counts.failed <= (loop.counts.ok + loop.counts.failed) * 0.05, `at most 5% of the requests fail (${loop.counts.failed})`)

    // After the recovery, the router sends nothing to the lost host.
    const after = requestLoop(port, host, { path: '/who.txt', intervalMs: 10, connections: 2, timeoutMs: 5_000 })
    await sleep(1_500)
    await after.stop()
    t.equal(after.counts.failed, 0, `no request fails once recovered (${after.counts.ok} sent): ${after.failures.slice(0, 3).join('; ')}`)
    t.notOk(
      lostBefore.some((p) => after.counts.bodies.has(p.container.slice(0, 12))),
      'none answered by the lost containers',
    )

    // No event lost: the stream kept its three replicas' leader on the hosts left; what the read
    // model has up is exactly what the live engines run; every container that ran on the lost host
    // (old or new) has its end on its stream, once.
    const info1 = await streamInfo()
    t.not(info1.cluster?.leader, 'h3', `the stream's leader is on a host left (${info1.cluster?.leader})`)
    const live = [topology.hosts[0]!, topology.hosts[1]!]
    const agree = async (hosts: typeof live) => {
      const running = (
        await Promise.all(hosts.map((h) => DockerEngine.at(h.dockerHost).listContainers({ labels: { [LABELS.namespace]: namespace, [LABELS.app]: app } })))
      )
        .flat()
        .map((x) => x.id.slice(0, 12))
        .sort()
      const announced = (await ps())
        .filter((p) => p.state === 'up')
        .map((p) => p.container)
        .sort()
      if (JSON.stringify(running) !== JSON.stringify(announced)) {
        const where = async (id: string) => {
          for (const h of hosts) {
            const c = await DockerEngine.at(h.dockerHost)
              .inspectContainer(id)
              .catch(() => undefined)
            if (c) return `${id}@${h.name}(v${c.labels[LABELS.release]} running ${c.running})`
          }
          return id
        }
        const extra = await Promise.all(running.filter((x) => !announced.includes(x)).map(where))
        const rows = (await ps()).filter((p) => extra.some((e) => e.startsWith(p.container))).map((p) => `${p.container} ${p.state} at ${p.host}`)
        throw new Error(
          `running but not up in the read model: ${extra.join(' ') || '-'} (read model: ${rows.join(', ') || 'none'}); up but not running: ${announced.filter((x) => !running.includes(x)).join(' ') || '-'}`,
        )
      }
      return true
    }
    await until('the read model and the engines agree', () => agree(live))
    const endedOnce = (events: RecordedEvent[], on: string) => {
      const started = events.filter((e) => e.type === 'ContainerStarted' && (e.data as { host: string }).host === on)
      const ends = (id: string) =>
        events.filter((e) => ['ContainerStopped', 'ContainerCrashed'].includes(e.type) && (e.data as { container: string }).container === id)
      return { started, unended: started.filter((s) => ends((s.data as { container: string }).container).length !== 1) }
    }
    let events = await runtime()
    const onH3 = endedOnce(events, h3.address)
    t.ok(onH3.started.length >= 2, `${onH3.started.length} containers ran on host 3`)
    t.strictSame(
      onH3.unended.map((e) => (e.data as { container: string }).container),
      [],
      'each ended once',
    )
    t.ok(
      lostBefore.every((p) =>
        events.some(
          (e) =>
            e.type === 'ContainerCrashed' &&
            e.actor === 'system:scheduler' &&
            (e.data as { container: string }).container.startsWith(p.container) &&
            new RegExp(`its host ${h3.address.replace(/\./g, '\\.')} .* is down`).test((e.data as { reason: string }).reason),
        ),
      ),
      'the old containers of host 3 announced lost with their host by the scheduler',
    )
    const seqs = events.map((e) => e.seq)
    t.strictSame(
      seqs,
      [...seqs].sort((a, b) => a - b),
      'the stream reads in order',
    )

    // The host comes back: link up, engine started again (same data-root: the same swarm node), its NATS server.
    t0 = Date.now()
    await restartHost(topology, 'h3')
    const natsBack = await restartNatsMember(natsDir, members, 'h3', prefix)
    nats.splice(nats.indexOf(natsH3), 1, natsBack)
    await until('host 3 ready in the swarm again', async () => (await manager.listNodes()).find((n) => n.address === h3.address)?.state === 'ready')
    figures['host 3 back -> its node ready'] = secs(Date.now() - t0)
    t.equal((await manager.listNodes()).length, 3, 'the same node, not a fourth')
    await until("host 3's NATS server a current replica of the stream again", async () =>
      (await streamInfo()).cluster?.replicas?.some((r) => r.name === 'h3' && r.current),
    )
    figures['host 3 back -> its NATS server a current replica'] = secs(Date.now() - t0)
    await until("host 3's publisher following its engine again", async () => publishers.get('h3')!.health().ok)
    t.ok((publishers.get('h3')!.health().detail.reconnects as number) >= 1, "host 3's publisher reconnected to the engine")

    // A later scale places the new containers on it (the spread over zones fills zone c first).
    t0 = Date.now()
    await call('POST', '/formation', { web: 9 })
    const up9 = await until('nine web containers up', () => webUp(9)).catch(async (err) => {
      await dumpTasks()
      throw err
    })
    figures['host 3 back: web=9 (scale to all announced)'] = secs(Date.now() - t0)
    // The spread over zones fills zone c first: all three new ones after 3+3; after 4+2, two or three (a tie with zone b).
    const left = perHost(final)
    t.ok(
      perHost(up9).h3! >= 9 - Math.max(left.h1!, 3) - Math.max(left.h2!, 3),
      `the new containers on host 3, announced at its address (${JSON.stringify(left)} -> ${JSON.stringify(perHost(up9))})`,
    )
    const onH3Now = up9.filter((p) => p.host === h3.address).map((p) => p.container.slice(0, 12))
    const seenH3 = new Set<string>()
    await until('the router reaching the containers on host 3', async () => {
      const a = await get(port, host, '/who.txt')
      if (a.status === 200 && onH3Now.includes(a.body.trim())) seenH3.add(a.body.trim())
      return seenH3.size === onH3Now.length
    })
    await until('the read model and the three engines agree', () => agree(topology!.hosts))
    events = await runtime()
    t.strictSame(
      endedOnce(events, h3.address)
        .unended.map((e) => (e.data as { container: string }).container.slice(0, 12))
        .sort(),
      [...onH3Now].sort(),
      "after the rejoin, host 3's old containers still ended once; its new ones run",
    )
  },
)
