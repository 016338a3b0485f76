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
import { loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { LABELS } from '../domain/runtime/labels.js'
import { HOSTS_DOMAIN, startHostsPlatform } from '../infra/hosts-testing.js'
import { serviceName } from '../services/scheduler/model.js'
import { until } from '../test/harness.js'
import { get } from '../test/http.js'

t.setTimeout(600_000)

const N = 30

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')
const say = (line: string) => console.error(`# bench:multihost: ${line}`)

t.test(`bench: web=${N} over three hosts, time to all serving, route update p99`, async (t) => {
  say(`load average before: ${load()}`)
  const app = `mhb${Date.now().toString(36).slice(-5)}`
  /** `host:port` -> when its ContainerStarted was appended. */
  const announced = new Map<string, number>()
  /** `host:port` -> when nginx first served the app with it. */
  const routed = new Map<string, number>()
  let up = 0
  const p = await startHostsPlatform(t, {
    letter: 'b',
    app,
    figure: (what, ms) => {
      up += ms
      if (what.startsWith('NATS')) say(`three hosts, one swarm, a NATS cluster of three: up in ${secs(up)}`)
    },
    deployTimeoutMs: 120_000,
    lostHostsMs: 1_000,
    onAnnounced: (a) => {
      if (a.kind === 'started' && a.port) announced.set(`${a.host}:${a.port}`, Date.now())
    },
    onApplied: ({ result, done, table }) => {
      if (!('ok' in result) || result.ok === false) return
      for (const r of table.routes)
        if (r.app === app) for (const s of r.servers) if (!routed.has(`${s.host}:${s.port}`)) routed.set(`${s.host}:${s.port}`, done)
    },
  })
  const { manager, call, outcome, namespace } = p
  const hosts = p.topology.hosts
  const port = p.routerPort
  type Proc = Awaited<ReturnType<typeof p.ps>>[number]
  const upOf = async (release: number) => (await p.ps()).filter((x: Proc) => x.type === 'web' && x.state === 'up' && x.release === release)
  const swarmRunning = async (release: number) => {
    const tasks = await manager.listTasks(serviceName(namespace, app, 'web'))
    return tasks.filter((x) => x.desiredState === 'running' && x.state === 'running' && x.spec.ContainerSpec?.Labels?.[LABELS.release] === String(release))
      .length
  }
  const v1 = p.v1

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
      const done = await outcome(release, 180_000)
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
        const a = await get(port, `${app}.${HOSTS_DOMAIN}`, '/who.txt')
        if (a.status === 200 && ids.has(a.body.trim())) seen.add(a.body.trim())
        return seen.size === N
      },
      30_000,
      0,
    )
    return up.map((p) => routed.get(`${p.host}:${p.port}`)! - announced.get(`${p.host}:${p.port}`)!)
  }

  let t0 = Date.now()
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
