/**
 * Wharf on three simulated hosts (infra/hosts.ts): network namespaces with a Docker engine each,
 * joined into one swarm of their own (nothing of it on the machine's engine, bridges or iptables).
 * The platform's services run here against it: a test controller, the scheduler on host 1's engine
 * (the manager), one publisher per host announcing at its host's address, and the router of the
 * test nginx. An app runs web=3, one container per host (spread over the zone labels); host 3 is
 * then cut off (link down, engine and containers SIGKILLed) while requests go through the router.
 * Prints the figures: time to add a host, deploy web=3, recovery, failed requests.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { DockerEngine } from '../core/engine/docker.js'
import { LABELS } from '../domain/runtime/labels.js'
import { streamId, type RecordedEvent } from '../events/index.js'
import { buildTestImage, removeImage, testDocker, testRegistry, testRegistryLogin } from '../services/builder/testing.js'
import { registerAndLogin, startEngineController } from '../services/controller/testing.js'
import { Publisher } from '../services/publisher/publisher.js'
import { startTestRouter, testRouterPort } from '../services/router/testing.js'
import { startScheduler } from '../services/scheduler/service.js'
import { get, requestLoop } from '../test/http.js'
import { addHost, freeSubnet, killHost, startHosts, stopHosts, type Topology } from './hosts.js'

// ~1 min on an idle machine; up to ~4 min at a load average of 30, and its teardown must not be cut short (it removes namespaces and engines).
t.setTimeout(420_000)

const DOMAIN = 'wharf.localhost'
const DOCKERFILE = 'FROM busybox\nRUN mkdir /www && echo hello > /www/index.html\nCMD ["httpd", "-f", "-p", "5000", "-h", "/www"]\n'
/** `/who.txt` names the container; the shell exits at SIGTERM (httpd as PID 1 would ignore it). */
const PROCFILE = { web: `echo "$HOSTNAME" > /www/who.txt; httpd -f -p $PORT -h /www & trap 'exit 0' TERM; wait` }

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
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
    await sleep(100)
  }
}

t.test('three hosts: web=3 one per host through the router; a host lost while serving; the deploy converges on the others', async (t) => {
  const figures: Record<string, string> = {}
  const registryPort = Number(testRegistry().split(':')[1])
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
  const manager = DockerEngine.at(topology.hosts[0]!.dockerHost, testRegistryLogin())
  await until('the third node ready', async () => (await manager.listNodes()).find((n) => n.address === h3.address)?.state === 'ready')
  figures['a host added (namespace, engine, join, ready)'] = secs(Date.now() - t0)
  const nodes = await manager.listNodes()
  t.strictSame(nodes.map((n) => n.address).sort(), topology.hosts.map((h) => h.address).sort(), "the swarm's nodes are the three hosts, at their addresses")
  t.strictSame(nodes.map((n) => n.labels.zone).sort(), ['a', 'b', 'c'], 'with their zone labels')
  t.ok(nodes.every((n) => n.state === 'ready' && n.availability === 'active'))

  const c = await startEngineController(t, { WHARF_DOMAIN: DOMAIN })
  const { store, pool, log } = c.deps
  const namespace = c.deps.cfg.namespace
  const token = await registerAndLogin(c, 'alice')
  for (const h of topology.hosts) {
    const p = await Publisher.start({ docker: DockerEngine.at(h.dockerHost), swarm: manager, store, pool, log, namespace, host: h.address })
    t.teardown(() => p.stop())
  }
  const scheduler = await startScheduler(
    { store, pool, docker: manager, namespace, registry: testRegistry(), log },
    { deployTimeoutMs: 60_000, lostHostsMs: 500, spec: { stopGraceMs: 2_000, updateMonitorMs: 1_000, drainMs: 1_000 } },
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
  const docker = testDocker()
  t.teardown(async () => {
    for (const img of await docker.listImages({ filters: { reference: [`${testRegistry()}/${app}`] } }))
      for (const tag of img.RepoTags ?? []) await removeImage(docker, tag)
  })
  const runtime = async (): Promise<RecordedEvent[]> => (await store.readStream(streamId('runtime', app))).events
  const outcome = (release: number) =>
    until(`the deploy of v${release}`, async () =>
      (await runtime()).find((e) => (e.type === 'DeployCompleted' || e.type === 'DeployFailed') && (e.data as { release: number }).release === release),
    )
  const ps = async () =>
    (await call('GET', '/ps')).processes as { container: string; type: string; state: string; host: string; release: number; port: number | null }[]

  // A placement setting that is not one: refused, nothing recorded.
  const releases = async () => (await call('GET', '/releases')).releases as { version: number }[]
  const before = (await releases()).length
  const bad = await c.call('POST', `/v1/apps/${app}/config`, { token, body: { values: { WHARF_PLACEMENT_WEB: 'zone==a' } } })
  t.equal(bad.status, 400)
  t.equal(bad.body.code, 'WHARF_INVALID')
  t.equal((await releases()).length, before, 'no release made')

  // Spread over the zones: one container per host.
  await call('POST', '/config', { values: { WHARF_PLACEMENT_SPREAD: 'zone' } })
  const image = await buildTestImage(t, docker, DOCKERFILE)
  const v1 = (await call('POST', '/builds', { image, procfile: PROCFILE, port: 5000 })).release as number
  t.equal((await outcome(v1)).type, 'DeployCompleted', `v${v1} at web=1`)
  t0 = Date.now()
  await call('POST', '/formation', { web: 3 })
  const up3 = await until('three web containers up', async () => {
    const up = (await ps()).filter((p) => p.type === 'web' && p.state === 'up')
    return up.length === 3 ? up : undefined
  })
  figures['deploy web=3 over three hosts (scale to all announced)'] = secs(Date.now() - t0)
  t.strictSame(up3.map((p) => p.host).sort(), topology.hosts.map((h) => h.address).sort(), 'one container on each host, announced at its host address')
  // Through the router: every container answers (who.txt is its hostname, the container id's first 12).
  const host = `${app}.${DOMAIN}`
  const seen = new Set<string>()
  await until('the router reaching all three', async () => {
    const a = await get(port, host, '/who.txt')
    if (a.status === 200) seen.add(a.body.trim())
    return seen.size === 3
  })
  t.strictSame([...seen].sort(), up3.map((p) => p.container.slice(0, 12)).sort(), 'each container served through the router')

  // Host 3 is cut off while requests go through the router.
  const lost = up3.find((p) => p.host === h3.address)!
  const loop = requestLoop(port, host, { path: '/who.txt', intervalMs: 20, connections: 4, timeoutMs: 10_000 })
  await sleep(500)
  const tKill = Date.now()
  await killHost(topology, 'h3')
  const crashed = await until('the lost container announced gone', async () =>
    (await runtime()).find((e) => e.type === 'ContainerCrashed' && (e.data as { container: string }).container.startsWith(lost.container)),
  )
  figures['host lost -> its container announced gone'] = secs(Date.parse(crashed.occurredAt) - tKill)
  t.match(crashed, { actor: 'system:scheduler', data: { reason: new RegExp(`its host ${h3.address.replace(/\./g, '\\.')} .* is down`) } })
  await until('three web containers up again on the hosts left', async () => {
    const up = (await ps()).filter((p) => p.type === 'web' && p.state === 'up')
    return up.length === 3 && up.every((p) => p.container !== lost.container) ? up : undefined
  })
  figures['host lost -> three containers up again (Swarm rescheduled, announced)'] = secs(Date.now() - tKill)
  await sleep(1_000)
  await loop.stop()
  figures['requests through the router while the host was lost'] = `${loop.counts.failed} failed of ${loop.counts.ok + loop.counts.failed}`
  t.ok(loop.counts.ok > 0)

  // After the recovery, the router sends nothing to the lost host.
  const after = requestLoop(port, host, { path: '/who.txt', intervalMs: 10, connections: 2, timeoutMs: 5_000 })
  await sleep(2_000)
  await after.stop()
  t.equal(after.counts.failed, 0, `no request fails once recovered (${after.counts.ok} sent): ${after.failures.slice(0, 3).join('; ')}`)
  t.notOk(after.counts.bodies.has(lost.container.slice(0, 12)), 'none answered by the lost container')

  // A deploy converges on the two hosts left.
  t0 = Date.now()
  await call('POST', '/config', { values: { GREETING: 'after' } })
  const v2 = (await releases())[0]!.version
  t.equal((await outcome(v2)).type, 'DeployCompleted', `v${v2} deployed with a host lost`)
  figures['deploy of a new release on the two hosts left'] = secs(Date.now() - t0)
  const final = await until('three v2 web containers up', async () => {
    const up = (await ps()).filter((p) => p.type === 'web' && p.state === 'up')
    return up.length === 3 && up.every((p) => p.release === v2) ? up : undefined
  })
  const live = [topology.hosts[0]!, topology.hosts[1]!]
  t.ok(
    final.every((p) => live.some((h) => h.address === p.host)),
    'on the two hosts left',
  )

  // No event lost: what the read model has up is exactly what the live engines run, and every
  // container that ran on the lost host has its end on its stream.
  await until('the read model and the engines agree', async () => {
    const running = (
      await Promise.all(live.map((h) => DockerEngine.at(h.dockerHost).listContainers({ labels: { [LABELS.namespace]: namespace, [LABELS.app]: app } })))
    )
      .flat()
      .map((x) => x.id.slice(0, 12))
      .sort()
    const announced = (await ps())
      .filter((p) => p.state === 'up')
      .map((p) => p.container)
      .sort()
    return JSON.stringify(running) === JSON.stringify(announced)
  })
  const events = await runtime()
  const startedOn3 = events.filter((e) => e.type === 'ContainerStarted' && (e.data as { host: string }).host === h3.address)
  t.ok(startedOn3.length >= 1)
  for (const s of startedOn3) {
    const id = (s.data as { container: string }).container
    t.equal(
      events.filter((e) => ['ContainerStopped', 'ContainerCrashed'].includes(e.type) && (e.data as { container: string }).container === id).length,
      1,
      `${id.slice(0, 12)} ended once`,
    )
  }
  const seqs = events.map((e) => e.seq)
  t.strictSame(
    seqs,
    [...seqs].sort((a, b) => a - b),
    'the stream reads in order',
  )

  // On stderr, so `make test` shows them (it prints the TAP of failing files only).
  for (const [k, v] of Object.entries(figures)) console.error(`# hosts: ${k}: ${v}`)
})
