/**
 * The publisher's decisions on the in-memory engine and event store (no I/O): what a container's
 * start, stop, crash and death announce, which containers it ignores, and how a restarted publisher
 * catches up with what happened while it was down.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { EngineError } from '../../core/engine/engine.js'
import { MemoryEngine } from '../../core/engine/memory.js'
import { createLogger } from '../../core/log.js'
import { DRAIN_SIGNAL, LABELS, processLabels } from '../../domain/runtime/labels.js'
import { wharfCatalogue } from '../../domain/index.js'
import { MemoryEventStore, streamId, type RecordedEvent } from '../../events/index.js'
import { Publisher, type PublisherOptions } from './publisher.js'

const NS = 'wharf'
const HOST = '10.0.0.5'
const IMAGE = 'busybox:latest'
const BOB_IMAGE = 'bob-image:1'

function setup(t: Test) {
  // bob's image: a Dockerfile's LABELs claim alice's app.
  const engine = new MemoryEngine({ images: [IMAGE, { ref: BOB_IMAGE, labels: processLabels(NS, 'shop', 'worker', 1) }] })
  const store = new MemoryEventStore({ catalogue: wharfCatalogue() })
  /** Host ports that accept connections (what the readiness probe finds). */
  const listening = new Set<number>()
  const publishers: Publisher[] = []
  const start = async (opts: Partial<PublisherOptions> = {}) => {
    const p = await Publisher.start({
      docker: engine,
      store,
      log: createLogger({ level: 'silent' }),
      namespace: NS,
      host: HOST,
      // Probed where the router will reach it: the host's address.
      probe: async (host, port) => host === HOST && listening.has(port),
      probeIntervalMs: 2,
      reconnectMs: 5,
      ...opts,
    })
    publishers.push(p)
    return p
  }
  t.teardown(async () => {
    for (const p of publishers) await p.stop()
  })
  /** A Swarm service of `app`'s process `type` (as the scheduler makes it); answers its containers. */
  const service = async (app: string, type: string, replicas = 1, release = 3) => {
    const name = `wharf-${app}-${type}`
    await engine.createService({
      Name: name,
      Labels: processLabels(NS, app, type, release),
      TaskTemplate: { ContainerSpec: { Image: IMAGE, Labels: processLabels(NS, app, type, release) } },
      Mode: { Replicated: { Replicas: replicas } },
      EndpointSpec: { Ports: type === 'web' ? [{ Protocol: 'tcp', TargetPort: 5000, PublishMode: 'host' }] : [] },
    })
    return engine.containersOf(name)
  }
  const portOf = async (id: string) => (await engine.inspectContainer(id)).ports['5000/tcp']![0]!
  const events = async (app = 'shop'): Promise<RecordedEvent[]> => (await store.readStream(streamId('runtime', app))).events
  const types = async (app = 'shop') => (await events(app)).map((e) => e.type)
  /** Waits until the app's runtime stream has `n` events. */
  const until = async (n: number, app = 'shop') => {
    for (let i = 0; i < 500 && (await events(app)).length < n; i++) await sleep(2)
    return events(app)
  }
  return { engine, store, listening, start, service, portOf, events, types, until }
}

t.test('a web container is announced once its port accepts connections: ContainerStarted with host, port, slot', async (t) => {
  const { listening, start, service, portOf, types, until } = setup(t)
  const p = await start()
  const [web] = await service('shop', 'web')
  const port = await portOf(web!)
  await sleep(20)
  t.same(await types(), [], 'not ready: not announced')
  listening.add(port)
  const [started] = await until(1)
  await p.settled()
  t.equal(started!.type, 'ContainerStarted')
  t.same(started!.data, { app: 'shop', type: 'web', release: 3, container: web, host: HOST, port, number: 1 })
  t.same(await types(), ['ContainerStarted'], 'once')
})

t.test('a worker is announced at once, without a port; a die with exit 0 is ContainerStopped, exit 1 ContainerCrashed', async (t) => {
  const { engine, start, service, events, until } = setup(t)
  const p = await start()
  const [a, b] = await service('shop', 'worker', 2)
  await until(2)
  for (const e of await events()) t.notOk((e.data as { port?: number }).port, 'no port')
  engine.exit(a!, 0)
  engine.exit(b!, 1)
  await until(6) // two more starts: Swarm replaces both (on-failure restarts b; a's slot converges)
  await p.settled()
  const byContainer = (id: string) =>
    events().then((es) => es.filter((e) => (e.data as { container: string }).container === id).map((e) => ({ type: e.type, data: e.data })))
  t.same(
    (await byContainer(a!)).map((e) => e.type),
    ['ContainerStarted', 'ContainerStopped'],
  )
  t.same((await byContainer(b!)).at(-1), {
    type: 'ContainerCrashed',
    data: { app: 'shop', type: 'worker', container: b, exitCode: 1, reason: 'exited with code 1' },
  })
})

t.test('a stop asked (SIGTERM) drains first: ContainerStopping, then ContainerStopped; an OOM kill is a crash', async (t) => {
  const { engine, start, service, types, events, until } = setup(t)
  const p = await start()
  const [w] = await service('shop', 'worker')
  await until(1)
  engine.stop(w!)
  await until(4) // and the start of the task Swarm puts in its place
  await p.settled()
  const ofW = (await events()).filter((e) => (e.data as { container: string }).container === w).map((e) => e.type)
  t.same(ofW, ['ContainerStarted', 'ContainerStopping', 'ContainerStopped'])
  t.same((await types()).filter((x) => x === 'ContainerStarted').length, 2, 'and its successor started')
  const next = engine.containersOf('wharf-shop-worker')[0]!
  engine.exit(next, 137, { oom: true })
  await until(5)
  await p.settled()
  const crash = (await events()).find((e) => e.type === 'ContainerCrashed')
  t.match(crash?.data, { container: next, exitCode: 137, reason: /out of memory/ })
})

t.test('a web container stopped with the drain signal: ContainerStopping at once, SIGTERM only after its drain time, then ContainerStopped', async (t) => {
  const { engine, listening, start, portOf, events, until } = setup(t)
  const p = await start()
  const labels = processLabels(NS, 'shop', 'web', 3)
  const name = 'wharf-shop-web'
  await engine.createService({
    Name: name,
    Labels: labels,
    TaskTemplate: { ContainerSpec: { Image: IMAGE, Labels: { ...labels, [LABELS.drain]: '400' }, StopSignal: DRAIN_SIGNAL, StopGracePeriod: 10e9 } },
    Mode: { Replicated: { Replicas: 1 } },
    EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: 5000, PublishMode: 'host' }] },
  })
  const [web] = engine.containersOf(name)
  listening.add(await portOf(web!))
  await until(1)
  const info = await engine.inspectService(name)
  await engine.updateService(name, info.version, { ...info.spec, Mode: { Replicated: { Replicas: 0 } } })
  const asked = Date.now()
  await until(2)
  t.same(
    (await events()).map((e) => e.type),
    ['ContainerStarted', 'ContainerStopping'],
    'taken out of the routes at once',
  )
  t.ok((await engine.inspectContainer(web!)).running, 'and serving on while it drains')
  await until(3)
  await p.settled()
  t.same(
    (await events()).map((e) => e.type),
    ['ContainerStarted', 'ContainerStopping', 'ContainerStopped'],
  )
  t.ok(Date.now() - asked >= 390, `SIGTERM came after the drain time (${Date.now() - asked} ms)`)
  t.notOk((await engine.inspectContainer(web!)).running, 'stopped by it')
})

/** shop's web service, one task per replica, draining 100 ms on a stop and at most `maxMs` while the routers list it. */
async function drainingWeb(engine: MemoryEngine, maxMs: number, replicas: number): Promise<string> {
  const labels = processLabels(NS, 'shop', 'web', 3)
  const name = 'wharf-shop-web'
  await engine.createService({
    Name: name,
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: IMAGE,
        Labels: { ...labels, [LABELS.drain]: '100', [LABELS.drainMax]: String(maxMs) },
        StopSignal: DRAIN_SIGNAL,
        StopGracePeriod: 10e9,
      },
    },
    Mode: { Replicated: { Replicas: replicas } },
    EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: 5000, PublishMode: 'host' }] },
  })
  return name
}

/** Scales the service `name` to 0 (Swarm stops its tasks with their stop signal). */
async function scaleToZero(engine: MemoryEngine, name: string): Promise<void> {
  const info = await engine.inspectService(name)
  await engine.updateService(name, info.version, { ...info.spec, Mode: { Replicated: { Replicas: 0 } } })
}

t.test('a drain lasts until the routers no longer list the container (their RouteServed), at most its longest drain', async (t) => {
  const { engine, listening, start, portOf, until } = setup(t)
  /** The containers of shop the routers last recorded as served (before the stops); undefined: no record. */
  let listed: string[] | undefined
  const p = await start({
    served: async (app) => (app === 'shop' && listed ? { seq: 2, servers: listed.map((container) => ({ container })) } : undefined),
    servedPollMs: 5,
  })
  const name = await drainingWeb(engine, 1000, 2)
  const [a, b] = engine.containersOf(name)
  for (const id of [a!, b!]) listening.add(await portOf(id))
  await until(2)
  listed = [a!, b!]
  await scaleToZero(engine, name)
  const asked = Date.now()
  await until(4)
  await sleep(300)
  const running = async (id: string) => (await engine.inspectContainer(id)).running
  t.ok((await running(a!)) && (await running(b!)), 'both serve on past their drain time while the routers list them')
  // The router took a out (its last record lists b only): a gets SIGTERM.
  listed = [b!]
  for (let i = 0; i < 200 && (await running(a!)); i++) await sleep(5)
  t.notOk(await running(a!), 'a stopped once out of the routes')
  t.ok(await running(b!), 'b still listed: serving on')
  // b stays listed: SIGTERM at the end of its longest drain, counted from the stop.
  for (let i = 0; i < 400 && (await running(b!)); i++) await sleep(5)
  t.notOk(await running(b!), 'b stopped at the end of its longest drain')
  t.ok(Date.now() - asked >= 990, `not before (${Date.now() - asked} ms after the stop)`)
  await until(6)
  await p.settled()
})

t.test('a drain ends when the router, having seen the stop, still lists the container: the app has no other (scaled to zero)', async (t) => {
  const { engine, listening, start, portOf, until, events } = setup(t)
  /** The router's last record: the container, made at `seq`. */
  let seq = 1
  let container = ''
  const p = await start({ served: async () => ({ seq, servers: [{ container }] }), servedPollMs: 5 })
  const name = await drainingWeb(engine, 5000, 1)
  const [web] = engine.containersOf(name)
  container = web!
  listening.add(await portOf(web!))
  await until(1)
  await scaleToZero(engine, name)
  const asked = Date.now()
  const [, stopping] = await until(2)
  await sleep(300)
  t.ok((await engine.inspectContainer(web!)).running, 'listed in a record from before its stop: serving on')
  // The router saw the stop (a record after it) and still sends to it: nothing else to send to.
  seq = stopping!.seq + 1
  await until(3)
  await p.settled()
  t.same(
    (await events()).map((e) => e.type),
    ['ContainerStarted', 'ContainerStopping', 'ContainerStopped'],
  )
  t.ok(Date.now() - asked < 2_000, `stopped then, not at its longest drain (${Date.now() - asked} ms)`)
})

t.test('a drain with no record of the routers for the app (no router runs) lasts its drain time', async (t) => {
  const { engine, listening, start, portOf, until } = setup(t)
  const p = await start({ served: async () => undefined, servedPollMs: 5 })
  const name = await drainingWeb(engine, 5000, 1)
  const [web] = engine.containersOf(name)
  listening.add(await portOf(web!))
  await until(1)
  await scaleToZero(engine, name)
  const asked = Date.now()
  await until(3)
  await p.settled()
  t.ok(Date.now() - asked < 2_000, `stopped after its drain time, not its longest drain (${Date.now() - asked} ms)`)
})

t.test('only containers a task of the platform made are announced: labels alone, forged task labels, other namespaces are ignored', async (t) => {
  const { engine, store, start, service, until } = setup(t)
  const p = await start()
  const bare = await engine.createContainer({ Image: IMAGE, Labels: { [LABELS.namespace]: NS } })
  await engine.startContainer(bare)
  const other = await engine.createContainer({ Image: IMAGE, Labels: processLabels('other-ns', 'shop', 'worker', 1) })
  await engine.startContainer(other)
  // Well labelled, but no task made it (a build step, a `docker run`): alice's labels on bob's container.
  const forged = await engine.createContainer({ Image: IMAGE, Labels: processLabels(NS, 'shop', 'worker', 1) })
  await engine.startContainer(forged)
  // bob's image carries alice's labels (a Dockerfile LABEL), and its task's service is bob's.
  const image = BOB_IMAGE
  t.equal((await engine.inspectImage(image)).labels[LABELS.app], 'shop')
  const [mine] = await service('shop', 'worker')
  await engine.createService({
    Name: 'wharf-bobapp-worker',
    Labels: processLabels(NS, 'bobapp', 'worker', 1),
    TaskTemplate: { ContainerSpec: { Image: image, Labels: processLabels(NS, 'bobapp', 'worker', 1) } },
  })
  const [bobs] = engine.containersOf('wharf-bobapp-worker')
  t.equal((await engine.inspectContainer(bobs!)).labels[LABELS.app], 'bobapp', "the service's labels are over the image's")
  // A container that names a real task of alice's (its task's container is another one).
  const stolen = await engine.createContainer({
    Image: IMAGE,
    Labels: { ...(await engine.inspectContainer(mine!)).labels },
  })
  await engine.startContainer(stolen)
  // A service of no app (made by hand, the namespace label only): its task is not a process of the platform.
  await engine.createService({
    Name: 'wharf-x',
    Labels: { [LABELS.namespace]: NS },
    TaskTemplate: { ContainerSpec: { Image: IMAGE, Labels: processLabels(NS, 'shop', 'worker', 1) } },
  })
  await until(1)
  await until(1, 'bobapp')
  await p.settled()
  engine.exit(forged, 1)
  engine.exit(stolen, 2)
  await p.settled()
  const all: RecordedEvent[] = []
  for await (const e of store.readAll()) all.push(e)
  t.same(
    all.map((e) => [e.stream, (e.data as { container: string }).container]).sort(),
    [
      ['runtime.bobapp', bobs],
      ['runtime.shop', mine],
    ].sort(),
    "only the containers of the platform's tasks are announced, each on its own app's stream",
  )
  t.equal(p.health().detail.refused, 4, 'the bare, forged, stolen and hand-made ones refused (the other namespace is not looked at)')
})

t.test('a restarted publisher catches up from the list: starts it missed are announced, and announced containers that died', async (t) => {
  const { start, service, engine, events, until } = setup(t)
  /** The containers the stream says are up (the read model a real publisher reads). */
  const announced = async (host: string) => {
    const up = new Map<string, { container: string; app: string; type: string }>()
    for (const e of await events()) {
      const d = e.data as { container: string; app: string; type: string; host?: string }
      if (e.type === 'ContainerStarted' && d.host === host) up.set(d.container, { container: d.container, app: d.app, type: d.type })
      if (e.type === 'ContainerStopped' || e.type === 'ContainerCrashed') up.delete(d.container)
    }
    return [...up.values()]
  }
  const first = await start({ announced })
  const [old] = await service('shop', 'worker', 1, 2)
  await until(1)
  await first.stop()

  // While no publisher runs: the announced container dies (and is removed), another one starts.
  await engine.removeService('wharf-shop-worker')
  const [fresh] = await service('shop', 'clock', 1, 2)
  const second = await start({ announced })
  await until(3)
  await second.settled()
  const seen = (await events()).map((e) => [e.type, (e.data as { container: string }).container])
  t.same(seen.slice(0, 1), [['ContainerStarted', old]])
  t.same(
    seen.slice(1).sort(),
    [
      ['ContainerStarted', fresh],
      ['ContainerStopped', old],
    ].sort(),
    'the missed start, and the death of the announced one',
  )
})

t.test('after the events feed drops, the publisher reconnects and replays what it missed', async (t) => {
  const { engine, start, service, events, until } = setup(t)
  const p = await start()
  const [w] = await service('shop', 'worker')
  await until(1)
  p.dropEvents()
  engine.exit(w!, 2)
  await until(3) // and the start of its successor
  await p.settled()
  const ofW = (await events()).filter((e) => (e.data as { container: string }).container === w).map((e) => e.type)
  t.same(ofW, ['ContainerStarted', 'ContainerCrashed'], 'the die came while the feed was down')
  t.equal(p.health().detail.reconnects, 1)
})

t.test('a container whose task the swarm cannot tell yet (a restarted manager with no leader: 503) is announced once it can', async (t) => {
  const { engine, start, service, types, until } = setup(t)
  let refusals = 2
  const p = await start({
    swarm: {
      inspectTask: async (id) => {
        if (refusals-- > 0) throw new EngineError('unavailable', 'The swarm does not have a leader', { statusCode: 503 })
        return engine.inspectTask(id)
      },
      inspectService: (id) => engine.inspectService(id),
    },
  })
  await service('shop', 'worker')
  await until(1)
  await p.settled()
  t.same(await types(), ['ContainerStarted'], 'its start was not ignored')
  t.equal(refusals, -1, 'asked again after each refusal')
})

t.test('an event that could not be handled (the swarm failed to answer) is made up for by a reconcile soon after', async (t) => {
  const { engine, start, service, types, until } = setup(t)
  let failures = 1
  const p = await start({
    reconcileAgainMs: 50,
    swarm: {
      inspectTask: async (id) => {
        if (failures-- > 0) throw new EngineError('unavailable', 'rpc error: code = Unknown', { statusCode: 500 })
        return engine.inspectTask(id)
      },
      inspectService: (id) => engine.inspectService(id),
    },
  })
  await service('shop', 'worker')
  await until(1)
  await p.settled()
  t.same(await types(), ['ContainerStarted'], 'the start whose event was ignored is announced by the reconcile')
})
