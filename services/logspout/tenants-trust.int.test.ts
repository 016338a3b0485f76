/**
 * Issue 14, finding 5, against the real engine, NATS and logger: bob's Dockerfile `LABEL`s claim
 * alice's app (the platform's namespace, `wharf.app=shop`, a process type and release). The engine's
 * classic builder runs bob's `RUN` step in a container carrying those labels (with the `none` log
 * driver: its lines cannot be read, but its start and stop could be announced); a `docker run` of
 * bob's image carries them; another container copies every label of alice's real task container
 * (its task id included); bob's own app runs his image as a Swarm task and crashes. None of it
 * reaches alice's log stream, her drain or her runtime stream; alice's own task does, and bob's task
 * is announced on bob's app only. On the code before the check, alice's log and drain got the `run`
 * and `stolen task` lines and her runtime stream six more events (the build step's start and stop
 * among them).
 */
import { createServer, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { processLabels } from '../../domain/runtime/labels.js'
import { streamId } from '../../events/index.js'
import { until } from '../../test/harness.js'
import { buildTestImage, testDocker, testEngine } from '../builder/testing.js'
import { registerAndLogin, startTestController } from '../controller/testing.js'
import { startTestLogger } from '../logger/testing.js'
import { Publisher } from '../publisher/publisher.js'
import { Logspout } from './logspout.js'
import { runLabelled, streamLines } from './testing.js'

const BOB = 'bob was here'

t.test("containers with alice's labels that no task of hers made reach nothing of alice's", async (t) => {
  const docker = testDocker()
  const engine = testEngine()
  // The drain points at this machine: allowed for the test.
  const c = await startTestController(t, { WHARF_OUTBOUND_ALLOW: '127.0.0.1' })
  const ns = c.deps.cfg.namespace
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  for (const [token, name] of [
    [alice, 'shop'],
    [bob, 'bobapp'],
  ] as const)
    t.equal((await c.call('POST', '/v1/apps', { token, body: { name } })).status, 201, `${name} created`)

  // alice's drain: a syslog listener on loopback.
  const drained: string[] = []
  const sockets = new Set<Socket>()
  const listener = createServer((s) => {
    sockets.add(s)
    s.on('data', (d: Buffer) => drained.push(d.toString()))
    s.on('error', () => {})
  })
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((r) => listener.close(() => r()))
  })
  const server = await startTestLogger(t, c)
  const drainUrl = `syslog://127.0.0.1:${(listener.address() as { port: number }).port}`
  t.equal((await c.call('POST', '/v1/apps/shop/drains', { token: alice, body: { url: drainUrl } })).status, 201, 'alice adds a drain')
  await until("the logger runs alice's drain", async () => server.drains.stats('shop').length === 1)

  const logs = c.deps.logger!.logs
  const spout = await Logspout.start({ docker: engine, logs, log: c.deps.log, namespace: ns, reconnectMs: 100 })
  t.teardown(() => spout.stop())
  const publisher = await Publisher.start({ docker: engine, store: c.deps.store, pool: c.deps.pool, log: c.deps.log, namespace: ns })
  t.teardown(() => publisher.stop())
  const runtime = async (app: string) => (await c.deps.store.readStream(streamId('runtime', app))).events

  // alice's process, as the scheduler makes it (a Swarm service whose labels say her app).
  const aliceTask = await runLabelled(t, docker, ns, 'shop', 'echo alice says hi; sleep 60', { type: 'worker' })
  const aliceId = (await aliceTask.inspect()).Id
  await until("alice's line in her log", async () => (await streamLines(logs, 'shop')).some((l) => l.text === 'alice says hi'))
  await until("alice's ContainerStarted", async () => (await runtime('shop')).some((e) => e.type === 'ContainerStarted'))

  // bob's build: the classic builder's RUN container carries the Dockerfile's LABELs, and prints.
  const forged = processLabels(ns, 'shop', 'worker', 1)
  const dockerfile = [
    'FROM busybox',
    `LABEL ${Object.entries(forged)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    `RUN echo "${BOB} (build)"; sleep 2; echo "${BOB} (build, later)"; exit 0`,
    `CMD ["sh", "-c", "echo '${BOB} (run)'; sleep 1; exit 3"]`,
    '',
  ].join('\n')
  const seen = new Set<string>()
  let building = true
  const watch = (async () => {
    while (building) {
      const list = await docker.listContainers({ all: true, filters: { label: [`wharf.namespace=${ns}`, 'wharf.app=shop'] } })
      for (const x of list) if (x.Id !== aliceId) seen.add(x.Id)
      await sleep(100)
    }
  })()
  const image = await buildTestImage(t, docker, dockerfile).finally(() => (building = false))
  await watch
  t.ok(seen.size >= 1, `the build's RUN container carried alice's labels (${seen.size} seen): the attack is real`)

  // A `docker run` of bob's image (no task): prints, crashes.
  const plain = await docker.createContainer({ Image: image })
  t.teardown(() => plain.remove({ force: true }).catch(() => {}))
  await plain.start()
  // A container that copies every label of alice's task container, her task id included.
  const aliceLabels = (await aliceTask.inspect()).Config.Labels
  const stolen = await docker.createContainer({
    Image: 'busybox:latest',
    Cmd: ['sh', '-c', `echo '${BOB} (stolen task)'; sleep 1; exit 4`],
    Labels: aliceLabels,
  })
  t.teardown(() => stolen.remove({ force: true }).catch(() => {}))
  await stolen.start()
  // bob's own app runs his image, and crashes.
  await runLabelled(t, docker, ns, 'bobapp', `echo '${BOB} (bobapp)'; sleep 3; exit 3`, { type: 'worker', image })

  await until("bob's task crash announced on bob's app", async () => (await runtime('bobapp')).some((e) => e.type === 'ContainerCrashed'))
  await until("bob's task lines in bob's log", async () => (await streamLines(logs, 'bobapp')).some((l) => l.text === `${BOB} (bobapp)`))
  await plain.wait()
  await stolen.wait()
  await sleep(1_000)
  await spout.settled()
  await publisher.settled()

  const aliceLines = await streamLines(logs, 'shop')
  t.same(
    aliceLines.filter((l) => l.source === 'app').map((l) => l.text),
    ['alice says hi'],
    "alice's log stream holds her container's line only",
  )
  t.notOk(
    aliceLines.some((l) => l.text.includes(BOB)),
    "nothing of bob's in her log",
  )
  await until('her drain got her line', async () => drained.join('').includes('alice says hi'))
  t.notOk(drained.join('').includes(BOB), "nothing of bob's in her drain")
  const events = await runtime('shop')
  t.same(
    events.map((e) => [e.type, (e.data as { container: string }).container]),
    [['ContainerStarted', aliceId]],
    "alice's runtime stream: her container started, nothing else",
  )
  const bobs = await runtime('bobapp')
  t.same(
    bobs.map((e) => e.type),
    ['ContainerStarted', 'ContainerCrashed'],
    "bob's task: started and crashed, on bob's app",
  )
  t.ok((spout.health().detail.refused as number) >= 3, `logspout refused the build, run and stolen containers (${spout.health().detail.refused})`)
  t.ok((publisher.health().detail.refused as number) >= 3, `the publisher too (${publisher.health().detail.refused})`)
})
