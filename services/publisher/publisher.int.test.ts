/**
 * The publisher against the real Swarm engine: Swarm services of a test namespace of their own
 * (busybox httpd as web, with a port published in host mode; busybox sleep as worker), announced on
 * the runtime stream when they start, crash, come back, are drained and stopped, across a publisher
 * restart and an events-stream reconnect, never twice. Services are removed in teardown.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type Docker from 'dockerode'
import t, { type Test } from 'tap'
import { streamId, type RecordedEvent } from '../../events/index.js'
import { testDocker, testEngine } from '../builder/testing.js'
import { registerAndLogin, startTestController, type TestController } from '../controller/testing.js'
import { accepts, Publisher } from './publisher.js'

const IMAGE = 'busybox:latest'

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

type Data = { container: string; type: string; port?: number; number?: number; release?: number; host?: string; exitCode?: number; reason?: string }

async function runtime(c: TestController, app: string): Promise<(RecordedEvent & { data: Data })[]> {
  return (await c.deps.store.readStream(streamId('runtime', app))).events as (RecordedEvent & { data: Data })[]
}

/** A replicated Swarm service of the test namespace, removed in teardown. */
async function createService(
  t: Test,
  docker: Docker,
  ns: string,
  app: string,
  type: string,
  command: string[],
  opts: { replicas: number; port?: number },
): Promise<Docker.Service> {
  const name = `${ns}-${app}-${type}`.replace(/_/g, '-')
  const labels = { 'wharf.namespace': ns, 'wharf.app': app, 'wharf.type': type, 'wharf.release': '1' }
  const created = (await docker.createService({
    Name: name,
    // As the scheduler makes them: the service says the app (the publisher trusts the service, not the container's labels).
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: { Image: IMAGE, Command: command, Labels: labels, StopGracePeriod: 1_000_000_000 },
      RestartPolicy: { Condition: 'any', Delay: 200_000_000 },
    },
    Mode: { Replicated: { Replicas: opts.replicas } },
    ...(opts.port ? { EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: opts.port, PublishMode: 'host' }] } } : {}),
  } as Docker.CreateServiceOptions)) as { id?: string; ID?: string }
  const service = docker.getService(created.id ?? created.ID!)
  t.teardown(() => service.remove().catch(() => {}))
  return service
}

async function scale(service: Docker.Service, replicas: number): Promise<void> {
  const info = await service.inspect()
  await service.update({ ...info.Spec, version: info.Version.Index, Mode: { Replicated: { Replicas: replicas } } })
}

function running(docker: Docker, ns: string, type: string) {
  return docker.listContainers({ filters: { label: [`wharf.namespace=${ns}`, `wharf.type=${type}`], status: ['running'] } })
}

t.test('the publisher announces starts, crashes, drains and stops of Swarm containers, once', async (t) => {
  const docker = testDocker()
  const engine = testEngine()
  const c = await startTestController(t)
  const ns = c.deps.cfg.namespace
  const alice = await registerAndLogin(c, 'alice')
  t.equal((await c.call('POST', '/v1/apps', { token: alice, body: { name: 'shop' } })).status, 201)
  const latencies: number[] = []
  const start = () =>
    Publisher.start({
      docker: engine,
      store: c.deps.store,
      pool: c.deps.pool,
      log: c.deps.log,
      namespace: ns,
      onAnnounced: (a, { latencyMs }) => {
        if (a.kind === 'started' && latencyMs !== undefined) latencies.push(latencyMs)
      },
    })
  let publisher = await start()
  t.teardown(() => publisher.stop())

  const web = await createService(t, docker, ns, 'shop', 'web', ['httpd', '-f', '-p', '5000'], { replicas: 1, port: 5000 })
  const worker = await createService(t, docker, ns, 'shop', 'worker', ['sleep', '3600'], { replicas: 1 })

  // Started, with the published port, once it answers.
  const started = (type: string) => async () => (await runtime(c, 'shop')).filter((e) => e.type === 'ContainerStarted' && e.data.type === type)
  const [web1] = await until('web started', async () => ((await started('web')()).length ? await started('web')() : undefined))
  t.match(web1!.data, { app: 'shop', type: 'web', release: 1, host: '127.0.0.1', number: 1, port: Number })
  const [webC] = await running(docker, ns, 'web')
  t.equal(web1!.data.container, webC!.Id, 'the container that runs')
  t.equal(web1!.data.port, webC!.Ports.find((p) => p.PublicPort)?.PublicPort, 'its published port')
  t.ok(await accepts('127.0.0.1', web1!.data.port!), '127.0.0.1:<port> answers')
  const [worker1] = await until('worker started', async () => ((await started('worker')()).length ? await started('worker')() : undefined))
  t.match(worker1!.data, { type: 'worker', number: 1 })
  t.notOk('port' in worker1!.data, 'a worker has no port')

  // The read model and ps.
  const ps = await until('ps shows both', async () => {
    const r = await c.call('GET', '/v1/apps/shop/ps', { token: alice })
    return r.body.processes.length === 2 ? r.body : undefined
  })
  t.match(ps.processes, [
    { type: 'web', number: 1, release: 1, state: 'up', port: web1!.data.port, container: web1!.data.container.slice(0, 12) },
    { type: 'worker', number: 1, state: 'up', port: null },
  ])

  // docker kill: a crash; Swarm starts another in the same slot.
  await docker.getContainer(web1!.data.container).kill({ signal: 'KILL' })
  const crashed = await until('crash', async () => (await runtime(c, 'shop')).find((e) => e.type === 'ContainerCrashed'))
  t.match(crashed.data, { container: web1!.data.container, type: 'web', exitCode: 137, reason: /SIGKILL/ })
  t.notOk(
    (await runtime(c, 'shop')).some((e) => e.type === 'ContainerStopping'),
    'a crash is not a drain',
  )
  const psCrashed = await until('ps shows the crash', async () => {
    const r = await c.call('GET', '/v1/apps/shop/ps', { token: alice })
    return r.body.processes.find((p: { state: string }) => p.state === 'crashed')
  }).catch(() => undefined)
  const web1b = await until('web started again', async () => (await started('web')()).find((e) => e.data.container !== web1!.data.container))
  t.match(web1b.data, { type: 'web', number: 1, port: Number })
  t.ok(await accepts('127.0.0.1', web1b.data.port!), 'the new container answers')
  t.comment(
    `ps during the restart: ${psCrashed ? `web.1 ${psCrashed.state} (exit ${psCrashed.exitCode})` : 'the crash was not seen (Swarm restarted it first)'}`,
  )
  await until('ps: web.1 up again, crash gone', async () => {
    const r = await c.call('GET', '/v1/apps/shop/ps', { token: alice })
    const webs = r.body.processes.filter((p: { type: string }) => p.type === 'web')
    return webs.length === 1 && webs[0].state === 'up' && webs[0].container === web1b.data.container.slice(0, 12)
  })

  // A publisher restart: what changed while none ran is reconciled, nothing is announced twice.
  await publisher.stop()
  await scale(worker, 0)
  await scale(web, 2)
  await until('worker gone', async () => (await running(docker, ns, 'worker')).length === 0)
  await until('two webs', async () => (await running(docker, ns, 'web')).length === 2)
  t.equal((await runtime(c, 'shop')).filter((e) => e.type === 'ContainerStarted').length, 3, 'nothing announced while no publisher ran')
  publisher = await start()
  const web2 = await until('web.2 started', async () => (await started('web')()).find((e) => e.data.number === 2))
  t.ok(await accepts('127.0.0.1', web2.data.port!), 'web.2 answers')
  const workerStopped = await until('worker stopped', async () =>
    (await runtime(c, 'shop')).find((e) => e.type === 'ContainerStopped' && e.data.type === 'worker'),
  )
  t.equal(workerStopped.data.container, worker1!.data.container, 'the worker the read model listed, announced stopped')
  // A second publisher at once (a restart overlapping the old one) adds nothing.
  const other = await start()
  await other.settled()
  await other.stop()

  // The engine's events stream drops, and scale to 0 meanwhile: the publisher follows again from the
  // last event it saw, so each web is still drained first, then stopped.
  publisher.dropEvents()
  t.notOk(publisher.health().ok, 'disconnected')
  await scale(web, 0)
  await until('both webs stopped', async () => (await runtime(c, 'shop')).filter((e) => e.type === 'ContainerStopped' && e.data.type === 'web').length === 2)
  const events = await runtime(c, 'shop')
  for (const w of [web1b, web2]) {
    const stopping = events.find((e) => e.type === 'ContainerStopping' && e.data.container === w.data.container)
    const stopped = events.find((e) => e.type === 'ContainerStopped' && e.data.container === w.data.container)
    t.ok(stopping && stopped && stopping.seq < stopped.seq, `web.${w.data.number}: ContainerStopping, then ContainerStopped`)
  }
  const ids = events.filter((e) => e.type === 'ContainerStarted').map((e) => e.data.container)
  t.equal(ids.length, 4, 'four containers started: web.1, web.1 again, web.2, worker.1')
  t.equal(new Set(ids).size, ids.length, 'none announced twice')
  t.equal(events.filter((e) => e.type === 'ContainerStopped' || e.type === 'ContainerCrashed').length, 4, 'each ended once')
  t.match(publisher.health(), { ok: true, detail: { reconnects: 1 } }, 'reconnected')
  await until('ps empty', async () => (await c.call('GET', '/v1/apps/shop/ps', { token: alice })).body.processes.length === 0)

  latencies.sort((a, b) => a - b)
  t.comment(
    `engine start event -> ContainerStarted appended: ${latencies.map((l) => `${l} ms`).join(', ')} (median ${latencies[Math.floor(latencies.length / 2)]} ms)`,
  )
})
