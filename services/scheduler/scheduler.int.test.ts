/**
 * The scheduler against the real Swarm engine `make test` started: a test controller (API,
 * projector, release manager), `builds:create` of a busybox image, and the scheduler on the same
 * event store. Containers are reached only through the ports their tasks publish on the host.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { streamId, type RecordedEvent } from '../../events/index.js'
import { buildTestImage, removeImage, testDocker, testRegistry } from '../builder/testing.js'
import { registerAndLogin, startEngineController, type TestController } from '../controller/testing.js'
import { LABELS } from '../../domain/runtime/labels.js'
import { removeNamespaceServices, startTestScheduler } from './testing.js'

const docker = testDocker()

/** Writes $GREETING into the web root, then serves it: what a container sees is one GET away. */
const PROCFILE = { web: 'echo "$GREETING" > /www/greeting.txt; exec httpd -f -p $PORT -h /www', worker: 'exec sleep 100000' }
const DOCKERFILE = 'FROM busybox\nRUN mkdir /www && echo hello > /www/index.html\nCMD ["httpd", "-f", "-p", "5000", "-h", "/www"]\n'

interface Kit {
  c: TestController
  token: string
  app: string
  namespace: string
}

async function setup(t: Test): Promise<Kit> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-scheduler-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = await startEngineController(t, {
    WHARF_HOME: join(dir, 'home'),
  })
  const namespace = c.deps.cfg.namespace
  t.teardown(() => removeNamespaceServices(namespace))
  const token = await registerAndLogin(c, 'alice')
  const app = `sch${Date.now().toString(36).slice(-5)}${Math.floor(Math.random() * 1e4)}`
  const created = await c.call('POST', '/v1/apps', { token, body: { name: app } })
  if (created.status !== 201) throw new Error(`create ${app}: ${created.status} ${JSON.stringify(created.body)}`)
  t.teardown(async () => {
    for (const img of await docker.listImages({ filters: { reference: [`${testRegistry()}/${app}`] } }))
      for (const tag of img.RepoTags ?? []) await removeImage(docker, tag)
  })
  return { c, token, app, namespace }
}

/** `builds:create` of a fresh busybox image with {@link PROCFILE}; answers the release. */
async function build(t: Test, k: Kit): Promise<number> {
  const image = await buildTestImage(t, docker, DOCKERFILE)
  const res = await k.c.call('POST', `/v1/apps/${k.app}/builds`, { token: k.token, body: { image, procfile: PROCFILE, port: 5000 } })
  if (res.status !== 201) throw new Error(`builds:create: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body.release
}

async function call(k: Kit, method: string, path: string, body?: unknown): Promise<any> {
  const res = await k.c.call(method, `/v1/apps/${k.app}${path}`, { token: k.token, ...(body === undefined ? {} : { body }) })
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}

async function runtimeEvents(k: Kit): Promise<RecordedEvent[]> {
  return (await k.c.deps.store.readStream(streamId('runtime', k.app))).events
}

/** Waits for a deploy outcome of `release` appended after `afterSeq`. */
async function outcome(k: Kit, release: number, afterSeq = 0, timeoutMs = 45_000): Promise<RecordedEvent> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const e = (await runtimeEvents(k)).find(
      (e) => e.seq > afterSeq && (e.type === 'DeployCompleted' || e.type === 'DeployFailed') && (e.data as { release: number }).release === release,
    )
    if (e) return e
    if (Date.now() > deadline)
      throw new Error(`no deploy outcome of v${release}; runtime: ${JSON.stringify((await runtimeEvents(k)).map((e) => [e.type, e.data]))}`)
    await sleep(100)
  }
}

async function services(k: Kit) {
  return docker.listServices({ filters: { label: [`${LABELS.namespace}=${k.namespace}`, `${LABELS.app}=${k.app}`] } })
}

/** The host ports of the running containers of a service (from each container's published ports). */
async function hostPorts(serviceName: string): Promise<{ container: string; port: number; release: string }[]> {
  const tasks = (await docker.listTasks({ filters: { service: [serviceName], 'desired-state': ['running'] } })) as any[]
  const out = []
  for (const task of tasks) {
    if (task.Status?.State !== 'running') continue
    const id = task.Status.ContainerStatus.ContainerID as string
    const info = await docker.getContainer(id).inspect()
    const binding = Object.values(info.NetworkSettings.Ports ?? {})[0]?.[0]
    out.push({ container: id, port: Number(binding?.HostPort), release: info.Config.Labels[LABELS.release]! })
  }
  return out
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await request(`http://127.0.0.1:${port}${path}`)
  return { status: res.statusCode, body: await res.body.text() }
}

t.test('deploy, scale up and down, config change, rollback, failed health check', async (t) => {
  const k = await setup(t)
  await startTestScheduler(t, k.c)
  const web = (await services(k)).length
  t.equal(web, 0, 'nothing runs before a build')

  const v2 = await build(t, k)
  const first = await outcome(k, v2)
  t.equal(first.type, 'DeployCompleted', 'the first build deploys')
  const started = (await runtimeEvents(k)).find((e) => e.type === 'DeployStarted')
  t.same(started?.data, { app: k.app, release: v2, formation: { web: 1, worker: 0 } }, 'DeployStarted names the release and formation')
  let svcs = await services(k)
  t.equal(svcs.length, 1, 'one service (worker has 0)')
  t.match(svcs[0]!.Spec?.Name, new RegExp(`-${k.app}-web$`))
  t.equal(svcs[0]!.Spec?.Mode?.Replicated?.Replicas, 1, 'web=1')
  const name = svcs[0]!.Spec!.Name!
  let ports = await hostPorts(name)
  t.equal(ports.length, 1)
  t.same(await get(ports[0]!.port, '/index.html'), { status: 200, body: 'hello\n' }, 'answers on its published host port')

  // Scale up, then down.
  let seq = (await runtimeEvents(k)).at(-1)!.seq
  await call(k, 'POST', '/formation', { web: 3 })
  t.equal((await outcome(k, v2, seq)).type, 'DeployCompleted', 'web=3 deployed')
  ports = await hostPorts(name)
  t.equal(ports.length, 3, 'three containers')
  t.equal(new Set(ports.map((p) => p.port)).size, 3, 'each on a port of its own')
  for (const p of ports) t.equal((await get(p.port, '/index.html')).status, 200)
  seq = (await runtimeEvents(k)).at(-1)!.seq
  await call(k, 'POST', '/formation', { web: 1 })
  t.equal((await outcome(k, v2, seq)).type, 'DeployCompleted', 'web=1 deployed')
  t.equal((await hostPorts(name)).length, 1, 'one container again')

  // A redelivered or repeated reconcile changes nothing.
  const before = (await services(k))[0]!.Version?.Index
  seq = (await runtimeEvents(k)).at(-1)!.seq
  await call(k, 'POST', '/formation', { web: 1 })
  await sleep(500)
  t.equal((await services(k))[0]!.Version?.Index, before, 'an unchanged formation does not touch the service')
  t.equal((await runtimeEvents(k)).at(-1)!.seq, seq, 'and announces no deploy')

  // config:set rolls to a new release that sees the value.
  await call(k, 'POST', '/config', { values: { GREETING: 'bonjour' } })
  const v3 = v2 + 1
  t.equal((await outcome(k, v3)).type, 'DeployCompleted', 'config:set deployed v3')
  ports = await hostPorts(name)
  t.same(
    ports.map((p) => p.release),
    [String(v3)],
    'only v3 runs',
  )
  t.same(await get(ports[0]!.port, '/greeting.txt'), { status: 200, body: 'bonjour\n' }, 'the new container sees the new value')

  // Rollback to v2: a v4 with v2's config.
  await call(k, 'POST', '/releases/rollback', {})
  const v4 = v3 + 1
  t.equal((await outcome(k, v4)).type, 'DeployCompleted', 'rollback deployed v4')
  ports = await hostPorts(name)
  t.same(await get(ports[0]!.port, '/greeting.txt'), { status: 200, body: '\n' }, 'v4 runs without GREETING, as v2 did')

  // A health check that never passes: DeployFailed, Swarm rolls back, v4 keeps serving.
  await call(k, 'POST', '/config', { values: { HEALTHCHECK_URL: '/nope' } })
  const v5 = v4 + 1
  const failed = await outcome(k, v5)
  t.equal(failed.type, 'DeployFailed', 'a release that never becomes healthy fails')
  t.match(failed.data, { release: v5, rolledBackTo: v4, reason: /web: / }, `with a reason: ${(failed.data as { reason: string }).reason}`)
  svcs = await services(k)
  t.equal(svcs[0]!.Spec?.Labels?.[LABELS.release], String(v4), 'the service is back on v4')
  ports = await hostPorts(name)
  t.same(
    ports.map((p) => p.release),
    [String(v4)],
    'v4 keeps running',
  )
  t.equal((await get(ports[0]!.port, '/index.html')).status, 200, 'and serving')
  // The failed spec is not tried again by a later reconcile (e.g. a redelivery or a restart of the scheduler).
  seq = (await runtimeEvents(k)).at(-1)!.seq
  const k2 = await startTestScheduler(t, k.c)
  await k2.stop()
  t.equal((await runtimeEvents(k)).at(-1)!.seq, seq, 'a new scheduler does not redeploy the failed release')
})

t.test('killed mid-deploy: the next scheduler converges with one service per type; restart; destroy removes services', async (t) => {
  const k = await setup(t)
  let s = await startTestScheduler(t, k.c)
  const v2 = await build(t, k)
  t.equal((await outcome(k, v2)).type, 'DeployCompleted')
  await call(k, 'POST', '/formation', { worker: 1 })
  t.equal((await outcome(k, v2, (await runtimeEvents(k)).find((e) => e.type === 'DeployCompleted')!.seq)).type, 'DeployCompleted', 'worker=1 deployed')

  // A config change; the scheduler dies as soon as the deploy started.
  await call(k, 'POST', '/config', { values: { GREETING: 'mid' } })
  const v3 = v2 + 1
  for (let i = 0; i < 200 && !(await runtimeEvents(k)).some((e) => e.type === 'DeployStarted' && (e.data as { release: number }).release === v3); i++)
    await sleep(25)
  await s.kill()
  t.notOk(
    (await runtimeEvents(k)).some((e) => e.type === 'DeployCompleted' && (e.data as { release: number }).release === v3),
    'killed before the deploy completed',
  )
  s = await startTestScheduler(t, k.c)
  t.equal((await outcome(k, v3)).type, 'DeployCompleted', 'the next scheduler announces the outcome')
  const svcs = await services(k)
  t.same(svcs.map((x) => x.Spec?.Labels?.[LABELS.type]).sort(), ['web', 'worker'], 'exactly one service per type')
  t.ok(
    svcs.every((x) => x.Spec?.Labels?.[LABELS.release] === String(v3)),
    'both on v3',
  )
  const web = svcs.find((x) => x.Spec?.Labels?.[LABELS.type] === 'web')!.Spec!.Name!
  const ports = await hostPorts(web)
  t.same(await get(ports[0]!.port, '/greeting.txt'), { status: 200, body: 'mid\n' })

  // Killed before it saw a change at all: the next one finds it on start.
  await s.kill()
  await call(k, 'POST', '/config', { values: { GREETING: 'later' } })
  const v4 = v3 + 1
  s = await startTestScheduler(t, k.c)
  t.equal((await outcome(k, v4)).type, 'DeployCompleted', 'a change made while no scheduler ran is deployed on start')
  t.equal((await runtimeEvents(k)).filter((e) => e.type === 'DeployStarted' && (e.data as { release: number }).release === v4).length, 1, 'once')

  // ps:restart web: new containers, same release.
  const seq = (await runtimeEvents(k)).at(-1)!.seq
  const old = (await hostPorts(web)).map((p) => p.container)
  await call(k, 'POST', '/restart', { type: 'web' })
  t.equal((await outcome(k, v4, seq)).type, 'DeployCompleted', 'restart completes')
  const now = await hostPorts(web)
  t.equal(now.length, 1)
  t.not(now[0]!.container, old[0], 'a new container')

  // apps:destroy removes every service.
  await call(k, 'DELETE', '', { confirm: k.app })
  for (let i = 0; i < 100 && (await services(k)).length > 0; i++) await sleep(100)
  t.same(await services(k), [], 'no service left')
  // The images go after the services (the scheduler removes them next).
  const images = () => docker.listImages({ filters: { reference: [`${testRegistry()}/${k.app}`] } })
  for (let i = 0; i < 100 && (await images()).length > 0; i++) await sleep(100)
  t.same(await images(), [], 'and no image of the app in the engine, tagged or pulled by digest')
})
