import t, { type Test } from 'tap'
import { getEventListeners } from 'node:events'
import { CheckpointWatcher } from './index.js'
import { schemaOf } from './projection.js'
import { countedLog } from './testing/counted.js'

/** CheckpointWatcher.until: waiting for a read model to show a row whose event's seq is not known in advance. */

async function setup(t: Test) {
  const { pool, projector, name, append } = await countedLog(t, 'watch')
  const watcher = new CheckpointWatcher({ pool, projections: [name], idleMs: 50 })
  // Teardowns run last first: the watcher lets go of its connection before the pool ends.
  t.teardown(() => watcher.close())
  let probes = 0
  /** The seq of the `n`th row of the read model, once it has that many (a probe: undefined until then). */
  const nth = (n: number) => async () => {
    probes++
    const { rows } = await pool.query<{ seq: string }>(`SELECT seq FROM ${schemaOf(name)}.hits ORDER BY seq OFFSET $1 LIMIT 1`, [n - 1])
    return rows[0] ? Number(rows[0].seq) : undefined
  }
  return { pool, projector, watcher, name, append, nth, probes: () => probes }
}

t.test('answers once the projection applies the event the probe looks for, probing on checkpoint moves only', async (t) => {
  const { watcher, name, append, nth, probes, projector } = await setup(t)
  await projector.waitFor(await append(2))
  t.equal(await watcher.until(nth(1), { projections: [name] }), 1, 'what is there already is answered at once')
  const calls = probes()

  const waiting = watcher.until(nth(5), { projections: [name], timeoutMs: 10_000 })
  await new Promise((r) => setTimeout(r, 300))
  t.equal(probes() - calls, 1, 'no polling: one probe in 300 ms while nothing happens')
  await append(3)
  t.equal(await waiting, 5)
  t.ok(probes() - calls <= 5, `re-probed on checkpoint moves only (${probes() - calls} probes for 3 events)`)
})

t.test('answers undefined after the timeout, or at once when the signal aborts; a failing probe rejects', async (t) => {
  const { watcher, name, nth } = await setup(t)
  const t0 = Date.now()
  t.equal(await watcher.until(nth(1), { projections: [name], timeoutMs: 200 }), undefined)
  t.ok(Date.now() - t0 >= 190, 'waited the timeout')

  const abort = new AbortController()
  const aborted = watcher.until(nth(1), { projections: [name], timeoutMs: 10_000, signal: abort.signal })
  setTimeout(() => abort.abort(), 50)
  const t1 = Date.now()
  t.equal(await aborted, undefined)
  t.ok(Date.now() - t1 < 5_000, 'the abort ended the wait')
  t.equal(await watcher.until(nth(1), { projections: [name], signal: abort.signal }), undefined, 'an aborted signal answers at once')

  await t.rejects(
    watcher.until(async () => Promise.reject(new Error('boom')), { projections: [name] }),
    { message: 'boom' },
  )
})

t.test('a closed watcher refuses, and closing rejects a pending until', async (t) => {
  const { watcher, name, nth } = await setup(t)
  const pending = watcher.until(nth(1), { projections: [name], timeoutMs: 10_000 })
  const rejected = t.rejects(pending, { code: 'WHARF_UNAVAILABLE' })
  await new Promise((r) => setTimeout(r, 100))
  await watcher.close()
  await rejected
  await t.rejects(watcher.until(nth(1), { projections: [name] }), { code: 'WHARF_UNAVAILABLE' })
})

t.test('waitFor with a signal that outlives the waits (a consumer one) leaves no listener on it, however each wait ends', async (t) => {
  const { watcher, name, append, projector } = await setup(t)
  const abort = new AbortController()
  const seq = await append(1)
  await projector.waitFor(seq)
  for (let i = 0; i < 50; i++) await watcher.waitFor(seq, { projections: [name], signal: abort.signal })
  await t.rejects(watcher.waitFor(seq + 1_000, { projections: [name], signal: abort.signal, timeoutMs: 50 }), /did not reach/)
  t.equal(getEventListeners(abort.signal, 'abort').length, 0, 'no abort listener left after 50 waits reached and one timed out')
  const given = watcher.waitFor(seq + 1_000, { projections: [name], signal: abort.signal, timeoutMs: 10_000 })
  abort.abort()
  await t.rejects(given, /given up/, 'an abort still ends a wait')
})
