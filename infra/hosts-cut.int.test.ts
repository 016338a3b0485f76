/**
 * Wharf on three simulated hosts (infra/hosts.ts, set up by infra/hosts-testing.ts): network
 * namespaces with a Docker engine each, joined into one swarm of their own (nothing of it on the
 * machine's engine, bridges or iptables), and a NATS server in each namespace, the three in one
 * cluster; the event and log streams at replicas 3, every client given the three URLs. It needs no
 * Docker engine in the root namespace (host 1 builds the image): `WHARF_TEST_ENGINE=none` runs it on
 * a machine without one.
 *
 * Two hosts, then a third added as a worker. An app runs web=6, two containers per host (spread over
 * the zone labels), all six served through the router. Host 3 is then cut off (link down; engine,
 * containers and NATS server SIGKILLed) during a rolling deploy while requests go through the router:
 * the deploy converges on the two hosts left, the lost host's containers are announced gone by the
 * scheduler, each ends once on its stream, the read model matches the engines, the router sends
 * nothing to the lost host. The host then comes back (link up, engine and NATS server started again):
 * its node is ready, its NATS server catches up, its publisher announces again, and a scale places
 * new containers on it. Prints the figures: time to add a host, deploy web=6, the deploy through the
 * cut, recovery, rejoin, failed requests out of the total; and, when it fails, what it saw each 3 s
 * after the cut (stream and consumers, nodes, NATS routes, the read model).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { DockerEngine } from '../core/engine/docker.js'
import { LABELS } from '../domain/runtime/labels.js'
import { EventSubjects, type RecordedEvent } from '../events/index.js'
import { get, requestLoop } from '../test/http.js'
import { killHost, restartHost, type SimHost } from './hosts.js'
import { secs, startHostsPlatform, until } from './hosts-testing.js'
import { restartNatsMember } from './nats-cluster.js'
import { isAlive } from './proc.js'

// ~1.5 min on an idle machine; up to ~5 min at a load average of 40, and its teardown must not be cut short (it removes namespaces and engines).
t.setTimeout(480_000)

t.test(
  'three hosts, a NATS server on each: web=6 over them through the router; a host cut off during a rolling deploy, the deploy converges on the others; the host rejoins',
  async (t) => {
    const figures: Record<string, string> = {}
    const seen: string[] = []
    // On stderr, so `make test` shows them (it prints the TAP of failing files only); what it saw after the cut only when it failed.
    t.teardown(() => {
      if (!t.passing()) for (const line of seen) console.error(`# hosts: ${line}`)
      for (const [k, v] of Object.entries(figures)) console.error(`# hosts: ${k}: ${v}`)
    })
    const p = await startHostsPlatform(t, {
      letter: 'w',
      addThird: true,
      figure: (k, ms) => (figures[k] = secs(ms)),
      deployTimeoutMs: 90_000,
      lostHostsMs: 500,
    })
    const { topology, manager, jsm, call, runtime, outcome, releases, webUp, perHost, h3 } = p
    const nodes = await manager.listNodes()
    t.strictSame(nodes.map((n) => n.address).sort(), topology.hosts.map((h) => h.address).sort(), "the swarm's nodes are the three hosts, at their addresses")
    t.strictSame(nodes.map((n) => n.labels.zone).sort(), ['a', 'b', 'c'], 'with their zone labels')
    t.ok(nodes.every((n) => n.state === 'ready' && n.availability === 'active'))
    const stream = new EventSubjects(p.namespace).stream
    // Through the cluster, again while it elects a leader after a loss.
    const streamInfo = () => until('the stream info', () => jsm.streams.info(stream))
    const info0 = await streamInfo()
    t.equal(info0.config.num_replicas, 3, 'the event stream has three replicas')
    t.strictSame([info0.cluster?.leader, ...(info0.cluster?.replicas ?? []).map((r) => r.name)].sort(), ['h1', 'h2', 'h3'], 'one on each host')

    // A placement setting that is not one: refused, nothing recorded.
    const before = (await releases()).length
    const bad = await p.c.call('POST', `/v1/apps/${p.app}/config`, { token: p.token, body: { values: { WHARF_PLACEMENT_WEB: 'zone==a' } } })
    t.equal(bad.status, 400)
    t.equal(bad.body.code, 'WHARF_INVALID')
    t.equal((await releases()).length, before, 'no release made')

    // Spread over the zones: two containers per host.
    let t0 = Date.now()
    await call('POST', '/formation', { web: 6 })
    const up6 = await until('six web containers up', () => webUp(6))
    figures['deploy web=6 over three hosts (scale to all announced)'] = secs(Date.now() - t0)
    t.strictSame(perHost(up6), { h1: 2, h2: 2, h3: 2 }, 'two containers on each host, announced at its host address')
    // Through the router: every container answers (who.txt is its hostname, the container id's first 12).
    const port = p.routerPort
    const host = p.appHost
    const answered = new Set<string>()
    await until('the router reaching all six', async () => {
      const a = await get(port, host, '/who.txt')
      if (a.status === 200) answered.add(a.body.trim())
      return answered.size === 6
    })
    t.strictSame([...answered].sort(), up6.map((x) => x.container.slice(0, 12)).sort(), 'each of the six served through the router')
    figures['web=6 -> the router served all six'] = secs(Date.now() - t0)

    // A rolling deploy (a config change makes a release); host 3 is cut off once a new container on
    // host 1 or 2 is announced, while requests go through the router. Until then the router may know
    // no live container of the new release but those of host 3 (see the README, "Simulated hosts").
    // The router's event delivery stalls for seconds after the cut (JetStream replaces the leaders
    // that were on host 3); the old containers on hosts 1 and 2 drain until the router has taken
    // them out (its RouteServed), so no request fails.
    const lostBefore = up6.filter((x) => x.host === h3.address)
    const loop = requestLoop(port, host, { path: '/who.txt', intervalMs: 20, connections: 4, timeoutMs: 10_000 })
    t.teardown(() => loop.stop())
    await sleep(500)
    t0 = Date.now()
    await call('POST', '/config', { values: { GREETING: 'during the cut' } })
    const v2 = (await releases())[0]!.version
    t.ok(v2 > p.v1)
    const isV2Start = (e: RecordedEvent) => e.type === 'ContainerStarted' && (e.data as { release: number }).release === v2
    const onHostLeft = (e: RecordedEvent) => isV2Start(e) && (e.data as { host: string }).host !== h3.address
    await until(`a v${v2} container announced on host 1 or 2`, async () => (await runtime()).some(onHostLeft), 30_000)
    // Requests in flight as the host is cut (each answered after 3 s): some are on host 3's peers,
    // with nothing but a reset to tell nginx so, which the router gives when it takes host 3 for
    // silent (services/router/liveness.ts). Each then goes to another peer (a GET).
    const inFlight = Array.from({ length: 12 }, () => {
      const t1 = Date.now()
      return get(port, host, '/cgi-bin/slow', false, 20_000, false).then(
        (a) => ({ status: a.status, ms: Date.now() - t1, error: '' }),
        (err: Error) => ({ status: 0, ms: Date.now() - t1, error: err.message }),
      )
    })
    await sleep(300)
    const tCut = Date.now()
    const natsH3 = p.nats.find((m) => m.name === 'h3')!
    await killHost(topology, 'h3')
    t.notOk(isAlive(h3.pid) || isAlive(natsH3.pid), "host 3's engine and NATS server are dead")
    const watching = watchAfterCut(p, stream, tCut, seen)
    t.teardown(() => watching.stop())
    const atCut = await until('the runtime stream read after the cut', runtime)
    t.notOk(
      atCut.some((e) => e.type === 'DeployCompleted' && (e.data as { release: number }).release === v2 && Date.parse(e.occurredAt) <= tCut),
      `the deploy of v${v2} was under way when the host was cut (${atCut.filter((e) => isV2Start(e) && Date.parse(e.occurredAt) <= tCut).length} of 6 new containers announced)`,
    )
    figures['deploy started -> host 3 cut (a new container announced on host 1 or 2)'] = secs(tCut - t0)
    const done = await outcome(v2, 120_000)
    if (done.type !== 'DeployCompleted') await p.dumpTasks()
    t.equal(done.type, 'DeployCompleted', `v${v2} deployed through the loss of a host: ${JSON.stringify(done.data)}`)
    figures['host 3 cut -> the deploy completed on the two left'] = secs(Date.parse(done.occurredAt) - tCut)
    // Swarm may have had the new containers of host 3 up before it took the host for down (the deploy
    // then completes at once); those are announced gone and started again on the hosts left.
    const final = await until(
      `six v${v2} web containers up on the two hosts left`,
      () => webUp(6, (up) => up.every((x) => x.release === v2 && x.host !== h3.address)),
      120_000,
    ).catch(async (err) => {
      await p.dumpTasks()
      await agree(p, topology.hosts.slice(0, 2)).catch((e: Error) => console.error(`# hosts: ${e.message}`))
      throw err
    })
    figures['host 3 cut -> six new containers up and announced'] = secs(Date.now() - tCut)
    // Swarm spreads over the zones left as it can (3+3 or 4+2).
    t.match(perHost(final), { h3: 0 }, `all on the two hosts left (${JSON.stringify(perHost(final))})`)
    // The routes follow: only the six new containers answer.
    const finalIds = new Set(final.map((x) => x.container.slice(0, 12)))
    await until('the router serving only the new containers', async () => {
      const probe = requestLoop(port, host, { path: '/who.txt', intervalMs: 5, connections: 2, timeoutMs: 5_000 })
      await sleep(500)
      await probe.stop()
      return probe.counts.failed === 0 && [...probe.counts.bodies].every((b) => finalIds.has(b)) && probe.counts.bodies.size >= 4
    })
    await loop.stop()
    figures['requests through the router from the deploy to its end (host cut)'] = `${loop.counts.failed} failed of ${loop.counts.ok + loop.counts.failed}`
    // A request sent on a kept-alive connection to host 3 as it was cut waits until the router takes
    // the host for silent and closes its connections (services/router/liveness.ts), then nginx sends
    // it to another peer: seconds, not the read timeout.
    figures['the slowest request answered through the cut'] = secs(loop.counts.slowestMs)
    if (loop.failures.length) console.error(`# hosts: failed requests (the cut at ${new Date(tCut).toISOString()}): ${loop.failures.slice(0, 20).join('; ')}`)
    const slow = await Promise.all(inFlight)
    figures['requests in flight (3 s each) as host 3 was cut'] =
      `${slow.filter((x) => x.status === 200).length} answered of ${slow.length}, the slowest in ${secs(Math.max(...slow.map((x) => x.ms)))}`
    t.strictSame(
      slow.filter((x) => x.status !== 200).map((x) => x.error || x.status),
      [],
      'every request in flight as the host was cut is answered (those on host 3 by another peer)',
    )
    t.ok(loop.counts.ok > 0)
    t.equal(loop.counts.failed, 0, `no request fails (${loop.counts.failed} of ${loop.counts.ok + loop.counts.failed})`)

    // After the recovery, the router sends nothing to the lost host.
    const after = requestLoop(port, host, { path: '/who.txt', intervalMs: 10, connections: 2, timeoutMs: 5_000 })
    await sleep(1_500)
    await after.stop()
    t.equal(after.counts.failed, 0, `no request fails once recovered (${after.counts.ok} sent): ${after.failures.slice(0, 3).join('; ')}`)
    t.notOk(
      lostBefore.some((x) => after.counts.bodies.has(x.container.slice(0, 12))),
      'none answered by the lost containers',
    )

    // No event lost: the stream kept its three replicas' leader on the hosts left; what the read
    // model has up is exactly what the live engines run; every container that ran on the lost host
    // (old or new) has its end on its stream, once.
    const info1 = await streamInfo()
    t.not(info1.cluster?.leader, 'h3', `the stream's leader is on a host left (${info1.cluster?.leader})`)
    const live = [topology.hosts[0]!, topology.hosts[1]!]
    await until('the read model and the engines agree', () => agree(p, live))
    let events = await runtime()
    const onH3 = endedOnce(events, h3.address)
    t.ok(onH3.started.length >= 2, `${onH3.started.length} containers ran on host 3`)
    t.strictSame(
      onH3.unended.map((e) => (e.data as { container: string }).container),
      [],
      'each ended once',
    )
    const of = (e: RecordedEvent, id: string) => (e.data as { container: string }).container.startsWith(id)
    const lostWithHost = (id: string) =>
      events.some(
        (e) =>
          e.type === 'ContainerCrashed' &&
          e.actor === 'system:scheduler' &&
          of(e, id) &&
          new RegExp(`its host ${h3.address.replace(/\./g, '\\.')} .* is down`).test((e.data as { reason: string }).reason),
      )
    // Its own publisher announced it stopping: Swarm stopped it before the cut (that publisher saw nothing after).
    const stoppedBefore = (id: string) => events.some((e) => e.type === 'ContainerStopping' && e.actor === 'system:publisher' && of(e, id))
    t.ok(
      lostBefore.every((x) => lostWithHost(x.container) || stoppedBefore(x.container)),
      'the old containers of host 3 announced lost with their host by the scheduler (those Swarm had not stopped before the cut)',
    )
    const endedByPublisher = (id: string) =>
      events.some((e) => ['ContainerStopped', 'ContainerCrashed'].includes(e.type) && e.actor === 'system:publisher' && of(e, id))
    const h3Ids = onH3.started.map((e) => (e.data as { container: string }).container)
    t.ok(
      h3Ids.every((id) => lostWithHost(id) || endedByPublisher(id)),
      "every container of host 3 ended by the scheduler's lost-host announcement, or by its own publisher before the cut",
    )
    figures["host 3's containers ended by the scheduler (lost) / by their publisher (before the cut)"] =
      `${h3Ids.filter(lostWithHost).length} / ${h3Ids.filter((id) => !lostWithHost(id)).length}`
    const seqs = events.map((e) => e.seq)
    t.strictSame(
      seqs,
      [...seqs].sort((a, b) => a - b),
      'the stream reads in order',
    )
    watching.stop()

    // The host comes back: link up, engine started again (same data-root: the same swarm node), its NATS server.
    t0 = Date.now()
    await restartHost(topology, 'h3')
    const natsBack = await restartNatsMember(p.natsDir, p.members, 'h3', topology.prefix)
    p.nats.splice(p.nats.indexOf(natsH3), 1, natsBack)
    await until('host 3 ready in the swarm again', async () => (await manager.listNodes()).find((n) => n.address === h3.address)?.state === 'ready')
    figures['host 3 back -> its node ready'] = secs(Date.now() - t0)
    t.equal((await manager.listNodes()).length, 3, 'the same node, not a fourth')
    await until("host 3's NATS server a current replica of the stream again", async () =>
      (await streamInfo()).cluster?.replicas?.some((r) => r.name === 'h3' && r.current),
    )
    figures['host 3 back -> its NATS server a current replica'] = secs(Date.now() - t0)
    const publisher3 = p.publishers.get('h3')!
    await until("host 3's publisher following its engine again", async () => publisher3.health().ok)
    t.ok((publisher3.health().detail.reconnects as number) >= 1, "host 3's publisher reconnected to the engine")

    // A later scale places the new containers on it (the spread over zones fills zone c first).
    t0 = Date.now()
    await call('POST', '/formation', { web: 9 })
    const up9 = await until('nine web containers up', () => webUp(9)).catch(async (err) => {
      await p.dumpTasks()
      throw err
    })
    figures['host 3 back: web=9 (scale to all announced)'] = secs(Date.now() - t0)
    // The spread over zones fills zone c first: all three new ones after 3+3; after 4+2, two or three (a tie with zone b).
    const left = perHost(final)
    t.ok(
      perHost(up9).h3! >= 9 - Math.max(left.h1!, 3) - Math.max(left.h2!, 3),
      `the new containers on host 3, announced at its address (${JSON.stringify(left)} -> ${JSON.stringify(perHost(up9))})`,
    )
    const onH3Now = up9.filter((x) => x.host === h3.address).map((x) => x.container.slice(0, 12))
    const seenH3 = new Set<string>()
    await until('the router reaching the containers on host 3', async () => {
      const a = await get(port, host, '/who.txt')
      if (a.status === 200 && onH3Now.includes(a.body.trim())) seenH3.add(a.body.trim())
      return seenH3.size === onH3Now.length
    })
    figures['host 3 back: web=9 -> the router reached its containers on host 3'] = secs(Date.now() - t0)
    await until('the read model and the three engines agree', () => agree(p, topology.hosts))
    figures['host 3 back: web=9 -> the read model and the three engines agree'] = secs(Date.now() - t0)
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

type Platform = Awaited<ReturnType<typeof startHostsPlatform>>

/** Whether the app's containers the read model has up are exactly those `hosts`' engines run; throws what differs. */
async function agree(p: Platform, hosts: SimHost[]): Promise<true> {
  const labels = { [LABELS.namespace]: p.namespace, [LABELS.app]: p.app }
  const running = (await Promise.all(hosts.map((h) => DockerEngine.at(h.dockerHost).listContainers({ labels }))))
    .flat()
    .map((x) => x.id.slice(0, 12))
    .sort()
  const announced = (await p.ps())
    .filter((x) => x.state === 'up')
    .map((x) => x.container)
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
    const rows = (await p.ps()).filter((x) => extra.some((e) => e.startsWith(x.container))).map((x) => `${x.container} ${x.state} at ${x.host}`)
    throw new Error(
      `running but not up in the read model: ${extra.join(' ') || '-'} (read model: ${rows.join(', ') || 'none'}); up but not running: ${announced.filter((x) => !running.includes(x)).join(' ') || '-'}`,
    )
  }
  return true
}

/** The containers started at `address`, and those among them that have not ended exactly once. */
function endedOnce(events: RecordedEvent[], address: string) {
  const started = events.filter((e) => e.type === 'ContainerStarted' && (e.data as { host: string }).host === address)
  const ends = (id: string) =>
    events.filter((e) => ['ContainerStopped', 'ContainerCrashed'].includes(e.type) && (e.data as { container: string }).container === id)
  return { started, unended: started.filter((s) => ends((s.data as { container: string }).container).length !== 1) }
}

/**
 * Every 3 s from the cut, into `seen`: the stream's leader and last seq, the consumers (leader,
 * pending, unacked), the swarm's nodes, host 1's NATS routes, the app's web processes in the read model.
 */
function watchAfterCut(p: Platform, stream: string, tCut: number, seen: string[]): { stop(): void } {
  let busy = false
  const timer = setInterval(async () => {
    if (busy) return
    busy = true
    const at = `${((Date.now() - tCut) / 1000).toFixed(1)} s after the cut`
    try {
      const consumers: string[] = []
      for await (const ci of p.jsm.consumers.list(stream))
        consumers.push(`${ci.name.slice(0, 14)}@${ci.cluster?.leader ?? '?'} pending ${ci.num_pending} unacked ${ci.num_ack_pending}`)
      const si = await p.jsm.streams.info(stream)
      const nodes = (await p.manager.listNodes().catch(() => [])).map((n) => `${n.address} ${n.state}`).join(', ')
      const routes = await fetch(`http://${p.topology.hosts[0]!.address}:8222/routez`)
        .then(async (r) => ((await r.json()) as { num_routes: number }).num_routes)
        .catch((err: Error) => err.message)
      const web = (await p.ps()).filter((x) => x.type === 'web').map((x) => `v${x.release} ${x.state} at ${x.host}`)
      seen.push(
        `${at}: stream leader ${si.cluster?.leader} last ${si.state.last_seq}; nodes ${nodes}; h1's routes ${routes}; web ${web.join(', ')}; consumers ${consumers.join(' | ')}`,
      )
    } catch (err) {
      seen.push(`${at}: ${(err as Error).message}`)
    } finally {
      busy = false
    }
  }, 3_000)
  return { stop: () => clearInterval(timer) }
}
