import t, { type Test } from 'tap'
import { holdProjections, PROJECTION_LOCK_CLASS, readCheckpoints } from './index.js'
import { schemaOf } from './projection.js'
import { countedLog } from './testing/counted.js'

/** holdProjections: what a restore relies on to replace read models under a running projector. */

// standbyRetryMs of a minute: only the `resume` notice can bring the projection back within the test.
const setup = (t: Test) => countedLog(t, 'hold', { standbyRetryMs: 60_000 })

t.test('while held no event is applied; afterwards the projector resumes from the checkpoint as the hold left it', async (t) => {
  const { pool, projector, name, append, hits } = await setup(t)
  await projector.waitFor(await append(10))
  t.same(await hits(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])

  let last = 0
  await holdProjections(
    pool,
    async () => {
      t.same(projector.states(), { [name]: 'standby' }, 'the projector let go')
      last = await append(5)
      await new Promise((r) => setTimeout(r, 300))
      t.equal((await hits()).length, 10, 'nothing applied while held')
      // What a restore does: the read model and its checkpoint go back to an earlier point.
      await pool.query(`DELETE FROM ${schemaOf(name)}.hits WHERE seq > 4`)
      await pool.query(`UPDATE wharf.projection_checkpoints SET seq = 4 WHERE name = $1`, [name])
    },
    { names: [name] },
  )
  await projector.waitFor(last, { timeoutMs: 10_000 })
  t.same(
    await hits(),
    Array.from({ length: 15 }, (_, i) => i + 1),
    'events 5-15 applied once each after the hold: none skipped, none twice',
  )
  t.same(projector.states(), { [name]: 'live' })
  t.equal((await readCheckpoints(pool, [name]))[0]?.seq, 15)
})

t.test('a projection nobody lets go of: the hold gives up with WHARF_UNAVAILABLE and never runs its function', async (t) => {
  const { pool, projector, name, append, hits } = await setup(t)
  await projector.waitFor(await append(3))
  // A stuck owner elsewhere: another session holds the ownership lock of a projection of that name.
  const stuck = await pool.connect()
  t.teardown(() => stuck.release())
  await stuck.query('SELECT pg_advisory_lock($1, hashtext($2))', [PROJECTION_LOCK_CLASS, 'elsewhere'])
  let ran = false
  await t.rejects(
    holdProjections(pool, async () => void (ran = true), { names: [name, 'elsewhere'], timeoutMs: 500 }),
    { code: 'WHARF_UNAVAILABLE', message: /did not let go of elsewhere/ },
  )
  t.notOk(ran, 'nothing ran')
  const seq = await append(2)
  await projector.waitFor(seq, { timeoutMs: 10_000 })
  t.same(await hits(), [1, 2, 3, 4, 5], 'the projector took its projection back')
})
