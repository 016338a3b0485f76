import t from 'tap'
import { lockDecision, type LockHolder } from './start-lock.js'

const holder: LockHolder = { pid: 4242, start: '1234', by: 'supervisor', at: 0, token: 'a' }

t.test('no lock: take it', async (t) => {
  t.equal(
    lockDecision('none', () => t.fail('no holder to ask about') as never),
    'take',
  )
})

t.test('a lock whose holder still runs: wait for it (it is starting the part)', async (t) => {
  t.equal(
    lockDecision(holder, (p) => p.pid === 4242 && p.start === '1234'),
    'wait',
  )
})

t.test('a lock whose holder is gone, or whose pid a later process reuses: break it', async (t) => {
  t.equal(
    lockDecision(holder, () => false),
    'break',
  )
  t.equal(
    lockDecision(holder, (p) => p.pid === 4242 && p.start === '9999'),
    'break',
    'same pid, another start time',
  )
})

t.test('a file that is not a lock Wharf wrote: break it', async (t) => {
  t.equal(
    lockDecision('unreadable', () => true),
    'break',
  )
})
