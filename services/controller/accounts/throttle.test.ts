import t from 'tap'
import { FailureThrottle } from './throttle.js'

t.test('failures per key in a one-minute window, then blocked until it ends', async (t) => {
  let now = 1_000_000
  const th = new FailureThrottle({ limit: 3, now: () => now })
  for (let i = 0; i < 3; i++) {
    t.equal(th.blockedFor('alice'), 0)
    th.fail('alice')
  }
  t.equal(th.blockedFor('alice'), 60_000, 'blocked for the rest of the window')
  t.equal(th.blockedFor('bob'), 0, 'other keys are not')
  now += 59_000
  t.equal(th.blockedFor('alice'), 1000)
  now += 1000
  t.equal(th.blockedFor('alice'), 0, 'a new window')
  th.fail('alice')
  th.clear('alice')
  t.equal(th.blockedFor('alice'), 0)
})

t.test('memory is bounded', async (t) => {
  const th = new FailureThrottle({ limit: 1, maxKeys: 2 })
  th.fail('a')
  th.fail('b')
  th.fail('c')
  t.equal(th.blockedFor('a'), 0, 'the oldest key was dropped')
  t.ok(th.blockedFor('c') > 0)
})
