/**
 * The scheduler's decisions on the in-memory engine and event store (no I/O): which services a
 * release and formation make, when a service is left alone, scaled, removed or rolled back, and the
 * deploy events it announces.
 */
import t, { type Test } from 'tap'
import { MemoryEngine } from '../../core/engine/memory.js'
import { createLogger } from '../../core/log.js'
import { LABELS } from '../../domain/runtime/labels.js'
import { wharfCatalogue } from '../../domain/index.js'
import { MemoryEventStore, streamId, type RecordedEvent } from '../../events/index.js'
import type { ReleaseView } from './model.js'
import { Scheduler, type SchedulerReads } from './scheduler.js'
import { NUDGE_LABEL } from './swarm.js'

const REGISTRY = '127.0.0.1:5000'
const NS = 'wharf'

/** The read models as the test sets them: each app's current release and formation. */
class Reads implements SchedulerReads {
  readonly releases = new Map<string, ReleaseView>()
  readonly formations = new Map<string, Record<string, number>>()
  async readApp(app: string) {
    return { release: this.releases.get(app), formation: { ...this.formations.get(app) } }
  }
  async appsWithImage() {
    return [...this.releases.keys()]
  }
}

function release(version: number, over: Partial<ReleaseView> = {}): ReleaseView {
  return {
    app: 'shop',
    version,
    image: `${REGISTRY}/shop:v${version}`,
    procfile: { worker: 'node worker.js' },
    port: 8080,
    config: { GREETING: 'hi' },
    limits: { memory: { web: '512M' }, cpu: {} },
    ...over,
  }
}

function setup(t: Test) {
  const engine = new MemoryEngine({ images: [`${REGISTRY}/shop:v1`, `${REGISTRY}/shop:v2`], registries: [REGISTRY] })
  const store = new MemoryEventStore({ catalogue: wharfCatalogue() })
  const reads = new Reads()
  const scheduler = new Scheduler(
    { store, reads, docker: engine, namespace: NS, registry: REGISTRY, log: createLogger({ level: 'silent' }) },
    { pollMs: 5, deployTimeoutMs: 2_000, progress: { settleMs: 0 } },
  )
  t.teardown(() => scheduler.stop())
  const services = async () => (await engine.listServices({ [LABELS.namespace]: NS })).sort((a, b) => a.spec.Name.localeCompare(b.spec.Name))
  const deploys = async () =>
    (await store.readStream(streamId('runtime', 'shop'))).events.map((e) => ({ type: e.type, data: e.data as Record<string, unknown> }))
  return { engine, store, reads, scheduler, services, deploys }
}

t.test('a release and formation make one service per process type, with its env, labels and replicas; the deploy completes', async (t) => {
  const { engine, reads, scheduler, services, deploys } = setup(t)
  reads.releases.set('shop', release(1))
  reads.formations.set('shop', { web: 2, worker: 1 })
  t.equal(await scheduler.reconcile('shop'), 'changed')
  await scheduler.idle()
  const [web, worker] = await services()
  t.equal(web!.spec.Name, 'wharf-shop-web')
  t.equal(worker!.spec.Name, 'wharf-shop-worker')
  t.match(web!.spec.Labels, { [LABELS.namespace]: NS, [LABELS.app]: 'shop', [LABELS.type]: 'web', [LABELS.release]: '1', [LABELS.spec]: /^[0-9a-f]{16}$/ })
  t.equal(web!.spec.Mode?.Replicated?.Replicas, 2)
  t.equal(worker!.spec.Mode?.Replicated?.Replicas, 1)
  const env = web!.spec.TaskTemplate?.ContainerSpec?.Env ?? []
  t.same(env, ['GREETING=hi', 'PORT=8080', 'WHARF_APP=shop', 'WHARF_PROCESS_TYPE=web', 'WHARF_RELEASE=v1'])
  t.same(worker!.spec.TaskTemplate?.ContainerSpec?.Command, ['sh', '-c', 'node worker.js'])
  t.equal(web!.spec.TaskTemplate?.Resources?.Limits?.MemoryBytes, 512 * 1024 ** 2)
  t.same(web!.spec.EndpointSpec?.Ports, [{ Protocol: 'tcp', TargetPort: 8080, PublishMode: 'host' }], 'web publishes its port')
  t.equal(engine.containersOf('wharf-shop-web').length, 2, 'two web containers run')
  const running = await engine.inspectContainer(engine.containersOf('wharf-shop-worker')[0]!)
  t.match(running.labels, { [LABELS.app]: 'shop', [LABELS.type]: 'worker', [LABELS.release]: '1' }, 'containers carry the labels')
  t.same(await deploys(), [
    { type: 'DeployStarted', data: { app: 'shop', release: 1, formation: { web: 2, worker: 1 } } },
    { type: 'DeployCompleted', data: { app: 'shop', release: 1 } },
  ])
})

t.test('a deploy is followed through failures of the engine and the event log (a NATS server lost): it still completes, once', async (t) => {
  const { engine, store, reads, scheduler, deploys } = setup(t)
  let engineFails = 2
  const listTasks = engine.listTasks.bind(engine)
  engine.listTasks = async (...args: Parameters<typeof listTasks>) => {
    if (engineFails > 0 && engineFails--) throw new Error('connect ETIMEDOUT')
    return listTasks(...args)
  }
  let storeFails = 2
  const append = store.append.bind(store)
  store.append = async (...args: Parameters<typeof append>) => {
    if (args[1].some((e) => e.type === 'DeployCompleted') && storeFails > 0 && storeFails--) throw Object.assign(new Error('TIMEOUT'), { name: 'TimeoutError' })
    return append(...args)
  }
  reads.releases.set('shop', release(1))
  reads.formations.set('shop', { web: 1 })
  t.equal(await scheduler.reconcile('shop'), 'changed')
  await scheduler.idle()
  t.equal(engineFails, 0, 'the engine failed twice')
  t.equal(storeFails, 0, 'the outcome failed to append twice')
  t.same(
    (await deploys()).map((e) => e.type),
    ['DeployStarted', 'DeployCompleted'],
  )
})

t.test('an unchanged spec is not updated (same hash), and announces nothing', async (t) => {
  const { reads, scheduler, services, deploys } = setup(t)
  reads.releases.set('shop', release(1))
  reads.formations.set('shop', { web: 1 })
  await scheduler.reconcile('shop')
  await scheduler.idle()
  const before = await services()
  t.equal(await scheduler.reconcile('shop'), 'unchanged')
  t.same(
    (await services()).map((s) => s.version),
    before.map((s) => s.version),
    'no service was updated',
  )
  t.equal((await deploys()).length, 2, 'no second deploy')
})

t.test('scale to 0 removes the service; a new release without a type removes its service and updates the rest', async (t) => {
  const { engine, reads, scheduler, services, deploys } = setup(t)
  reads.releases.set('shop', release(1))
  reads.formations.set('shop', { web: 1, worker: 2 })
  await scheduler.reconcile('shop')
  await scheduler.idle()
  reads.formations.set('shop', { web: 1, worker: 0 })
  t.equal(await scheduler.reconcile('shop'), 'changed')
  await scheduler.idle()
  t.same(
    (await services()).map((s) => s.spec.Name),
    ['wharf-shop-web'],
    'the worker service is gone',
  )
  t.same(await engine.listContainers({ labels: { [LABELS.type]: 'worker' } }), [], 'and its containers')

  reads.formations.set('shop', { web: 3, worker: 1 })
  reads.releases.set('shop', release(2, { procfile: {} }))
  await scheduler.reconcile('shop')
  await scheduler.idle()
  const [web, ...rest] = await services()
  t.same(rest, [], 'no worker: release 2 has no such type')
  t.equal(web!.spec.Labels?.[LABELS.release], '2')
  t.equal(web!.spec.Mode?.Replicated?.Replicas, 3)
  t.equal(web!.spec.TaskTemplate?.ContainerSpec?.Image, `${REGISTRY}/shop:v2`)
  t.equal(engine.containersOf('wharf-shop-web').length, 3)
  t.same((await deploys()).slice(-2), [
    { type: 'DeployStarted', data: { app: 'shop', release: 2, formation: { web: 3 } } },
    { type: 'DeployCompleted', data: { app: 'shop', release: 2 } },
  ])
})

t.test('a release whose image cannot be run is rolled back by Swarm: DeployFailed, and that spec is not tried again', async (t) => {
  const { reads, scheduler, services, deploys } = setup(t)
  reads.releases.set('shop', release(1, { procfile: {} }))
  reads.formations.set('shop', { web: 1 })
  await scheduler.reconcile('shop')
  await scheduler.idle()
  reads.releases.set('shop', release(2, { procfile: {}, image: `${REGISTRY}/shop:missing` }))
  await scheduler.reconcile('shop')
  await scheduler.idle()
  const last = (await deploys()).at(-1)!
  t.equal(last.type, 'DeployFailed')
  t.match(last.data, {
    app: 'shop',
    release: 2,
    rolledBackTo: 1,
    reason: /^web: Swarm: rollback completed \(No such image: 127\.0\.0\.1:5000\/shop:missing\)$/,
  })
  const [web] = await services()
  t.equal(web!.spec.Labels?.[LABELS.release], '1', 'v1 runs on')
  t.ok(web!.spec.Labels?.[LABELS.failed], 'the failed spec is marked')
  t.equal(await scheduler.reconcile('shop'), 'unchanged', 'the failed spec is not deployed again')
})

t.test('restart replaces the tasks once per request; destroy removes the services and images', async (t) => {
  const { engine, reads, scheduler, services } = setup(t)
  reads.releases.set('shop', release(1, { procfile: {} }))
  reads.formations.set('shop', { web: 1 })
  await scheduler.reconcile('shop')
  await scheduler.idle()
  const [first] = engine.containersOf('wharf-shop-web')
  const cause = { id: 'req-1', correlationId: 'c-1' } as Parameters<Scheduler['restart']>[2]
  await scheduler.restart('shop', undefined, cause)
  await scheduler.idle()
  const [second] = engine.containersOf('wharf-shop-web')
  t.not(second, first, 'a new container')
  await scheduler.restart('shop', undefined, cause)
  t.same(engine.containersOf('wharf-shop-web'), [second], 'a redelivered request restarts nothing')

  await scheduler.destroy('shop')
  t.same(await services(), [])
  t.same(await engine.listImages(`${REGISTRY}/shop`), [], "the app's images are gone")
})

t.test('apps(): apps with an image or with a service', async (t) => {
  const { engine, reads, scheduler } = setup(t)
  reads.releases.set('shop', release(1))
  await engine.createService({
    Name: 'wharf-old-web',
    Labels: { [LABELS.namespace]: NS, [LABELS.app]: 'old', [LABELS.type]: 'web' },
    TaskTemplate: { ContainerSpec: { Image: `${REGISTRY}/shop:v1` } },
  })
  t.same(await scheduler.apps(), ['old', 'shop'])
  t.equal(await scheduler.reconcile('old'), 'changed', 'a service of an app with nothing to run')
  t.same(await engine.listServices({ [LABELS.app]: 'old' }), [], 'is removed')
})

t.test('releases asked for while a deploy starts its tasks make one deploy of the newest, after it', async (t) => {
  const { engine, reads, scheduler, services, deploys } = setup(t)
  reads.formations.set('shop', { web: 1 })
  reads.releases.set('shop', release(1))
  t.equal(await scheduler.request('shop'), 'changed', 'no deploy in progress: at once')
  const updates: number[] = []
  const update = engine.updateService.bind(engine)
  engine.updateService = async (name, version, spec) => {
    updates.push(Number(spec.Labels?.[LABELS.release]))
    return update(name, version, spec)
  }
  for (const v of [2, 3, 4]) {
    reads.releases.set('shop', release(v, { image: `${REGISTRY}/shop:v2` }))
    t.equal(await scheduler.request('shop'), 'deferred', `v${v} waits for the deploy of v1`)
  }
  for (let i = 0; i < 200 && (await services())[0]?.spec.Labels?.[LABELS.release] !== '4'; i++) await new Promise((r) => setTimeout(r, 10))
  await scheduler.idle()
  t.same(updates, [4], 'one Swarm update, of the newest release')
  t.same(
    (await deploys()).map((d) => `${d.type} ${d.data.release}`),
    ['DeployStarted 1', 'DeployCompleted 1', 'DeployStarted 4', 'DeployCompleted 4'],
  )
})

t.test('a release after a deploy whose tasks run waits for deployIntervalMs since that deploy began; a scale does not', async (t) => {
  const base = setup(t)
  const { engine, reads, store } = base
  const scheduler = new Scheduler(
    { store, reads, docker: engine, namespace: NS, registry: REGISTRY, log: createLogger({ level: 'silent' }) },
    { pollMs: 5, deployTimeoutMs: 2_000, progress: { settleMs: 0 }, deployIntervalMs: 400 },
  )
  t.teardown(() => scheduler.stop())
  const released = (version: number) => ({ type: 'ReleaseCreated', data: { app: 'shop', version } }) as unknown as RecordedEvent
  const scaled = { type: 'FormationScaled', data: { app: 'shop', formation: { web: 2 } } } as unknown as RecordedEvent
  const releaseOnEngine = async () => (await base.services())[0]?.spec.Labels?.[LABELS.release]
  reads.formations.set('shop', { web: 1 })
  reads.releases.set('shop', release(1))
  const started = Date.now()
  t.equal(await scheduler.request('shop', released(1)), 'changed', 'the first release: at once')
  await scheduler.idle()
  reads.formations.set('shop', { web: 2 })
  t.equal(await scheduler.request('shop', scaled), 'changed', 'a scale after the tasks run: at once')
  await scheduler.idle()
  for (const v of [2, 3]) {
    reads.releases.set('shop', release(v, { image: `${REGISTRY}/shop:v2` }))
    t.equal(await scheduler.request('shop', released(v)), 'deferred', `v${v}, within the interval: deferred`)
  }
  t.equal(await releaseOnEngine(), '1')
  for (let i = 0; i < 300 && (await releaseOnEngine()) !== '3'; i++) await new Promise((r) => setTimeout(r, 10))
  t.ok(Date.now() - started >= 400, 'the newest release deployed once the interval since the scale had passed')
  await scheduler.idle()
  await new Promise((r) => setTimeout(r, 450))
  reads.releases.set('shop', release(4, { image: `${REGISTRY}/shop:v2` }))
  t.equal(await scheduler.request('shop', released(4)), 'changed', 'after a quiet spell: at once')
  await scheduler.idle()
  t.equal(await releaseOnEngine(), '4')
})

/** The engine as a killed or restarting one answers: the call does not reach it (what dockerode throws on a dead socket). */
function unreachable(): Error {
  return Object.assign(new Error('connect ECONNREFUSED /run/wharf/docker.sock'), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect' })
}

/** `engine`, with the calls named in `down` failing as a dead engine's do while it is set. */
function withOutage(engine: MemoryEngine): { engine: MemoryEngine; down: Set<string> } {
  const down = new Set<string>()
  const proxy = new Proxy(engine, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver)
      if (typeof v !== 'function') return v
      return (...args: unknown[]) => (down.has(String(prop)) ? Promise.reject(unreachable()) : v.apply(target, args))
    },
  })
  return { engine: proxy, down }
}

t.test('a scale whose change cannot reach the engine (killed meanwhile) is not failed: it is applied once the engine is back', async (t) => {
  const base = setup(t)
  const { engine, down } = withOutage(base.engine)
  const { reads, store, deploys } = base
  const scheduler = new Scheduler(
    { store, reads, docker: engine, namespace: NS, registry: REGISTRY, log: createLogger({ level: 'silent' }) },
    { pollMs: 5, deployTimeoutMs: 2_000, progress: { settleMs: 0 } },
  )
  t.teardown(() => scheduler.stop())
  reads.releases.set('shop', release(1))
  reads.formations.set('shop', { web: 1 })
  await scheduler.reconcile('shop')
  await scheduler.idle()
  // ps:scale web=2; the engine dies between the scheduler's look at the services and its update.
  reads.formations.set('shop', { web: 2 })
  down.add('updateService')
  await t.rejects(scheduler.reconcile('shop'), { code: 'ECONNREFUSED' }, 'thrown: the consumer hands the event over again')
  t.notMatch(await deploys(), [{ type: 'DeployFailed' }], 'no DeployFailed: Swarm refused nothing')
  // While it is away, each retry fails the same way (at the first look).
  down.add('listServices')
  await t.rejects(scheduler.reconcile('shop'), { code: 'ECONNREFUSED' })
  down.clear()
  t.equal(await scheduler.reconcile('shop'), 'changed', 'the retry once the engine is back applies it')
  await scheduler.idle()
  t.equal(base.engine.containersOf('wharf-shop-web').length, 2, 'web=2 runs')
  t.same(
    (await deploys()).map((e) => e.type),
    ['DeployStarted', 'DeployCompleted', 'DeployStarted', 'DeployCompleted'],
    'one deploy for the scale, completed',
  )
})

t.test('a deploy whose engine goes away while it is watched completes once the engine is back', async (t) => {
  const base = setup(t)
  const { engine, down } = withOutage(base.engine)
  const { reads, store, deploys } = base
  const scheduler = new Scheduler(
    { store, reads, docker: engine, namespace: NS, registry: REGISTRY, log: createLogger({ level: 'silent' }) },
    { pollMs: 5, deployTimeoutMs: 5_000, progress: { settleMs: 0 } },
  )
  t.teardown(() => scheduler.stop())
  reads.releases.set('shop', release(1))
  reads.formations.set('shop', { web: 1 })
  // Every read of the deploy's progress fails for a while after the change was applied.
  const reconciled = scheduler.reconcile('shop')
  down.add('inspectService').add('listTasks')
  t.equal(await reconciled, 'changed')
  await new Promise((r) => setTimeout(r, 700))
  t.same(
    (await deploys()).map((e) => e.type),
    ['DeployStarted'],
    'neither completed nor failed while the engine is away',
  )
  down.clear()
  await scheduler.idle()
  t.same(
    (await deploys()).map((e) => e.type),
    ['DeployStarted', 'DeployCompleted'],
  )
})

/**
 * `engine` as Swarm leaves it after a host was lost under its update: each service's first task of
 * its current spec has a twin in its slot (the slot's old and new task on the lost host were both
 * started again on the new spec), until Swarm's next update of the service (a nudge) removes it.
 */
function withTwinInASlot(engine: MemoryEngine, completed: () => Promise<boolean>): { engine: MemoryEngine; nudges: { completedBefore: boolean }[] } {
  let twin = true
  const nudges: { completedBefore: boolean }[] = []
  const proxy = new Proxy(engine, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver)
      if (typeof v !== 'function') return v
      if (prop === 'listTasks')
        return async (id: string) => {
          const tasks = await target.listTasks(id)
          const first = tasks.find((x) => x.desiredState === 'running')
          return twin && first ? [...tasks, { ...first, id: `${first.id}-twin` }] : tasks
        }
      if (prop === 'updateService')
        return async (name: string, version: number, spec: { Labels?: Record<string, string> }) => {
          if (spec.Labels?.[NUDGE_LABEL]) {
            nudges.push({ completedBefore: await completed() })
            twin = false
          }
          return target.updateService(name, version, spec as never)
        }
      return (...args: unknown[]) => v.apply(target, args)
    },
  })
  return { engine: proxy, nudges }
}

t.test('a slot running two tasks of the new spec (a host lost under the update) holds the deploy until the update, started over, removes one', async (t) => {
  const base = setup(t)
  const { reads, store, deploys } = base
  const { engine, nudges } = withTwinInASlot(base.engine, async () => (await deploys()).some((e) => e.type === 'DeployCompleted'))
  const scheduler = new Scheduler(
    { store, reads, docker: engine, namespace: NS, registry: REGISTRY, log: createLogger({ level: 'silent' }) },
    { pollMs: 5, deployTimeoutMs: 5_000, nudgeAfterMs: 50, progress: { settleMs: 0 } },
  )
  t.teardown(() => scheduler.stop())
  reads.releases.set('shop', release(1))
  reads.formations.set('shop', { web: 2 })
  t.equal(await scheduler.reconcile('shop'), 'changed')
  await scheduler.idle()
  t.same(nudges, [{ completedBefore: false }], 'the update was started over once, before the deploy completed')
  t.same(
    (await deploys()).map((e) => e.type),
    ['DeployStarted', 'DeployCompleted'],
  )
})
