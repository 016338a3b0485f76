import t from 'tap'
import { wharfCatalogue } from '../catalogue.js'
import { fold } from '../decider.js'
import { history, when } from '../given.js'
import { runtimeDecider, type Announcement, type RuntimeCommand } from './decider.js'

const stream = 'runtime.shop'
const given = (...events: [string, unknown][]) => history(stream, events)
const decide = (events: [string, unknown][], command: RuntimeCommand) => when(runtimeDecider, given(...events), command)
const announce = (events: [string, unknown][], announcement: Announcement) => decide(events, { type: 'Announce', announcement })

const identity = { app: 'shop', type: 'web', release: 3, number: 1 }
const started: Announcement = { kind: 'started', container: 'c1', identity, host: '127.0.0.1', port: 32000 }
const c1Started: [string, unknown] = ['ContainerStarted', { app: 'shop', type: 'web', release: 3, container: 'c1', host: '127.0.0.1', port: 32000, number: 1 }]
const c1Stopping: [string, unknown] = ['ContainerStopping', { app: 'shop', type: 'web', container: 'c1' }]
const c1Stopped: [string, unknown] = ['ContainerStopped', { app: 'shop', type: 'web', container: 'c1' }]

t.test('Announce: given the runtime stream, when an announcement, then events', async (t) => {
  t.same(announce([], started), [c1Started])
  t.same(announce([], { kind: 'stopped', container: 'c1', identity }), [], 'never started: no stop')
  t.same(announce([], { kind: 'crashed', container: 'c1', identity, exitCode: 1, reason: 'x' }), [], 'never started: no crash')
  t.equal(
    fold(runtimeDecider, given(['DeployStarted', { app: 'shop', release: 3, formation: { web: 1 } }], c1Started)).version,
    2,
    'the state knows the version it was folded to',
  )
  t.same(announce([c1Started], started), [], 'never twice')
  t.same(announce([c1Started], { kind: 'stopping', container: 'c1', identity }), [c1Stopping])
  t.same(announce([c1Started, c1Stopping], { kind: 'stopping', container: 'c1', identity }), [], 'drained once')
  t.same(announce([c1Started, c1Stopping], { kind: 'crashed', container: 'c1', identity, exitCode: 137, reason: 'x' }), [
    ['ContainerCrashed', { app: 'shop', type: 'web', container: 'c1', exitCode: 137, reason: 'x' }],
  ])
  t.same(announce([c1Started], { kind: 'stopped', container: 'c1', identity }), [c1Stopped], 'stopped without a drain')
  t.same(announce([c1Started, c1Stopping, c1Stopped], { kind: 'stopped', container: 'c1', identity }), [], 'ended once')
  t.same(announce([c1Started, c1Stopping, c1Stopped], { kind: 'crashed', container: 'c1', identity, exitCode: 1, reason: 'x' }), [], 'no crash after a stop')
  t.same(announce([c1Started, c1Stopping, c1Stopped], { kind: 'stopping', container: 'c1', identity }), [], 'no drain after a stop')
  t.same(announce([c1Started, c1Stopping, c1Stopped], started), [], 'a gone container does not start again')
  t.same(
    announce([c1Started], { kind: 'started', container: 'c2', identity: { app: 'shop', type: 'worker', release: 3 }, host: '127.0.0.1' }),
    [['ContainerStarted', { app: 'shop', type: 'worker', release: 3, container: 'c2', host: '127.0.0.1' }]],
    'no port, no number',
  )
  t.same(
    announce([c1Started], { kind: 'crashed', container: 'c1', identity, exitCode: 1, reason: 'y'.repeat(2000) }),
    [['ContainerCrashed', { app: 'shop', type: 'web', container: 'c1', exitCode: 1, reason: 'y'.repeat(1024) }]],
    'the reason is cut to the schema',
  )
})

t.test('folding does not change an earlier state (runCommand keeps the state a decision was made on)', async (t) => {
  const before = fold(runtimeDecider, given(c1Started))
  runtimeDecider.evolve(before, given(c1Started, c1Stopped)[1]!)
  t.equal(before.containers.get('c1'), 'up')
})

const deployStarted = (release: number, formation: Record<string, number> = { web: 1 }): [string, unknown] => [
  'DeployStarted',
  { app: 'shop', release, formation },
]
const start = (release: number, formation: Record<string, number> = { web: 1 }): RuntimeCommand => ({ type: 'StartDeploy', app: 'shop', release, formation })

t.test('StartDeploy: once per release and formation while it runs', async (t) => {
  t.same(decide([], start(3)), [deployStarted(3)])
  t.same(decide([deployStarted(3)], start(3)), [], 'the same deploy, started with no outcome (a retried reconcile): nothing')
  t.same(decide([deployStarted(3)], start(3, { web: 3 })), [deployStarted(3, { web: 3 })], 'another formation of the release')
  t.same(decide([deployStarted(3)], start(4)), [deployStarted(4)], 'another release')
  t.same(decide([deployStarted(3), ['DeployCompleted', { app: 'shop', release: 3 }]], start(3)), [deployStarted(3)], 'again after its outcome (ps:restart)')
  t.same(decide([deployStarted(3), c1Started], start(3)), [], 'container events do not end a deploy')
})

t.test('CompleteDeploy and FailDeploy: the outcome of the running deploy, once', async (t) => {
  const complete: RuntimeCommand = { type: 'CompleteDeploy', app: 'shop', release: 3 }
  const fail: RuntimeCommand = { type: 'FailDeploy', app: 'shop', release: 3, reason: 'web: unhealthy', rolledBackTo: 2 }
  t.same(decide([deployStarted(3)], complete), [['DeployCompleted', { app: 'shop', release: 3 }]])
  t.same(decide([deployStarted(3)], fail), [['DeployFailed', { app: 'shop', release: 3, reason: 'web: unhealthy', rolledBackTo: 2 }]])
  t.same(
    decide([deployStarted(3)], { type: 'FailDeploy', app: 'shop', release: 3, reason: 'z'.repeat(3000) }),
    [['DeployFailed', { app: 'shop', release: 3, reason: 'z'.repeat(2048) }]],
    'no rollback; the reason is cut',
  )
  t.same(decide([], complete), [], 'no deploy started')
  t.same(decide([deployStarted(3), ['DeployCompleted', { app: 'shop', release: 3 }]], complete), [], 'completed once')
  t.same(decide([deployStarted(3), ['DeployFailed', { app: 'shop', release: 3, reason: 'x' }]], complete), [], 'no completion after a failure')
  t.same(decide([deployStarted(3), ['DeployCompleted', { app: 'shop', release: 3 }]], fail), [], 'no failure after a completion')
  t.same(decide([deployStarted(3), deployStarted(4)], fail), [], 'a deploy superseded by the next one tells nothing')
})

t.test('the state keeps the DeployStarted a scheduler resumes watching', async (t) => {
  const events = given(deployStarted(3, { web: 2 }))
  t.same(fold(runtimeDecider, events).deploy, {
    status: 'started',
    release: 3,
    formation: { web: 2 },
    event: { id: events[0]!.id, correlationId: events[0]!.correlationId, occurredAt: events[0]!.occurredAt },
  })
  t.same(fold(runtimeDecider, given(deployStarted(3), ['DeployFailed', { app: 'shop', release: 3, reason: 'x' }])).deploy, { status: 'failed', release: 3 })
})

t.test('every event the decider makes is valid in the catalogue', async (t) => {
  const catalogue = wharfCatalogue()
  const events: [string, unknown][] = [
    ...decide([], start(3, { web: 1, worker: 0 })),
    ...decide([deployStarted(3)], { type: 'CompleteDeploy', app: 'shop', release: 3 }),
    ...decide([deployStarted(3)], { type: 'FailDeploy', app: 'shop', release: 3, reason: 'z'.repeat(3000), rolledBackTo: 2 }),
    ...announce([], started),
    ...announce([c1Started], { kind: 'stopping', container: 'c1', identity }),
    ...announce([c1Started], { kind: 'stopped', container: 'c1', identity }),
    ...announce([c1Started], { kind: 'crashed', container: 'c1', identity, exitCode: 137, reason: 'y'.repeat(2000) }),
  ]
  t.equal(events.length, 7)
  for (const [type, data] of events) t.doesNotThrow(() => catalogue.validate({ type, version: 1, stream, data }), type)
})
