import t from 'tap'
import type { ContainerEngine, NodeInfo, TaskInfo } from '../../core/engine/engine.js'
import { LABELS } from '../../domain/runtime/labels.js'
import { NUDGE_LABEL, nudgeUpdate, serviceProgress } from './swarm.js'

const NOW = Date.parse('2026-12-07T12:00:10Z')
const OLD = { ContainerSpec: { Image: 'x', Labels: { [LABELS.release]: '3' } } }
const NEW = { ContainerSpec: { Image: 'x', Labels: { [LABELS.release]: '4' } } }
const node = (id: string, state: string): NodeInfo => ({
  id,
  hostname: id,
  role: 'worker',
  state,
  availability: 'active',
  address: `192.168.1.${id.slice(1)}`,
  labels: {},
  leader: false,
})
const task = (id: string, spec: object, nodeId: string, desiredState = 'running', state = 'running'): TaskInfo => ({
  id,
  serviceId: 's',
  desiredState,
  state,
  timestamp: '2026-12-07T12:00:00Z',
  spec,
  nodeId,
})

/** Just what serviceProgress reads of an engine. */
function engine(tasks: TaskInfo[], nodes: NodeInfo[]): ContainerEngine {
  return {
    inspectService: async () => ({
      id: 's',
      version: 1,
      spec: { Name: 'web', Labels: { [LABELS.spec]: 'h4' }, TaskTemplate: NEW, Mode: { Replicated: { Replicas: 2 } } },
    }),
    listTasks: async () => tasks,
    listNodes: async () => nodes,
  } as unknown as ContainerEngine
}

t.test('a deploy converges on the nodes left: an old task left "desired running" on a down node does not hold it', async (t) => {
  const tasks = [task('a', NEW, 'n1'), task('b', NEW, 'n2'), task('c', OLD, 'n3')]
  t.match(
    await serviceProgress(engine(tasks, [node('n1', 'ready'), node('n2', 'ready'), node('n3', 'ready')]), 'web', 'h4', {}, NOW),
    {
      state: 'converging',
    },
    'while n3 is up, its old task still runs: not yet',
  )
  t.strictSame(await serviceProgress(engine(tasks, [node('n1', 'ready'), node('n2', 'ready'), node('n3', 'down')]), 'web', 'h4', {}, NOW), {
    state: 'converged',
  })
})

t.test('a new task on a down node does not count as running', async (t) => {
  const tasks = [task('a', NEW, 'n1'), task('b', NEW, 'n3')]
  t.strictSame(await serviceProgress(engine(tasks, [node('n1', 'ready'), node('n3', 'down')]), 'web', 'h4', {}, NOW), {
    state: 'converging',
    running: 1,
    wanted: 2,
    started: 1,
    lost: 1,
  })
})

t.test(
  'a slot running two tasks of the new spec (its old and new task started again after their node was lost): not converged, the extra counted',
  async (t) => {
    const nodes = [node('n1', 'ready'), node('n2', 'ready'), node('n3', 'down')]
    const tasks = [
      task('a', NEW, 'n1'),
      task('b', NEW, 'n2'),
      task('b2', NEW, 'n1'),
      task('c', OLD, 'n3', 'shutdown'),
      task('d', NEW, 'n3', 'shutdown', 'starting'),
    ]
    t.strictSame(await serviceProgress(engine(tasks, nodes), 'web', 'h4', {}, NOW), {
      state: 'converging',
      running: 3,
      wanted: 2,
      started: 3,
      lost: 2,
      extra: 1,
    })
    t.strictSame(await serviceProgress(engine(tasks.slice(0, 2), nodes), 'web', 'h4', {}, NOW), { state: 'converged' }, 'once Swarm removed the twin')
  },
)

t.test("a nudge starts Swarm's update over: a service label changes, the task template does not", async (t) => {
  const spec = { Name: 'web', Labels: { [LABELS.spec]: 'h4' }, TaskTemplate: NEW, Mode: { Replicated: { Replicas: 2 } } }
  const updates: { version: number; spec: typeof spec }[] = []
  const docker = {
    inspectService: async () => ({ id: 's', version: 7, spec }),
    updateService: async (_name: string, version: number, next: typeof spec) => void updates.push({ version, spec: next }),
  } as unknown as ContainerEngine
  t.ok(await nudgeUpdate(docker, 'web', 1))
  t.equal(updates.length, 1)
  t.equal(updates[0]!.version, 7)
  t.strictSame(updates[0]!.spec.TaskTemplate, NEW, 'the same tasks')
  t.strictSame(updates[0]!.spec.Labels, { [LABELS.spec]: 'h4', [NUDGE_LABEL]: '1' })
})
