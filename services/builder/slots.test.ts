import t from 'tap'
import { IdleTimer, PushSlots } from './slots.js'

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

t.test('idle timer: fires after silence, not while paused, once', async (t) => {
  let fired = 0
  const idle = new IdleTimer(40, () => fired++)
  await new Promise((r) => setTimeout(r, 25))
  idle.touch()
  await new Promise((r) => setTimeout(r, 25))
  t.equal(fired, 0, 'a touch starts the wait again')
  idle.pause()
  await new Promise((r) => setTimeout(r, 60))
  t.equal(fired, 0, 'paused: no firing')
  idle.resume()
  await new Promise((r) => setTimeout(r, 60))
  t.equal(fired, 1, 'fires after the silence')
  idle.touch()
  await new Promise((r) => setTimeout(r, 60))
  t.equal(fired, 1, 'once')
  idle.stop()
})
