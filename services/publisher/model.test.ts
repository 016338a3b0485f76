import t from 'tap'
import type { RecordedEvent } from '../../events/index.js'
import { classifyDeath, decide, evolve, identityOf, initialRuntimeState, signalNumber, slotOf } from './model.js'

const labels = { 'wharf.namespace': 'wharf', 'wharf.app': 'shop', 'wharf.type': 'web', 'wharf.release': '3', 'com.docker.swarm.task.name': 'wharf-shop-web.2.rhbochtpxjroamce47ekf6wi1' }

t.test('identity from labels: app, type, release, Swarm slot', async (t) => {
  t.same(identityOf(labels), { app: 'shop', type: 'web', release: 3, number: 2 })
  t.same(identityOf({ ...labels, 'com.docker.swarm.task.name': undefined }), { app: 'shop', type: 'web', release: 3 }, 'no task: no number')
  t.equal(identityOf({ ...labels, 'wharf.release': 'x' }), undefined, 'a bad release')
  t.equal(identityOf({ ...labels, 'wharf.app': undefined }), undefined, 'no app')
  t.equal(slotOf('wharf-shop-web.mjabluxy1y4fkrohiufs4hi3v.rhbochtpxjroamce47ekf6wi1'), undefined, 'a global service has no slot')
})

t.test('signals and deaths', async (t) => {
  t.equal(signalNumber('15'), 15)
  t.equal(signalNumber('SIGTERM'), 15)
  t.equal(signalNumber('quit'), 3)
  t.equal(signalNumber(undefined), undefined)
  t.same(classifyDeath({ exitCode: 137, stopAsked: true, oom: false }), { kind: 'stopped' }, 'asked: a stop, whatever the exit code (PID 1 ignoring SIGTERM)')
  t.same(classifyDeath({ exitCode: 0, stopAsked: false, oom: false }), { kind: 'stopped' }, 'a clean exit')
  t.match(classifyDeath({ exitCode: 137, stopAsked: false, oom: false }), { kind: 'crashed', exitCode: 137, reason: 'killed by SIGKILL (exit code 137)' })
  t.match(classifyDeath({ exitCode: 2, stopAsked: false, oom: false }), { kind: 'crashed', reason: 'exited with code 2' })
  t.match(classifyDeath({ exitCode: 137, stopAsked: true, oom: true }), { kind: 'crashed', reason: /OOM/ }, 'OOM is a crash, asked or not')
})

t.test('decide: given the runtime stream, when an announcement, then events', async (t) => {
  const identity = { app: 'shop', type: 'web', release: 3, number: 1 }
  const ev = (seq: number, type: string, container: string) => ({ seq, type, data: { container } }) as unknown as RecordedEvent
  const started = { kind: 'started', container: 'c1', identity, host: '127.0.0.1', port: 32000 } as const
  const s = initialRuntimeState()
  t.same(decide(s, started), [{ type: 'ContainerStarted', data: { app: 'shop', type: 'web', release: 3, container: 'c1', host: '127.0.0.1', port: 32000, number: 1 } }])
  t.same(decide(s, { kind: 'stopped', container: 'c1', identity }), [], 'never started: no stop')
  evolve(s, ev(7, 'ContainerStarted', 'c1'))
  t.equal(s.version, 7)
  t.same(decide(s, started), [], 'never twice')
  t.same(decide(s, { kind: 'stopping', container: 'c1', identity }), [{ type: 'ContainerStopping', data: { app: 'shop', type: 'web', container: 'c1' } }])
  evolve(s, ev(9, 'ContainerStopping', 'c1'))
  t.same(decide(s, { kind: 'stopping', container: 'c1', identity }), [], 'drained once')
  t.same(decide(s, { kind: 'crashed', container: 'c1', identity, exitCode: 137, reason: 'x' }), [
    { type: 'ContainerCrashed', data: { app: 'shop', type: 'web', container: 'c1', exitCode: 137, reason: 'x' } },
  ])
  evolve(s, ev(10, 'ContainerStopped', 'c1'))
  t.same(decide(s, { kind: 'stopped', container: 'c1', identity }), [], 'ended once')
  t.same(decide(s, started), [], 'a gone container does not start again')
  t.same(decide(s, { kind: 'started', container: 'c2', identity: { app: 'shop', type: 'worker', release: 3 }, host: '127.0.0.1' }), [
    { type: 'ContainerStarted', data: { app: 'shop', type: 'worker', release: 3, container: 'c2', host: '127.0.0.1' } },
  ], 'no port, no number')
})
