import t from 'tap'
import { TokenBucket } from './rate.js'

t.test('a token bucket spends, refills at its rate, and says how long to wait', async (t) => {
  let now = 0
  const b = new TokenBucket(100, 50, () => now)
  t.equal(b.take(50), 0, 'the burst is there at once')
  t.equal(b.take(10), 100, '10 over: 100 ms at 100/s')
  now += 100
  t.equal(b.take(0), 0, 'refilled')
  t.notOk(b.tryTake(1), 'tryTake does not go below zero')
  now += 10_000
  t.ok(b.tryTake(50), 'never more than the burst')
  t.notOk(b.tryTake(1))
})
