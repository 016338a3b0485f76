import t from 'tap'
import { EngineError, type ServiceInfo, type TaskInfo } from './engine.js'
import { MemoryEngine } from './memory.js'
import { TASK_ID_LABEL, TaskOrigins } from './origin.js'

const IMAGE = 'busybox:latest'

t.test('a task container: its task and service, asked once; a forged or missing task id: none', async (t) => {
  const engine = new MemoryEngine({ images: [IMAGE] })
  await engine.createService({ Name: 'svc', Labels: { a: '1' }, TaskTemplate: { ContainerSpec: { Image: IMAGE } } })
  const [id] = engine.containersOf('svc')
  const labels = (await engine.inspectContainer(id!)).labels
  const origins = new TaskOrigins({ swarm: engine })
  const origin = await origins.of(id!, labels)
  t.equal(origin?.task.containerId, id)
  t.equal(origin?.service.spec.Name, 'svc')
  await origins.of(id!, labels)
  t.equal(origins.asked, 1, 'remembered')

  const plain = await engine.createContainer({ Image: IMAGE, Labels: { ...labels } })
  t.equal(await origins.of(plain, labels), undefined, "a container with another container's task id")
  t.equal(await origins.of('c2', {}), undefined, 'no task id')
  t.equal(await origins.of('c3', { [TASK_ID_LABEL]: 'nosuchtask' }), undefined, 'a task the swarm does not have')
  t.equal(await origins.of('c4', { [TASK_ID_LABEL]: '../../x' }), undefined, 'not a task id at all')
})

t.test('a task that names no container yet is asked again; an engine failure is not remembered', async (t) => {
  let calls = 0
  let fail = true
  const task: TaskInfo = { id: 'task1', serviceId: 's1', desiredState: 'running', state: 'starting', timestamp: '', spec: {} }
  const service: ServiceInfo = { id: 's1', version: 1, spec: { Name: 's' } }
  const swarm = {
    inspectTask: async () => {
      calls++
      if (fail) {
        fail = false
        throw new EngineError('unavailable', 'the manager is busy')
      }
      return calls >= 4 ? { ...task, containerId: 'c1' } : task
    },
    inspectService: async () => service,
  }
  const origins = new TaskOrigins({ swarm, pollMs: 5 })
  await t.rejects(origins.of('c1', { [TASK_ID_LABEL]: 'task1' }), /busy/)
  const origin = await origins.of('c1', { [TASK_ID_LABEL]: 'task1' })
  t.equal(origin?.task.containerId, 'c1', 'found once the task named it')
  t.equal(calls, 4)
  const late = new TaskOrigins({ swarm: { ...swarm, inspectTask: async () => task }, pollMs: 5, settleMs: 30 })
  t.equal(await late.of('c1', { [TASK_ID_LABEL]: 'task1' }), undefined, 'a task that never names it: none, after the settle time')
})
