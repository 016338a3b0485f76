import t from 'tap'
import type { RecordedEvent } from '../../events/index.js'
import { platformLine, ProcessNumbers } from './platform.js'

let seq = 0
const ev = (type: string, data: Record<string, unknown>, actor = 'user:alice'): RecordedEvent => ({
  id: `id${++seq}`,
  seq,
  type,
  version: 1,
  stream: 'app.shop',
  occurredAt: '2024-01-01T00:00:00.000Z',
  actor,
  causationId: null,
  correlationId: 'c',
  data: { app: 'shop', ...data },
})

t.test('platform events as log lines, Heroku style', async (t) => {
  const n = new ProcessNumbers()
  const text = (e: RecordedEvent) => platformLine(e, n)?.text
  t.equal(text(ev('ReleaseCreated', { version: 3, by: 'alice', summary: 'alice set FOO' })), 'release v3 created by alice: alice set FOO')
  t.equal(text(ev('FormationScaled', { formation: { web: 2, worker: 1 } })), 'scaled to web=2 worker=1 by alice')
  t.equal(text(ev('DeployStarted', { release: 3, formation: { web: 2 } }, 'system:scheduler')), 'deploy of v3 started (web=2)')
  t.equal(text(ev('DeployFailed', { release: 4, reason: 'unhealthy', rolledBackTo: 3 })), 'deploy of v4 failed: unhealthy; rolled back to v3')
  const c = 'ab'.repeat(32)
  t.equal(
    text(ev('ContainerCrashed', { type: 'web', container: c, exitCode: 1 })),
    'web (abababababab) crashed: exit code 1',
    'a crash of a container not seen starting',
  )
  t.equal(text(ev('ContainerStarted', { type: 'web', container: c, release: 3, number: 2, host: 'h' })), 'web.2 started (v3)')
  t.equal(text(ev('ContainerCrashed', { type: 'web', container: c, exitCode: 137, reason: 'out of memory' })), 'web.2 crashed: exit code 137 (out of memory)')
  t.equal(text(ev('ContainerStopped', { type: 'web', container: c })), 'web.2 stopped')
  t.equal(text(ev('DrainAdded', { id: 'd1', url: 'syslog://x:1' })), 'log drain d1 added by alice')
  t.same(platformLine(ev('ConfigSet', { values: { A: '1' } })), undefined, 'config changes show as their release')
  t.same(platformLine({ ...ev('UserRegistered', {}), data: { username: 'bob' } }), undefined, 'no app, no line')
})

t.test('process numbers are bounded', async (t) => {
  const n = new ProcessNumbers(2)
  n.set('a', 1).set('b', 2).set('c', 3)
  t.same([...n.keys()], ['b', 'c'])
})
