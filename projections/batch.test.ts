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
  const got = await collect(source([delivery(1, 2), delivery(2, 1), delivery(3, 0), 5, delivery(4, 0)]), { maxBatch: 10 })
  t.same(got, [[1, 2, 3], [4]])
})

t.test('deliveries the client already holds join the batch although pending says 0', async (t) => {
  const got = await collect(source([delivery(1, 0), delivery(2, 0), delivery(3, 0)]), { maxBatch: 10 })
  t.same(got, [[1, 2, 3]])
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
