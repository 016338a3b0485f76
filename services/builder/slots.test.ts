import t from 'tap'
import { IdleTimer, PushSlots, type Timers } from './slots.js'

t.test('push slots: per user, then for everyone; a slot given back is free again', (t) => {
  const slots = new PushSlots({ perUser: 2, max: 3 })
  const a1 = slots.take('alice')
  slots.take('alice')
  t.throws(() => slots.take('alice'), { code: 'WHARF_BUSY', message: /alice has 2 pushes running already.*WHARF_PUSHES_PER_USER=2/ })
  slots.take('bob')
  t.throws(() => slots.take('carol'), { code: 'WHARF_BUSY', message: /the builder runs 3 pushes.*WHARF_PUSHES_MAX=3/ })
  a1()
  a1()
  t.equal(slots.running('alice'), 1, 'giving back twice counts once')
  t.equal(slots.running(), 2)
  slots.take('carol')
  t.equal(slots.running(), 3)
  t.end()
})

/** A clock the test moves by hand: timers fire when `advance` passes their time, never by themselves. */
function manualClock() {
  let now = 0
  let next = 0
  const due = new Map<number, { at: number; fn: () => void }>()
  const timers: Timers = {
    set(fn, ms) {
      const id = next++
      due.set(id, { at: now + ms, fn })
      return id
    },
    clear(handle) {
      due.delete(handle as number)
    },
  }
  const advance = (ms: number) => {
    now += ms
    for (const [id, d] of [...due].sort((a, b) => a[1].at - b[1].at)) {
      if (d.at > now || !due.has(id)) continue
      due.delete(id)
      d.fn()
    }
  }
  return { timers, advance, pending: () => due.size }
}

t.test('idle timer: fires after silence, not while paused, once', async (t) => {
  const clock = manualClock()
  let fired = 0
  const idle = new IdleTimer(40, () => fired++, clock.timers)
  clock.advance(25)
  idle.touch()
  clock.advance(25)
  t.equal(fired, 0, 'a touch starts the wait again')
  clock.advance(14)
  t.equal(fired, 0, 'still within the wait since the touch')
  idle.pause()
  clock.advance(60)
  t.equal(fired, 0, 'paused: no firing')
  idle.resume()
  clock.advance(39)
  t.equal(fired, 0, 'resumed: the wait starts again')
  clock.advance(1)
  t.equal(fired, 1, 'fires after the silence')
  idle.touch()
  clock.advance(60)
  t.equal(fired, 1, 'once')
  idle.stop()
  t.equal(clock.pending(), 0, 'stopped: no timer left')
})

t.test('idle timer on the real clock: fires after its time', async (t) => {
  let fired = 0
  const idle = new IdleTimer(20, () => fired++)
  await new Promise((r) => setTimeout(r, 200))
  t.equal(fired, 1)
  idle.stop()
})
