import t from 'tap'
import { engineContract } from './engine.contract.js'
import { MemoryEngine } from './memory.js'

await engineContract(t, 'MemoryEngine', {
  async create() {
    return { engine: new MemoryEngine({ images: ['busybox:latest'], registries: ['127.0.0.1:5000'] }), image: 'busybox:latest', registry: '127.0.0.1:5000' }
  },
  ran(engine, id, out, code) {
    const m = engine as MemoryEngine
    m.write(id, out)
    if (code >= 0) m.exit(id, code)
  },
})

t.test('MemoryEngine: an update whose image cannot be found is rolled back (FailureAction rollback)', async (t) => {
  const engine = new MemoryEngine({ images: ['busybox:latest'] })
  const spec = {
    Name: 's',
    Labels: { v: '1' },
    TaskTemplate: { ContainerSpec: { Image: 'busybox:latest' } },
    Mode: { Replicated: { Replicas: 1 } },
    UpdateConfig: { FailureAction: 'rollback' as const },
  }
  const id = await engine.createService(spec)
  const before = await engine.inspectService(id)
  await engine.updateService(id, before.version, { ...spec, Labels: { v: '2' }, TaskTemplate: { ContainerSpec: { Image: 'nope:1' } } })
  const after = await engine.inspectService(id)
  t.same(after.spec.Labels, { v: '1' }, 'back on the previous spec')
  t.equal(after.updateStatus?.state, 'rollback_completed')
  const tasks = await engine.listTasks(id)
  t.ok(
    tasks.some((x) => x.state === 'rejected' && /No such image: nope:1/.test(x.err ?? '')),
    'the new task was rejected',
  )
  t.equal(tasks.filter((x) => x.state === 'running').length, 1, 'the old task runs on')
})

t.test('MemoryEngine: a task that fails is restarted in its slot (on-failure)', async (t) => {
  const engine = new MemoryEngine({ images: ['busybox:latest'] })
  await engine.createService({
    Name: 's',
    TaskTemplate: { ContainerSpec: { Image: 'busybox:latest' }, RestartPolicy: { Condition: 'on-failure' } },
    Mode: { Replicated: { Replicas: 1 } },
  })
  const [first] = engine.containersOf('s')
  engine.exit(first!, 2)
  const [second] = engine.containersOf('s')
  t.not(second, first, 'a new container')
  const tasks = await engine.listTasks('s')
  t.same(
    tasks.map((x) => x.state),
    ['failed', 'running'],
  )
  t.match(tasks[0]!.err, /non-zero exit \(2\)/)
})

t.test("MemoryEngine: what is written to an attached stdin is the container's input, not its output", async (t) => {
  const engine = new MemoryEngine({ images: ['busybox:latest'] })
  const id = await engine.createContainer({ Image: 'busybox:latest', Cmd: ['cat'], OpenStdin: true, Tty: true })
  const io = await engine.attachContainer(id, { stdin: true })
  const out: Buffer[] = []
  io.on('data', (b: Buffer) => out.push(b))
  await engine.startContainer(id)
  io.write('typed\n')
  engine.write(id, 'printed\n')
  engine.exit(id, 0)
  await new Promise((r) => io.once('end', r))
  t.equal(engine.stdinOf(id), 'typed\n')
  t.equal(Buffer.concat(out).toString(), 'printed\n', 'a TTY: raw, not framed')
})
