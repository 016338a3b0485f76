import t from 'tap'
import { EngineError, isEngineUnreachable } from './engine.js'

const sys = (code: string, syscall = 'connect') => Object.assign(new Error(`${syscall} ${code}`), { code, syscall })

t.test('a call that did not reach a working engine is a passing failure', async (t) => {
  t.ok(isEngineUnreachable(sys('ECONNREFUSED')), 'the socket refuses (engine killed)')
  t.ok(isEngineUnreachable(sys('ENOENT')), 'the socket is gone (removed as it died, not made yet)')
  t.ok(isEngineUnreachable(sys('ECONNRESET', 'read')), 'the connection broke mid-call')
  t.ok(isEngineUnreachable(new EngineError('unavailable', 'The swarm does not have a leader', { statusCode: 503 })), '503: a manager with no leader yet')
})

t.test('a refusal or an error the engine reports is not', async (t) => {
  t.notOk(isEngineUnreachable(new EngineError('invalid', 'bad spec')), '400')
  t.notOk(isEngineUnreachable(new EngineError('not_found', 'no such service')), '404')
  t.notOk(isEngineUnreachable(new EngineError('unavailable', 'rpc error')), '500')
  t.notOk(isEngineUnreachable(sys('ENOENT', 'open')), 'a file that is not there is not the engine')
  t.notOk(isEngineUnreachable(new Error('something else')))
  t.notOk(isEngineUnreachable(undefined))
})
