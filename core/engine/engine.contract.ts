import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { until } from '../../test/harness.js'
import { tarOf } from '../../test/tar.js'
import { ENGINE_ERRORS, type ContainerEngine, type ContainerEvent, type EngineErrorReason } from './engine.js'

/** How an adapter's test file gives the contract its engine. */
export interface EngineFactory {
  /** The engine, with `image` (busybox) in it and `registry` (`127.0.0.1:<port>`) reachable for pushes. */
  create(t: Test): Promise<{ engine: ContainerEngine; image: string; registry: string }>
  /**
   * What the process of started container `id` (created with `Cmd: ['sh', '-c', 'printf <out>; exit <code>']`)
   * does: a real engine runs the command (nothing to do), the in-memory one is told.
   */
  ran(engine: ContainerEngine, id: string, out: string, code: number): void
}

const unique = () => `c${Date.now().toString(36)}${randomBytes(3).toString('hex')}`

/** Splits multiplexed frames (8-byte header, then the bytes) into `[stream, text]`. */
function frames(buf: Buffer): [number, string][] {
  const out: [number, string][] = []
  let off = 0
  while (off + 8 <= buf.length) {
    const size = buf.readUInt32BE(off + 4)
    out.push([buf[off]!, buf.subarray(off + 8, off + 8 + size).toString('utf8')])
    off += 8 + size
  }
  return out
}

async function drain(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string))
  return Buffer.concat(chunks)
}

/** Checks that `p` is refused with an EngineError of `reason` (and its status). */
async function refused(t: Test, p: Promise<unknown>, reason: EngineErrorReason, what: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  t.match(err, { name: 'EngineError', reason, statusCode: ENGINE_ERRORS[reason] }, what)
}

/** The contract every {@link ContainerEngine} adapter passes. */
export async function engineContract(t: Test, name: string, factory: EngineFactory): Promise<void> {
  t.test(`${name}: unknown things are not_found (404)`, async (t) => {
    const { engine } = await factory.create(t)
    await refused(t, engine.inspectImage(`wharf-none-${unique()}:1`), 'not_found', 'inspectImage')
    await refused(t, engine.createContainer({ Image: `wharf-none-${unique()}:1`, Cmd: ['true'] }), 'not_found', 'createContainer of an unknown image')
    await refused(t, engine.inspectContainer(`none${unique()}`), 'not_found', 'inspectContainer')
    await refused(t, engine.removeContainer(`none${unique()}`, { force: true }), 'not_found', 'removeContainer')
    await refused(t, engine.killContainer(`none${unique()}`, 'SIGTERM'), 'not_found', 'killContainer')
    await refused(t, engine.inspectService(`none-${unique()}`), 'not_found', 'inspectService')
    await refused(t, engine.removeService(`none-${unique()}`), 'not_found', 'removeService')
    await refused(t, engine.pushImage(`127.0.0.1:1/none-${unique()}:1`), 'not_found', 'pushImage of an image the engine has not')
  })

  t.test(`${name}: build, tag, push, remove, pull back`, async (t) => {
    const { engine, registry } = await factory.create(t)
    const tag = `wharf-test-${unique()}:1`
    const lines: string[] = []
    const built = await engine.buildImage(tarOf({ Dockerfile: 'FROM busybox\nEXPOSE 8080\nCMD ["sh"]\n' }), { tag, labels: { 'wharf.test': 'true' } }, (l) => {
      lines.push(l)
    })
    t.same(built, {}, 'no error')
    t.ok(lines.length > 0, 'the build printed its steps')
    t.teardown(() => engine.removeImage(tag, { force: true }).catch(() => {}))
    const info = await engine.inspectImage(tag)
    t.match(info.id, /^sha256:[0-9a-f]{64}$/)
    t.ok(info.exposedPorts.includes('8080/tcp'), 'EXPOSE is in the config')
    t.equal(info.labels['wharf.test'], 'true')
    const repo = `${registry}/${unique()}`
    await engine.tagImage(tag, repo, 'v1')
    t.teardown(() => engine.removeImage(`${repo}:v1`, { force: true }).catch(() => {}))
    t.equal((await engine.inspectImage(`${repo}:v1`)).id, info.id, 'the tag names the same image')
    const pushed: string[] = []
    const digest = await engine.pushImage(`${repo}:v1`, (l) => {
      pushed.push(l)
    })
    t.match(digest, /^sha256:[0-9a-f]{64}$/, 'the manifest digest')
    t.same(
      (await engine.listImages(repo)).map((i) => i.id),
      [info.id],
      'listImages by repository',
    )
    await engine.removeImage(`${repo}:v1`, { force: true })
    await refused(t, engine.inspectImage(`${repo}:v1`), 'not_found', 'the tag is gone')
    await engine.pullImage(`${repo}:v1`)
    t.equal((await engine.inspectImage(`${repo}:v1`)).id, info.id, 'pulled back, the same image')
    await refused(t, engine.pullImage(`${repo}:nope`), 'not_found', 'a tag the registry has not')
  })

  t.test(`${name}: a build without a Dockerfile, or from an unknown image, fails`, async (t) => {
    const { engine } = await factory.create(t)
    const outcome = (p: Promise<{ error?: string }>) =>
      p.then(
        (r) => r.error,
        (err: Error) => err.message,
      )
    t.ok(await outcome(engine.buildImage(tarOf({ README: 'x' }), { tag: `wharf-test-${unique()}:1` })), 'no Dockerfile')
    t.ok(await outcome(engine.buildImage(tarOf({ Dockerfile: `FROM wharf-none-${unique()}:1\n` }), { tag: `wharf-test-${unique()}:1` })), 'an unknown base')
  })

  t.test(`${name}: a container: create, events, start, attach, exit, removal`, async (t) => {
    const { engine, image } = await factory.create(t)
    const ns = unique()
    const labels = { 'wharf.namespace': ns, 'wharf.test': 'true' }
    const seen: ContainerEvent[] = []
    const feed = await engine.containerEvents(
      { labels: { 'wharf.namespace': ns } },
      (e) => seen.push(e),
      () => {},
    )
    t.teardown(() => feed.close())
    const id = await engine.createContainer({
      Image: image,
      Cmd: ['sh', '-c', 'sleep 1; printf "hello\\n"; exit 3'],
      Labels: labels,
      AttachStdout: true,
      AttachStderr: true,
      HostConfig: { AutoRemove: true },
    })
    t.teardown(() => engine.removeContainer(id, { force: true }).catch(() => {}))
    t.same(
      (await engine.listContainers({ labels: { 'wharf.namespace': ns } })).map((c) => c.id),
      [],
      'not running yet',
    )
    t.same(
      (await engine.listContainers({ labels: { 'wharf.namespace': ns }, all: true })).map((c) => c.id),
      [id],
      'listed with all',
    )
    const { exited } = await engine.waitRemoved(id)
    const out = await engine.attachContainer(id, { stdin: false })
    const output = drain(out)
    await engine.startContainer(id)
    const running = await engine.inspectContainer(id)
    t.equal(running.labels['wharf.namespace'], ns)
    t.equal(running.tty, false)
    factory.ran(engine, id, 'hello\n', 3)
    t.equal(await exited, 3, 'the exit code, once removed')
    t.same(frames(await output), [[1, 'hello\n']], 'stdout, framed')
    await until('the destroy event', async () => seen.some((e) => e.action === 'destroy'), 10_000)
    const actions = seen.filter((e) => e.id === id).map((e) => e.action)
    t.same(
      actions.filter((a) => ['create', 'start', 'die', 'destroy'].includes(a)),
      ['create', 'start', 'die', 'destroy'],
    )
    const die = seen.find((e) => e.action === 'die')!
    t.equal(die.attributes.exitCode, '3')
    t.equal(die.attributes['wharf.namespace'], ns, 'events carry the labels')
    t.ok(die.time > 1_600_000_000, 'engine time in seconds')
    await refused(t, engine.inspectContainer(id), 'not_found', 'removed')
  })

  t.test(`${name}: a running container is not removed without force; logs with timestamps`, async (t) => {
    const { engine, image } = await factory.create(t)
    const ns = unique()
    const id = await engine.createContainer({
      Image: image,
      Cmd: ['sh', '-c', 'printf "one\\n"; sleep 60'],
      Labels: { 'wharf.namespace': ns, 'wharf.test': 'true' },
    })
    t.teardown(() => engine.removeContainer(id, { force: true }).catch(() => {}))
    await engine.startContainer(id)
    factory.ran(engine, id, 'one\n', -1)
    t.same(
      (await engine.listContainers({ labels: { 'wharf.namespace': ns } })).map((c) => c.state),
      ['running'],
    )
    await refused(t, engine.removeContainer(id), 'conflict', 'running: conflict')
    const logs = await until('the log line', async () => {
      const got = frames(await drain(await engine.containerLogs(id, { follow: false })))
      return got.length ? got : undefined
    })
    t.equal(logs[0]![0], 1)
    t.match(logs[0]![1], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z one\n$/, 'timestamped')
    const later = frames(await drain(await engine.containerLogs(id, { follow: false, since: `${Math.floor(Date.now() / 1000) + 5}.000000000` })))
    t.same(later, [], 'nothing since a later time')
    await engine.killContainer(id, 'SIGKILL')
    await until('killed', async () => ((await engine.inspectContainer(id)).running ? undefined : true))
    await refused(t, engine.killContainer(id, 'SIGTERM'), 'conflict', 'kill of a stopped container: conflict')
    await engine.removeContainer(id, { force: true })
    await refused(t, engine.inspectContainer(id), 'not_found', 'refused')
  })

  t.test(`${name}: Swarm services: create, conflict, update with its version, tasks, remove`, async (t) => {
    const { engine, image } = await factory.create(t)
    const ns = unique()
    const name = `wt-${ns}`
    const labels = { 'wharf.namespace': ns, 'wharf.test': 'true' }
    const spec = {
      Name: name,
      Labels: labels,
      TaskTemplate: {
        ContainerSpec: { Image: image, Command: ['sleep', '3600'], Labels: labels },
        RestartPolicy: { Condition: 'on-failure' as const, Delay: 1e9 },
      },
      Mode: { Replicated: { Replicas: 2 } },
    }
    const id = await engine.createService(spec)
    t.teardown(() => engine.removeService(id).catch(() => {}))
    await refused(t, engine.createService(spec), 'conflict', 'the name is taken')
    const listed = await engine.listServices({ 'wharf.namespace': ns })
    t.same(
      listed.map((s) => s.id),
      [id],
    )
    t.equal(listed[0]!.spec.Name, name)
    t.same(listed[0]!.spec.Labels, labels)
    t.same(await engine.listServices({ 'wharf.namespace': `${ns}-other` }), [], 'the label filter')
    const info = await engine.inspectService(name)
    t.equal(info.id, id, 'by name')
    const running = await until('two running tasks', async () => {
      const tasks = (await engine.listTasks(id)).filter((x) => x.desiredState === 'running' && x.state === 'running')
      return tasks.length === 2 ? tasks : undefined
    })
    t.ok(
      running.every((x) => x.spec.ContainerSpec?.Labels?.['wharf.namespace'] === ns),
      'tasks carry the template',
    )
    const containers = await until('two task containers', async () => {
      const list = await engine.listContainers({ labels: { 'wharf.namespace': ns } })
      return list.length === 2 ? list : undefined
    })
    t.ok(
      containers.every((c) => /^wt-.*\.[12]\.[a-z0-9]+$/.test(c.labels['com.docker.swarm.task.name'] ?? '')),
      'containers named by slot',
    )
    // A task names its container (once its node reported it) and its slot; a container names its task.
    const named = await until('the tasks name their containers', async () => {
      const tasks = await Promise.all(containers.map((c) => engine.inspectTask(c.labels['com.docker.swarm.task.id']!)))
      return tasks.every((x) => x.containerId) ? tasks : undefined
    })
    t.same(named.map((x) => x.containerId).sort(), containers.map((c) => c.id).sort(), 'inspectTask: each task names its own container')
    t.same(named.map((x) => x.slot).sort(), [1, 2], 'and its slot')
    t.ok(
      named.every((x) => x.serviceId === id),
      'and its service',
    )
    await refused(t, engine.inspectTask('nosuchtask0000000000000000'), 'not_found', 'inspectTask of no task')
    await refused(t, engine.updateService(id, info.version - 1, { ...spec, Mode: { Replicated: { Replicas: 1 } } }), 'conflict', 'a stale version')
    await engine.updateService(id, info.version, { ...spec, Labels: { ...labels, 'wharf.spec': 'x' }, Mode: { Replicated: { Replicas: 1 } } })
    const after = await engine.inspectService(id)
    t.ok(after.version > info.version, 'the version moved on')
    t.equal(after.spec.Labels?.['wharf.spec'], 'x')
    t.equal(after.spec.Mode?.Replicated?.Replicas, 1)
    await until('scaled to one container', async () => (await engine.listContainers({ labels: { 'wharf.namespace': ns } })).length === 1)
    await engine.removeService(name)
    await refused(t, engine.inspectService(id), 'not_found', 'refused')
    t.same(await engine.listServices({ 'wharf.namespace': ns }), [])
  })

  t.test(`${name}: info says Swarm is active`, async (t) => {
    const { engine } = await factory.create(t)
    const info = await engine.info()
    t.ok(info.version)
    t.equal(info.swarm?.state, 'active')
  })

  t.test(`${name}: lists the swarm's nodes, one of them the manager it is`, async (t) => {
    const { engine } = await factory.create(t)
    const nodes = await engine.listNodes()
    t.ok(nodes.length >= 1)
    const self = nodes.find((n) => n.role === 'manager' && n.leader)
    t.ok(self, 'a leading manager')
    t.match(self?.address, /^\d+\.\d+\.\d+\.\d+$/, 'with an IPv4 address')
    t.ok(nodes.every((n) => ['ready', 'down', 'unknown', 'disconnected'].includes(n.state)))
  })
}
