import { Writable } from 'node:stream'
import t from 'tap'
import Type from 'typebox'
import { ConsumerHealth } from '../core/health.js'
import { createLogger } from '../core/log.js'
import { Catalogue } from './catalogue.js'
import { startConsumer, type ConsumerOptions } from './consumer.js'
import type { RecordedEvent } from './envelope.js'
import { MemoryEventStore } from './memory.js'

const catalogue = new Catalogue([
  { type: 'Ping', version: 1, stream: 'app', schema: Type.Object({ n: Type.Integer() }) },
  { type: 'Pong', version: 1, stream: 'app', schema: Type.Object({ n: Type.Integer() }) },
])

/** A logger whose lines are kept, parsed. */
function capture(): { log: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>)
      cb()
    },
  })
  return { log: createLogger({ level: 'debug', destination }), lines }
}

async function append(store: MemoryEventStore, ...ns: number[]): Promise<void> {
  for (const n of ns)
    await store.append('app.a', [{ type: n < 0 ? 'Pong' : 'Ping', data: { n } }], { actor: 'test', correlationId: `c${n}`, expectedVersion: 'any' })
}

async function until(cond: () => boolean, ms = 2_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 2))
  }
}

const ns = (events: RecordedEvent[]) => events.map((e) => (e.data as { n: number }).n)

function consumer(store: MemoryEventStore, handled: RecordedEvent[], opts: Partial<ConsumerOptions> = {}) {
  return startConsumer({
    store,
    durableName: 'c',
    log: capture().log,
    name: 'test',
    retryMs: 5,
    handle: async (e) => void handled.push(e),
    ...opts,
  } as ConsumerOptions)
}

t.test('handles events in order and resumes after a stop from the last acked event', async (t) => {
  const store = new MemoryEventStore({ catalogue })
  await append(store, 1, 2, 3)
  const handled: RecordedEvent[] = []
  const c = await consumer(store, handled)
  await until(() => handled.length === 3)
  await c.stop()
  await append(store, 4, 5)
  const again = store.reopen()
  const c2 = await consumer(again, handled)
  await until(() => handled.length === 5)
  await new Promise((r) => setTimeout(r, 20))
  t.same(ns(handled), [1, 2, 3, 4, 5])
  await c2.stop()
})

t.test('a handler that throws does not skip the event: it is retried, logged with its correlation id', async (t) => {
  const store = new MemoryEventStore({ catalogue })
  await append(store, 1, 2, 3)
  const { log, lines } = capture()
  const calls: number[] = []
  let failures = 2
  const c = await startConsumer({
    store,
    durableName: 'c',
    log,
    name: 'test',
    retryMs: 5,
    handle: async (e) => {
      const n = (e.data as { n: number }).n
      calls.push(n)
      if (n === 2 && failures-- > 0) throw new Error('passing')
    },
  })
  await until(() => calls.includes(3))
  t.same(calls, [1, 2, 2, 2, 3])
  const errors = lines.filter((l) => l.msg === 'test: cannot handle an event; trying again')
  t.equal(errors.length, 2)
  t.match(errors[0], { correlationId: 'c2', seq: 2, type: 'Ping', stream: 'app.a', err: { message: 'passing' } })
  await c.stop()
})

t.test('an event still failing when the consumer stops is not acked: the next consumer gets it', async (t) => {
  const store = new MemoryEventStore({ catalogue })
  await append(store, 1, 2)
  const calls: number[] = []
  const c = await consumer(store, [], {
    handle: async (e) => {
      calls.push((e.data as { n: number }).n)
      if ((e.data as { n: number }).n === 2) throw new Error('down')
    },
  })
  await until(() => calls.filter((n) => n === 2).length >= 2)
  await c.stop()
  const handled: RecordedEvent[] = []
  const c2 = await consumer(store.reopen(), handled)
  await until(() => handled.length === 1)
  t.same(ns(handled), [2])
  await c2.stop()
})

t.test('stop waits for the event in hand, which is acked', async (t) => {
  const store = new MemoryEventStore({ catalogue })
  await append(store, 1, 2)
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const started: number[] = []
  const finished: number[] = []
  const c = await consumer(store, [], {
    handle: async (e) => {
      const n = (e.data as { n: number }).n
      started.push(n)
      await gate
      finished.push(n)
    },
  })
  await until(() => started.length === 1)
  let stopped = false
  const stopping = c.stop().then(() => (stopped = true))
  await new Promise((r) => setTimeout(r, 20))
  t.notOk(stopped, 'stop waits for the handler')
  release()
  await stopping
  t.same(finished, [1])
  t.same(started, [1], 'no event is taken after stop')
  const handled: RecordedEvent[] = []
  const c2 = await consumer(store.reopen(), handled)
  await until(() => handled.length === 1)
  t.same(ns(handled), [2], 'the event in hand was acked')
  await c2.stop()
})

t.test('kill does not wait for the event in hand and does not ack it', async (t) => {
  const store = new MemoryEventStore({ catalogue })
  await append(store, 1)
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  let started = false
  const c = await consumer(store, [], {
    handle: async () => {
      started = true
      await gate
    },
  })
  await until(() => started)
  await c.kill()
  release()
  await new Promise((r) => setTimeout(r, 10))
  const handled: RecordedEvent[] = []
  const c2 = await consumer(store.reopen(), handled)
  await until(() => handled.length === 1)
  t.same(ns(handled), [1])
  await c2.stop()
})

t.test('filters: other types and events the filter refuses are acked unhandled', async (t) => {
  const store = new MemoryEventStore({ catalogue })
  await append(store, 1, -1, 2, 3, -2, 4)
  const handled: RecordedEvent[] = []
  const c = await consumer(store, handled, { types: ['Ping'], filter: (e) => (e.data as { n: number }).n !== 3 })
  await until(() => handled.length === 3)
  await new Promise((r) => setTimeout(r, 10))
  t.same(ns(handled), [1, 2, 4])
  await c.stop()
  await append(store, 5)
  const after: RecordedEvent[] = []
  const c2 = await consumer(store.reopen(), after)
  await until(() => after.length === 1)
  t.same(ns(after), [5], 'the unhandled events were acked')
  await c2.stop()
})

t.test("from: a seq, or 'end' (only events appended after start); an existing durable resumes", async (t) => {
  const store = new MemoryEventStore({ catalogue })
  await append(store, 1, 2, 3)
  const fromTwo: RecordedEvent[] = []
  const a = await consumer(store, fromTwo, { durableName: 'a', from: 2 })
  await until(() => fromTwo.length === 2)
  t.same(ns(fromTwo), [2, 3])
  await a.stop()
  const fromEnd: RecordedEvent[] = []
  const b = await consumer(store, fromEnd, { durableName: 'b', from: 'end' })
  await append(store, 4)
  await until(() => fromEnd.length === 1)
  t.same(ns(fromEnd), [4])
  await b.stop()
  await append(store, 5)
  const resumed: RecordedEvent[] = []
  const b2 = await consumer(store, resumed, { durableName: 'b', from: 'end' })
  await until(() => resumed.length === 1)
  t.same(ns(resumed), [5], "'end' applies to a new durable only")
  await b2.stop()
})

t.test('catchUp runs after subscribing and before the first event; events appended meanwhile are not missed', async (t) => {
  const store = new MemoryEventStore({ catalogue })
  const order: string[] = []
  const c = await consumer(store, [], {
    from: 'end',
    catchUp: async () => {
      await append(store, 1)
      order.push('catchUp')
    },
    handle: async (e) => void order.push(`event ${(e.data as { n: number }).n}`),
  })
  await until(() => order.length === 2)
  t.same(order, ['catchUp', 'event 1'])
  await c.stop()
})

t.test('batches: one call per batch of wanted events, retried whole, acked at its last delivery', async (t) => {
  const store = new MemoryEventStore({ catalogue })
  await append(store, 1, 2, -1, 3)
  const batches: number[][] = []
  let fail = true
  const c = await consumer(store, [], {
    types: ['Ping'],
    batch: { maxBatch: 10 },
    handleBatch: async (events: RecordedEvent[]) => {
      batches.push(ns(events))
      if (fail) {
        fail = false
        throw new Error('once')
      }
    },
  } as Partial<ConsumerOptions>)
  await until(() => batches.length === 2)
  t.same(batches, [
    [1, 2, 3],
    [1, 2, 3],
  ])
  await c.stop()
  await append(store, 4)
  const after: RecordedEvent[] = []
  const c2 = await consumer(store.reopen(), after)
  await until(() => after.length === 1)
  t.same(ns(after), [4])
  await c2.stop()
})

t.test('a commit is acked whole: a consumer killed inside it hands all of it again, and batches hold whole commits', async (t) => {
  const store = new MemoryEventStore({ catalogue })
  await append(store, 1)
  await store.append(
    'app.a',
    [2, 3, 4].map((n) => ({ type: 'Ping', data: { n } })),
    { actor: 'test', expectedVersion: 'any' },
  )
  await append(store, 5)
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const first: RecordedEvent[] = []
  const c = await consumer(store, first, {
    handle: async (e: RecordedEvent) => {
      first.push(e)
      // Stuck on the second event of the commit: 1 and 2 were handled and acked one by one.
      if ((e.data as { n: number }).n === 3) await gate
    },
  } as Partial<ConsumerOptions>)
  await until(() => first.length === 3)
  await c.kill()
  release()
  const again: RecordedEvent[] = []
  const c2 = await consumer(store.reopen(), again)
  await until(() => again.length === 4)
  t.same(ns(again), [2, 3, 4, 5], 'the ack of 2 (inside the commit) did not ack the commit: it comes again from its first event')
  await c2.stop()

  const batches: number[][] = []
  const c3 = await consumer(store.reopen(), [], {
    durableName: 'batched',
    batch: { maxBatch: 2 },
    handleBatch: async (events: RecordedEvent[]) => void batches.push(ns(events)),
  } as Partial<ConsumerOptions>)
  await until(() => batches.flat().length === 5)
  t.ok(
    batches.every((b) => !b.includes(2) || (b.includes(3) && b.includes(4))),
    `the commit is in one batch: ${JSON.stringify(batches)}`,
  )
  await c3.stop()
})

t.test('a subscription that breaks is made again with backoff, resuming after the last ack: nothing skipped, nothing twice', async (t) => {
  const store = new MemoryEventStore({ catalogue })
  await append(store, 1, 2, 3)
  const handled: RecordedEvent[] = []
  const health = new ConsumerHealth()
  const c = await consumer(store, handled, { health, backoff: { baseMs: 20, maxMs: 40 } })
  await until(() => handled.length === 3)
  const first = c.subscription
  // As NATS going away does: the subscription ends under the consumer.
  await first.close()
  await until(() => health.report()[0]?.state === 'reconnecting')
  t.equal(health.verdict(3).ok, false, 'unhealthy while it reconnects')
  await append(store, 4, 5)
  await until(() => handled.length === 5)
  t.not(c.subscription, first, 'a new subscription')
  t.same(ns(handled), [1, 2, 3, 4, 5])
  t.match(health.report(5), [{ name: 'test', state: 'running', reconnects: 1 }])
  t.equal(health.verdict(5).ok, true)
  await c.stop()
  t.same(health.report(), [], 'a clean stop is forgotten')
})
