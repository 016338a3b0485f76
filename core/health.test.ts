import t from 'tap'
import { backoffMs } from './backoff.js'
import { ConsumerHealth, problem } from './health.js'

const T = { maxLag: 100, stallS: 10 }

function clock() {
  let now = 1_000_000
  return { now: () => now, advance: (s: number) => (now += s * 1000) }
}

t.test('a consumer caught up is healthy; its lag is the head minus its position', async (t) => {
  const c = clock()
  const h = new ConsumerHealth(c.now)
  h.register('scheduler', 5)
  h.progress('scheduler', 12)
  const v = h.verdict(12, T)
  t.equal(v.ok, true)
  t.equal(v.reason, undefined)
  t.match(v.consumers, [{ name: 'scheduler', state: 'running', position: 12, lag: 0, reconnects: 0 }])
})

t.test('reconnecting or stopped is unhealthy at once, with the error in one line', async (t) => {
  const c = clock()
  const h = new ConsumerHealth(c.now)
  h.register('router', 3)
  h.reconnecting('router', new Error('connection\nrefused'))
  let v = h.verdict(3, T)
  t.equal(v.ok, false)
  t.equal(v.reason, 'router reconnecting for 0 s: connection refused')
  t.equal(v.consumers[0]!.reconnects, 1)
  h.resumed('router')
  t.equal(h.verdict(3, T).ok, true, 'connected again')
  h.stopped('router', 'failed at seq 4: boom')
  v = h.verdict(4, T)
  t.equal(v.ok, false)
  t.equal(v.reason, 'router stopped: failed at seq 4: boom')
  h.remove('router')
  t.equal(h.verdict(4, T).ok, true, 'a consumer stopped on purpose is forgotten')
})

t.test('behind: too far is unhealthy at once; a little is only once it stalls and the event waited that long', async (t) => {
  const c = clock()
  const h = new ConsumerHealth(c.now)
  h.register('projection apps', 10)
  t.equal(h.verdict(500, T).reason, 'projection apps 490 events behind')
  t.equal(h.verdict(15, T).ok, true, 'five behind with fresh progress')
  c.advance(11)
  // An event appended a moment ago to a consumer idle for 11 s is not a stall.
  t.equal(h.verdict(15, T, new Map([[10, 0.2]])).ok, true)
  const v = h.verdict(15, T, new Map([[10, 11]]))
  t.equal(v.ok, false)
  t.equal(v.reason, 'projection apps stuck 5 events behind for 11 s')
  t.same(h.positionsBehind(15), [10])
  h.saw('projection apps', 14)
  t.equal(h.report(15)[0]!.position, 13, 'a delivery of 14 means everything before it is behind')
  h.progress('projection apps', 15)
  t.equal(h.verdict(15, T).ok, true)
})

t.test('the reason names the first three and counts the rest', async (t) => {
  const h = new ConsumerHealth()
  for (const n of ['a', 'b', 'c', 'd', 'e']) {
    h.register(n)
    h.stopped(n, 'x')
  }
  t.equal(h.verdict(undefined, T).reason, 'a stopped: x; b stopped: x; c stopped: x; and 2 more')
  t.equal(problem({ name: 'z', state: 'running', sinceProgressS: 100, reconnects: 0 }, T), undefined, 'no position, no lag: not judged')
})

t.test('backoff doubles from the base up to the bound, less up to a fifth of jitter', async (t) => {
  const none = () => 0
  t.same(
    [0, 1, 2, 3, 4, 5, 6, 10, 100].map((a) => backoffMs(a, {}, none)),
    [200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000],
  )
  t.equal(backoffMs(0, { baseMs: 500, maxMs: 1000 }, none), 500)
  t.equal(
    backoffMs(9, { baseMs: 500, maxMs: 1000 }, () => 0.999),
    800,
  )
})
