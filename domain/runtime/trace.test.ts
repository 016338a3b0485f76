import t from 'tap'
import { buildTrace, formatTrace, progressText, type TraceEvent, type TraceInput } from './trace.js'

const T0 = Date.parse('2026-12-07T05:00:00.000Z')
let seq = 0

/** An event `ms` after T0, the next seq. */
function ev(type: string, data: Record<string, unknown>, ms: number, correlationId = 'cmd', stream = 'app.shop'): TraceEvent {
  seq++
  return { seq, id: `id-${seq}`, type, stream, occurredAt: new Date(T0 + ms).toISOString(), correlationId, data: { app: 'shop', ...data } }
}
const web = (c: string, release: number, port: number) => ({ container: c, release, host: '127.0.0.1', port })
const input = (chain: TraceEvent[], after: TraceEvent[], more: Partial<TraceInput> = {}): TraceInput => ({
  app: 'shop',
  correlationId: 'cmd',
  chain,
  after,
  servedBefore: [web('old1', 4, 30001)],
  builtBefore: true,
  ...more,
})

t.beforeEach(() => {
  seq = 0
})

t.test('config:set: served once the deploy completed and the router serves only the new release', async (t) => {
  const chain = [ev('ConfigSet', { values: { X: '[redacted]' } }, 0), ev('ReleaseCreated', { version: 5, image: 'img', summary: 'set X' }, 5)]
  const deploy = ev('DeployStarted', { release: 5, formation: { web: 1 } }, 20)
  const started = ev('ContainerStarted', { type: 'web', release: 5, container: 'new1', host: '127.0.0.1', port: 30002, number: 1 }, 900)
  const both = ev('RouteServed', { servers: [web('new1', 5, 30002), web('old1', 4, 30001)] }, 950, 'r1', 'platform.router')
  const completed = ev('DeployCompleted', { release: 5 }, 1000)
  const alone = ev('RouteServed', { servers: [web('new1', 5, 30002)] }, 1200, 'r2', 'platform.router')
  // Given the events up to the completion: the old container is still served.
  let trace = buildTrace(input(chain, [deploy, started, both, completed]))
  t.equal(trace.status, 'deploying', 'old and new served: not yet')
  t.equal(trace.reason, 'waiting for the router to serve the new containers')
  t.same(trace.progress, [{ type: 'web', started: 1, wanted: 1 }])
  t.equal(progressText(trace), 'v5: web 1/1 started')
  trace = buildTrace(input(chain, [deploy, started, both, completed, alone]))
  t.equal(trace.status, 'served')
  t.equal(trace.release, 5)
  t.same(
    trace.steps.map((s) => [s.type, s.offsetMs, s.stepMs]),
    [
      ['ConfigSet', 0, 0],
      ['ReleaseCreated', 5, 5],
      ['DeployStarted', 20, 15],
      ['ContainerStarted', 900, 880],
      ['DeployCompleted', 1000, 100],
      ['RouteServed', 1200, 200],
    ],
  )
  t.equal(trace.totalMs, 1200)
  t.match(formatTrace(trace), /^shop v5: served 1\.20 s after the first event\n/)
  t.match(formatTrace(trace), /\+1\.20 s {2}\(0\.20 s\) {2}RouteServed +the router serves 1 container of v5$/m)
})

t.test('a failed deploy: failed with the reason; a failed build too', async (t) => {
  const chain = [ev('ReleaseCreated', { version: 5, image: 'img', summary: 'set X' }, 0)]
  const deploy = ev('DeployStarted', { release: 5, formation: { web: 2 } }, 10)
  const failed = ev('DeployFailed', { release: 5, reason: 'web: not running after 60 s', rolledBackTo: 4 }, 60_000)
  const trace = buildTrace(input(chain, [deploy, failed]))
  t.equal(trace.status, 'failed')
  t.equal(trace.reason, 'web: not running after 60 s (v4 keeps running)')
  t.same(trace.progress, [{ type: 'web', started: 0, wanted: 2 }])
  const push = [
    ev('PushReceived', { sha: 'a'.repeat(40), user: 'alice' }, 0, 'cmd', 'build.b1'),
    ev('BuildFailed', { reason: 'the build failed: x' }, 10, 'cmd', 'build.b1'),
  ]
  const b = buildTrace(input(push, []))
  t.equal(b.status, 'failed')
  t.equal(b.build, 'b1')
  t.equal(b.reason, 'the build failed: x')
})

t.test('no deploy: no build yet, nothing recorded, a change that runs nothing; pending while the scheduler has not started', async (t) => {
  t.equal(buildTrace(input([ev('FormationScaled', { formation: { web: 2 } }, 0)], [], { builtBefore: false })).status, 'no-deploy')
  t.equal(
    buildTrace(input([ev('ReleaseCreated', { version: 2, summary: 'set X' }, 0)], [], { builtBefore: false })).status,
    'no-deploy',
    'a release without an image',
  )
  t.equal(buildTrace(input([], [])).status, 'no-deploy')
  t.equal(buildTrace(input([ev('DomainAdded', { domain: 'x.example' }, 0)], [])).status, 'no-deploy')
  t.equal(buildTrace(input([ev('FormationScaled', { formation: { web: 2 } }, 0)], [])).status, 'pending')
  const push = [ev('PushReceived', { sha: 'a'.repeat(40), user: 'alice' }, 0, 'cmd', 'build.b1'), ev('BuildStarted', { kind: 'git' }, 1, 'cmd', 'build.b1')]
  t.match(buildTrace(input(push, [], { builtBefore: false })), { status: 'pending', reason: 'building', build: 'b1' }, 'a first build under way')
  const built = [...push, ev('BuildSucceeded', { image: 'img' }, 2000, 'cmd', 'build.b1')]
  t.match(buildTrace(input(built, [], { builtBefore: false })), { status: 'pending', reason: 'waiting for the release' })
})

t.test('scale to 0: served once the router serves nothing; a worker-only app is served at completion', async (t) => {
  const chain = [ev('FormationScaled', { formation: { web: 0 } }, 0)]
  const deploy = ev('DeployStarted', { release: 4, formation: { web: 0 } }, 10)
  const completed = ev('DeployCompleted', { release: 4 }, 500)
  t.equal(buildTrace(input(chain, [deploy, completed])).status, 'deploying', 'the old container is still served')
  const none = ev('RouteServed', { servers: [] }, 700, 'r', 'platform.router')
  const trace = buildTrace(input(chain, [deploy, completed, none]))
  t.equal(trace.status, 'served')
  t.equal(trace.steps.at(-1)?.detail, 'the router serves no container')
  seq = 0
  const worker = [ev('FormationScaled', { formation: { worker: 1 } }, 0)]
  const d2 = ev('DeployStarted', { release: 4, formation: { worker: 1 } }, 10)
  const c2 = ev('ContainerStarted', { type: 'worker', release: 4, container: 'w1', host: '127.0.0.1', number: 1 }, 300)
  const done2 = ev('DeployCompleted', { release: 4 }, 400)
  const w = buildTrace(input(worker, [d2, c2, done2], { servedBefore: [] }))
  t.equal(w.status, 'served', 'no web process: nothing to route')
  t.equal(w.steps.at(-1)?.type, 'DeployCompleted')
})

t.test('scale up within a release: the old containers count; a restart: only the new ones do', async (t) => {
  const before = [web('a', 4, 30001), web('b', 4, 30002)]
  const scale = [ev('FormationScaled', { formation: { web: 3 } }, 0)]
  const deploy = ev('DeployStarted', { release: 4, formation: { web: 3 } }, 10)
  const c = ev('ContainerStarted', { type: 'web', release: 4, container: 'c', host: '127.0.0.1', port: 30003 }, 300)
  const done = ev('DeployCompleted', { release: 4 }, 400)
  const three = ev('RouteServed', { servers: [...before, web('c', 4, 30003)] }, 450, 'r', 'platform.router')
  t.equal(buildTrace(input(scale, [deploy, c, done], { servedBefore: before })).status, 'deploying')
  t.equal(buildTrace(input(scale, [deploy, c, done, three], { servedBefore: before })).status, 'served')

  seq = 0
  const restart = [ev('RestartRequested', {}, 0)]
  const d = ev('DeployStarted', { release: 4, formation: { web: 2 } }, 10)
  const a2 = ev('ContainerStarted', { type: 'web', release: 4, container: 'a2', host: '127.0.0.1', port: 30011 }, 300)
  const stopA = ev('ContainerStopped', { type: 'web', container: 'a' }, 350)
  const mixed = ev('RouteServed', { servers: [web('a2', 4, 30011), web('b', 4, 30002)] }, 360, 'r', 'platform.router')
  const completed = ev('DeployCompleted', { release: 4 }, 400)
  t.equal(buildTrace(input(restart, [d, a2, stopA, mixed, completed], { servedBefore: before })).status, 'deploying', 'b is an old container')
  const b2 = ev('ContainerStarted', { type: 'web', release: 4, container: 'b2', host: '127.0.0.1', port: 30012 }, 500)
  const fresh = ev('RouteServed', { servers: [web('a2', 4, 30011), web('b2', 4, 30012)] }, 600, 'r', 'platform.router')
  t.equal(buildTrace(input(restart, [d, a2, stopA, mixed, completed, b2, fresh], { servedBefore: before })).status, 'served')
})

t.test('a vN ref finds the deploy of its release under another correlation; a newer release supersedes', async (t) => {
  const chain = [ev('ReleaseCreated', { version: 6, image: 'img', summary: 'rollback' }, 0)]
  const deploy = ev('DeployStarted', { release: 6, formation: { web: 1 } }, 10, 'scheduler:shop')
  const c = ev('ContainerStarted', { type: 'web', release: 7, container: 'n', host: '127.0.0.1', port: 30005 }, 300, 'n')
  const done = ev('DeployCompleted', { release: 7 }, 400, 'other')
  const served = ev('RouteServed', { servers: [web('n', 7, 30005)] }, 450, 'r', 'platform.router')
  const trace = buildTrace(input(chain, [deploy, c, done, served], { release: 6 }))
  t.equal(trace.status, 'served', 'v7 superseded v6: every request reaches a newer release')
})

t.test('progress: web containers of the release kept by a scale-up count; a restart counts only new ones', async (t) => {
  const before = [web('a', 4, 30001), web('b', 4, 30002)]
  const deploy = ev('DeployStarted', { release: 4, formation: { web: 3 } }, 10)
  const c = ev('ContainerStarted', { type: 'web', release: 4, container: 'c', host: '127.0.0.1', port: 30003 }, 300)
  t.same(buildTrace(input([ev('FormationScaled', { formation: { web: 3 } }, 0)], [deploy, c], { servedBefore: before })).progress, [
    { type: 'web', started: 3, wanted: 3 },
  ])
  seq = 0
  const restart = [ev('RestartRequested', { type: 'web' }, 0)]
  const d = ev('DeployStarted', { release: 4, formation: { web: 2 } }, 10)
  const a2 = ev('ContainerStarted', { type: 'web', release: 4, container: 'a2', host: '127.0.0.1', port: 30011 }, 300)
  t.same(buildTrace(input(restart, [d, a2], { servedBefore: before })).progress, [{ type: 'web', started: 1, wanted: 2 }])
})
