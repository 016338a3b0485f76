import t from 'tap'
import type { Delivery, RecordedEvent } from '../events/index.js'
import { microBatches, planBatch } from './batch.js'
import { checkProjection, durableOf, nextSchemaOf, schemaOf } from './projection.js'

function ev(seq: number, type = 'AppCreated'): RecordedEvent {
  return {
    id: `id-${seq}`,
    type,
    version: 1,
    stream: 'app.a',
    occurredAt: '2025-01-01T00:00:00.000Z',
    actor: 'user:a',
    causationId: null,
    correlationId: 'c',
    data: {},
    seq,
  }
}

function delivery(seq: number, pending: number): Delivery {
  return { event: ev(seq), pending, ack: async () => {} }
}

/** Yields `items`; a number is a pause in ms before the next delivery. */
async function* source(items: (Delivery | number)[]): AsyncGenerator<Delivery> {
  for (const it of items) {
    if (typeof it === 'number') await new Promise((r) => setTimeout(r, it))
    else yield it
  }
}

async function collect(src: AsyncIterable<Delivery>, opts: Parameters<typeof microBatches>[1]): Promise<number[][]> {
  const out: number[][] = []
  for await (const b of microBatches(src, opts)) out.push(b.map((d) => d.event.seq))
  return out
}

t.test('a batch ends when the subscription is caught up', async (t) => {
  const got = await collect(source([delivery(1, 2), delivery(2, 1), delivery(3, 0), 50, delivery(4, 0)]), { maxBatch: 10 })
  t.same(got, [[1, 2, 3], [4]])
})

t.test('deliveries the client already holds join the batch although pending says 0', async (t) => {
  const got = await collect(source([delivery(1, 0), delivery(2, 0), delivery(3, 0)]), { maxBatch: 10 })
  t.same(got, [[1, 2, 3]])
})

/** `src` behind `layers` more async generators, as a subscription's deliveries come (the client's queue, the gap check, the decoding). */
async function* layered(src: AsyncIterable<Delivery>, layers: number): AsyncGenerator<Delivery> {
  if (layers === 0) return yield* src
  for await (const d of layered(src, layers - 1)) yield d
}

t.test('deliveries already held join the batch through several async generators', async (t) => {
  const got = await collect(layered(source([delivery(1, 0), delivery(2, 0), delivery(3, 0), 20, delivery(4, 0)]), 4), { maxBatch: 10 })
  t.same(got, [[1, 2, 3], [4]])
})

t.test('a caught-up batch is yielded without waiting for a turn of the event loop', async (t) => {
  let turned = false
  setImmediate(() => (turned = true))
  for await (const b of microBatches(source([delivery(1, 0), 50, delivery(2, 0)]))) {
    t.same(
      b.map((d) => d.event.seq),
      [1],
    )
    t.notOk(turned, 'no setImmediate ran before the batch')
    break
  }
})

t.test('a batch ends at maxBatch', async (t) => {
  const got = await collect(source([1, 2, 3, 4, 5].map((s) => delivery(s, 5 - s))), { maxBatch: 2 })
  t.same(got, [[1, 2], [3, 4], [5]])
})

t.test('a stale pending count does not hold a batch longer than maxWaitMs', async (t) => {
  const started = Date.now()
  const got = await collect(source([delivery(1, 5), 200, delivery(2, 0)]), { maxBatch: 10, maxWaitMs: 20 })
  t.same(got, [[1], [2]])
  t.ok(Date.now() - started >= 200)
})

t.test('what is left when the source ends is yielded', async (t) => {
  t.same(await collect(source([delivery(1, 3), delivery(2, 2)]), { maxBatch: 10, maxWaitMs: 1000 }), [[1, 2]])
})

/** The deliveries of one commit of `size` events at `seq`, `pending` counting from its last one. */
function commit(seq: number, size: number, pending: number): Delivery[] {
  return Array.from({ length: size }, (_, index) => ({
    event: { ...ev(seq), id: `id-${seq}-${index}`, index, commitSize: size },
    pending: pending + size - 1 - index,
    ack: async () => {},
  }))
}

async function collectIds(src: AsyncIterable<Delivery>, opts: Parameters<typeof microBatches>[1]): Promise<string[][]> {
  const out: string[][] = []
  for await (const b of microBatches(src, opts)) out.push(b.map((d) => `${d.event.seq}.${d.event.index ?? 0}`))
  return out
}

t.test('a batch never ends inside a commit: not at maxBatch, not when the next delivery is late', async (t) => {
  t.same(
    await collectIds(source([delivery(1, 4), ...commit(2, 3, 1), delivery(3, 0)]), { maxBatch: 2 }),
    [['1.0', '2.0', '2.1', '2.2'], ['3.0']],
    'maxBatch 2 is reached inside commit 2: the batch goes on to its end',
  )
  const [a, b] = commit(5, 2, 0)
  t.same(await collectIds(source([a!, 50, b!]), { maxBatch: 10, maxWaitMs: 5 }), [['5.0', '5.1']], 'a wait inside a commit does not end the batch')
})

t.test('a commit cut off by the end of the source is left out (it comes again whole)', async (t) => {
  const [a, b] = commit(2, 3, 0)
  t.same(await collectIds(source([delivery(1, 3), a!, b!]), { maxBatch: 10, maxWaitMs: 1000 }), [['1.0']])
  t.same(await collectIds(source([a!, b!]), { maxBatch: 10, maxWaitMs: 1000 }), [])
})

t.test('planBatch: the events of a commit share its seq, and all of them are applied', async (t) => {
  const handles = new Set(['AppCreated'])
  const events = [ev(4), ...commit(5, 3, 0).map((d) => d.event), ev(6)]
  const plan = planBatch(events, 4, handles)
  t.same(
    plan.apply.map((e) => `${e.seq}.${e.index ?? 0}`),
    ['5.0', '5.1', '5.2', '6.0'],
  )
  t.equal(plan.checkpoint, 6)
  t.same(
    planBatch(events, 5, handles).apply.map((e) => e.seq),
    [6],
    'a checkpoint at a commit covers all of it',
  )
  const twice = [...commit(5, 2, 0).map((d) => d.event), ...commit(5, 2, 0).map((d) => d.event)]
  t.same(
    planBatch(twice, 4, handles).apply.map((e) => e.id),
    ['id-5-0', 'id-5-1'],
    'a commit delivered twice in one batch is applied once',
  )
})

t.test('planBatch skips what the checkpoint covers and what the projection does not handle', async (t) => {
  const handles = new Set(['AppCreated'])
  const events = [ev(4), ev(5), ev(6, 'ConfigSet'), ev(7), ev(8, 'ConfigSet')]
  const plan = planBatch(events, 5, handles)
  t.same(
    plan.apply.map((e) => e.seq),
    [7],
  )
  t.equal(plan.checkpoint, 8, 'unhandled events still advance the checkpoint')
  t.same(planBatch(events, 8, handles), { apply: [], checkpoint: 8 }, 'a fully redelivered batch changes nothing')
  t.same(planBatch([], 3, handles), { apply: [], checkpoint: 3 })
})

t.test('projection names make valid schemas and durables', async (t) => {
  const p = { name: 'apps', version: 2, handles: ['AppCreated'], tables: '', apply: async () => {} }
  checkProjection(p)
  t.equal(schemaOf('apps'), 'rm_apps')
  t.equal(nextSchemaOf('apps'), 'rm_apps__next')
  t.equal(durableOf(p), 'proj-apps-v2')
  t.throws(() => checkProjection({ ...p, name: 'Apps; DROP' }), TypeError)
  t.throws(() => checkProjection({ ...p, name: 'x'.repeat(51) }), TypeError)
  t.throws(() => checkProjection({ ...p, version: 0 }), TypeError)
  t.throws(() => checkProjection({ ...p, handles: [] }), TypeError)
})
