import t from 'tap'
import { slotOf } from '../../domain/runtime/labels.js'
import { classifyDeath, signalNumber } from './model.js'

t.test('a global service has no slot', async (t) => {
  t.equal(slotOf('wharf-shop-web.mjabluxy1y4fkrohiufs4hi3v.rhbochtpxjroamce47ekf6wi1'), undefined)
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
