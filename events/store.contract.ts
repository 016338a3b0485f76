import type { Test } from 'tap'
import Type from 'typebox'
import { ConcurrencyError } from '../core/errors.js'
import { Catalogue, type EventDefinition } from './catalogue.js'
import { endsCommit, newEventId, type RecordedEvent } from './envelope.js'
import type { Delivery, EventStore } from './store.js'

/** How an adapter's test file gives the contract its stores. Each registers its own cleanup on `t`. */
export interface StoreFactory {
  /** A store over a new, empty log. */
  create(t: Test, catalogue: Catalogue): Promise<EventStore>
  /**
   * Another store over the same log as `store`, as a restarted process would open it (JetStream: a new
   * connection), reading with `catalogue`.
   */
  reopen(t: Test, store: EventStore, catalogue: Catalogue): Promise<EventStore>
}

const thingAdded: EventDefinition = {
  type: 'ThingAdded',
  version: 1,
  stream: 'app',
  schema: Type.Object({ n: Type.Integer() }, { additionalProperties: false }),
}
const userNoted: EventDefinition = { type: 'UserNoted', version: 1, stream: 'user', schema: Type.Object({ text: Type.String() }) }
const renamedV1: EventDefinition = { type: 'Renamed', version: 1, stream: 'app', schema: Type.Object({ name: Type.String() }) }
const renamedV2: EventDefinition = {
  type: 'Renamed',
  version: 2,
  stream: 'app',
  schema: Type.Object({ first: Type.String(), last: Type.String() }),
  upcast: (old: { name: string }) => {
    const [first = '', ...rest] = old.name.split(' ')
    return { first, last: rest.join(' ') }
  },
}

/** The catalogue most tests write with. */
export const contractCatalogue = (): Catalogue => new Catalogue([thingAdded, userNoted, renamedV1])
/** The same types, where `Renamed` has moved on to v2. */
export const contractCatalogueV2 = (): Catalogue => new Catalogue([thingAdded, userNoted, renamedV1, renamedV2])

const ctx = { actor: 'user:test' }
const thing = (n: number, id?: string) => ({ type: 'ThingAdded', data: { n }, ...(id ? { id } : {}) })

/** The next delivery, or a failure after `ms` instead of a hung test. */
async function next(it: AsyncIterator<Delivery>, ms = 10_000): Promise<Delivery> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no delivery within ${ms} ms`)), ms)
  })
  try {
    const r = await Promise.race([it.next(), timeout])
    if (r.done) throw new Error('subscription ended')
    return r.value
  } finally {
    clearTimeout(timer)
  }
}

async function collect<T = RecordedEvent>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of items) out.push(x)
  return out
}

/** The `EventStore` contract: every adapter passes these. */
export function eventStoreContract(t: Test, name: string, factory: StoreFactory): Promise<void> {
  return t.test(`EventStore contract: ${name}`, async (t) => {
    t.test('append with expected version 0 starts a stream', async (t) => {
      const store = await factory.create(t, contractCatalogue())
      t.equal(await store.lastSeq(), 0, 'a new log is empty')
      const r = await store.append('app.a', [thing(1), thing(2)], { ...ctx, expectedVersion: 0, correlationId: 'corr-1', causationId: 'cause-1' })
      t.same({ lastSeq: r.lastSeq, seqs: r.seqs, duplicate: r.duplicate }, { lastSeq: 1, seqs: [1, 1], duplicate: false }, 'one append is one commit: one seq')
      const { version, events } = await store.readStream('app.a')
      t.same(r.events, events, 'append answers the events as recorded, as readStream reads them')
      t.equal(await store.streamVersion('app.a'), 1, 'streamVersion without reading')
      t.equal(await store.streamVersion('app.nothing'), 0)
      t.equal(version, 1)
      t.same(
        events.map((e) => [e.seq, e.index, e.commitSize, e.type, e.version, e.stream, e.data, e.actor, e.correlationId, e.causationId]),
        [
          [1, 0, 2, 'ThingAdded', 1, 'app.a', { n: 1 }, 'user:test', 'corr-1', 'cause-1'],
          [1, 1, 2, 'ThingAdded', 1, 'app.a', { n: 2 }, 'user:test', 'corr-1', 'cause-1'],
        ],
      )
      t.match(events[0]!.id, /^[0-9a-f-]{36}$/)
      t.not(events[0]!.id, events[1]!.id)
      t.ok(!Number.isNaN(Date.parse(events[0]!.occurredAt)), 'occurredAt is a timestamp')
      t.equal(await store.lastSeq(), 1)
      const single = await store.append('app.a', [thing(3)], { ...ctx, expectedVersion: 1 })
      t.same(single.seqs, [2], 'a commit of one event')
      t.same(
        Object.keys(single.events[0]!).filter((k) => k === 'index' || k === 'commitSize'),
        [],
        'has no index or commitSize',
      )
      const empty = await store.readStream('app.nothing')
      t.same(empty, { version: 0, events: [] }, 'a stream without events has version 0')
    })

    t.test('a stale expected version is a conflict and writes nothing', async (t) => {
      const store = await factory.create(t, contractCatalogue())
      const first = await store.append('app.a', [thing(1)], { ...ctx, expectedVersion: 0 })
      await store.append('app.b', [thing(9)], { ...ctx, expectedVersion: 0 })
      await t.rejects(store.append('app.a', [thing(2), thing(3)], { ...ctx, expectedVersion: 0 }), {
        code: 'WHARF_CONFLICT',
        name: 'ConcurrencyError',
        stream: 'app.a',
        expected: 0,
      })
      const err = await store.append('app.a', [thing(2)], { ...ctx, expectedVersion: 0 }).catch((e: unknown) => e)
      t.type(err, ConcurrencyError)
      // Expecting a version the stream has not reached (here: another stream's seq) is also a conflict.
      await t.rejects(store.append('app.a', [thing(2)], { ...ctx, expectedVersion: 2 }), { code: 'WHARF_CONFLICT' })
      const { version, events } = await store.readStream('app.a')
      t.equal(version, first.lastSeq)
      t.same(
        events.map((e) => e.data),
        [{ n: 1 }],
      )
      t.equal(await store.lastSeq(), 2, 'nothing was written')
      const ok = await store.append('app.a', [thing(2)], { ...ctx, expectedVersion: first.lastSeq })
      t.equal(ok.lastSeq, 3, 'the current version is accepted')
    })

    t.test('concurrent appends with the same expected version: exactly one wins', async (t) => {
      const store = await factory.create(t, contractCatalogue())
      const { lastSeq } = await store.append('app.a', [thing(0)], { ...ctx, expectedVersion: 0 })
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) => store.append('app.a', [thing(i + 1), thing(i + 100)], { ...ctx, expectedVersion: lastSeq })),
      )
      const won = results.filter((r) => r.status === 'fulfilled')
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      t.equal(won.length, 1, 'one append wins')
      t.equal(lost.length, 4)
      for (const r of lost) t.equal((r.reason as ConcurrencyError).code, 'WHARF_CONFLICT')
      const { events } = await store.readStream('app.a')
      t.equal(events.length, 3, 'only the winner was written')
      const [, a, b] = events.map((e) => (e.data as { n: number }).n)
      t.equal(b! - a!, 99, "the winner's two events are adjacent")
    })

    t.test("'any' skips the version check", async (t) => {
      const store = await factory.create(t, contractCatalogue())
      await store.append('app.a', [thing(1)], { ...ctx, expectedVersion: 0 })
      const results = await Promise.all([1, 2, 3].map((n) => store.append('app.a', [thing(n)], { ...ctx, expectedVersion: 'any' })))
      t.same(
        results.map((r) => r.duplicate),
        [false, false, false],
      )
      const { version, events } = await store.readStream('app.a')
      t.equal(events.length, 4)
      t.equal(version, Math.max(...results.map((r) => r.lastSeq)))
    })

    t.test('a retried append with the same ids is a duplicate: no second copy, same seqs', async (t) => {
      const store = await factory.create(t, contractCatalogue())
      const ids = [newEventId(), newEventId()]
      const first = await store.append('app.a', [thing(1, ids[0]), thing(2, ids[1])], { ...ctx, expectedVersion: 0 })
      t.equal(first.duplicate, false)
      const retry = await store.append('app.a', [thing(1, ids[0]), thing(2, ids[1])], { ...ctx, expectedVersion: 0 })
      t.same(retry, { ...first, duplicate: true })
      // The stream moving on since does not turn the retry into a conflict.
      await store.append('app.a', [thing(3)], { ...ctx, expectedVersion: first.lastSeq })
      const late = await store.append('app.a', [thing(1, ids[0]), thing(2, ids[1])], { ...ctx, expectedVersion: 0 })
      t.same(late, { ...first, duplicate: true })
      const { events } = await store.readStream('app.a')
      t.same(events.map((e) => e.id).slice(0, 2), ids)
      t.equal(events.length, 3, 'no second copy')
      t.equal(await store.lastSeq(), 2)
    })

    t.test('a retry completes an append that was cut short', async (t) => {
      const store = await factory.create(t, contractCatalogue())
      const ids = [newEventId(), newEventId()]
      // As if the writer crashed after the first event of a two-event append.
      const partial = await store.append('app.a', [thing(1, ids[0])], { ...ctx, expectedVersion: 0 })
      const retry = await store.append('app.a', [thing(1, ids[0]), thing(2, ids[1])], { ...ctx, expectedVersion: 0 })
      t.equal(retry.duplicate, false, 'not every event was already there')
      t.same(retry.seqs, [partial.lastSeq, partial.lastSeq + 1])
      const { events } = await store.readStream('app.a')
      t.same(
        events.map((e) => e.id),
        ids,
      )
    })

    t.test('readStream: events of that stream, in order, with seq; fromSeq', async (t) => {
      const store = await factory.create(t, contractCatalogue())
      let a = 0
      let b = 0
      for (let i = 1; i <= 4; i++) {
        a = (await store.append('app.a', [thing(i)], { ...ctx, expectedVersion: a })).lastSeq
        b = (await store.append('app.b', [thing(-i)], { ...ctx, expectedVersion: b })).lastSeq
      }
      await store.append('user.u', [{ type: 'UserNoted', data: { text: 'hi' } }], { ...ctx, expectedVersion: 0 })
      const ra = await store.readStream('app.a')
      t.same(
        ra.events.map((e) => e.seq),
        [1, 3, 5, 7],
      )
      t.same(
        ra.events.map((e) => e.data),
        [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }],
      )
      t.equal(ra.version, 7)
      t.ok(ra.events.every((e) => e.stream === 'app.a'))
      const rb = await store.readStream('app.b')
      t.same(
        rb.events.map((e) => e.seq),
        [2, 4, 6, 8],
      )
      t.equal(rb.version, 8)
      const from = await store.readStream('app.a', { fromSeq: 4 })
      t.same(
        from.events.map((e) => e.seq),
        [5, 7],
      )
      t.equal(from.version, 7)
      const past = await store.readStream('app.a', { fromSeq: 8 })
      t.same(past, { version: 7, events: [] }, 'the version is known even when no event is at or after fromSeq')
    })

    t.test('readStream of a long stream (300 appends, interleaved with another stream): every event in order; fromSeq in the middle', async (t) => {
      const store = await factory.create(t, contractCatalogue())
      let a = 0
      for (let i = 1; i <= 300; i++) {
        a = (await store.append('app.a', [thing(i)], { ...ctx, expectedVersion: a })).lastSeq
        if (i % 3 === 0) await store.append('app.b', [thing(-i)], { ...ctx, expectedVersion: 'any' })
      }
      const all = await store.readStream('app.a')
      t.same(
        all.events.map((e) => (e.data as { n: number }).n),
        Array.from({ length: 300 }, (_, i) => i + 1),
      )
      t.equal(all.version, a)
      const seqs = all.events.map((e) => e.seq)
      t.same(
        seqs,
        [...seqs].sort((x, y) => x - y),
      )
      const from = await store.readStream('app.a', { fromSeq: seqs[149]! })
      t.same(
        from.events.map((e) => e.seq),
        seqs.slice(149),
      )
    })

    t.test('readAll: from fromSeq to the end at the time of the call', async (t) => {
      const store = await factory.create(t, contractCatalogue())
      for (let i = 1; i <= 6; i++) await store.append(i % 2 ? 'app.a' : 'app.b', [thing(i)], { ...ctx, expectedVersion: 'any' })
      t.same(
        (await collect(store.readAll())).map((e) => e.seq),
        [1, 2, 3, 4, 5, 6],
      )
      const from3 = await collect(store.readAll(3))
      t.same(
        from3.map((e) => [e.seq, e.stream, e.data]),
        [
          [3, 'app.a', { n: 3 }],
          [4, 'app.b', { n: 4 }],
          [5, 'app.a', { n: 5 }],
          [6, 'app.b', { n: 6 }],
        ],
      )
      t.same(
        (await collect(store.readAll(2, { batch: 2 }))).map((e) => e.seq),
        [2, 3, 4, 5, 6],
        'across several batches',
      )
      t.same(await collect(store.readAll(7)), [], 'nothing after the end')
      const it = store.readAll(5)[Symbol.asyncIterator]()
      const firstRead = await it.next()
      t.equal(firstRead.done ? undefined : firstRead.value.seq, 5)
      await store.append('app.a', [thing(7)], { ...ctx, expectedVersion: 'any' })
      const rest: number[] = []
      for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value.seq)
      t.same(rest, [6], 'an event appended during the read is not part of it')
    })

    t.test('readAllChunks: the events of readAll, in arrays of whole commits, none empty, none past the end', async (t) => {
      const store = await factory.create(t, contractCatalogue())
      for (let i = 1; i <= 5; i++) await store.append(i % 2 ? 'app.a' : 'app.b', [thing(i)], { ...ctx, expectedVersion: 'any' })
      await store.append('app.a', [thing(6), thing(7), thing(8)], { ...ctx, expectedVersion: 'any' })
      await store.append('app.b', [thing(9)], { ...ctx, expectedVersion: 'any' })
      const chunks = await collect(store.readAllChunks(2, { batch: 2 }))
      t.same(
        chunks.flat().map((e) => (e.data as { n: number }).n),
        [2, 3, 4, 5, 6, 7, 8, 9],
        'every event from the seq, in order',
      )
      t.same(
        chunks.flat().map((e) => e.seq),
        (await collect(store.readAll(2))).map((e) => e.seq),
        'as readAll answers them',
      )
      t.ok(
        chunks.every((c) => c.length > 0 && new Set(c.map((e) => e.seq)).size <= 2),
        'each chunk holds at most `batch` commits, and none is empty',
      )
      t.ok(
        chunks.every((c) => endsCommit(c.at(-1)!)),
        'a chunk ends at the end of a commit',
      )
      const it = store.readAllChunks(1, { batch: 100 })[Symbol.asyncIterator]()
      const first = await it.next()
      await store.append('app.a', [thing(10)], { ...ctx, expectedVersion: 'any' })
      const seqs = first.done ? [] : first.value.map((e) => e.seq)
      for (let r = await it.next(); !r.done; r = await it.next()) seqs.push(...r.value.map((e) => e.seq))
      t.equal(seqs.at(-1), 7, 'an event appended during the read is not part of it')
      t.same(await collect(store.readAllChunks(9)), [], 'nothing after the end')
    })

    t.test('invalid events are refused with WHARF_INVALID_EVENT and nothing is written', async (t) => {
      const store = await factory.create(t, contractCatalogue())
      await store.append('app.a', [thing(1)], { ...ctx, expectedVersion: 0 })
      const bad = {
        'data failing its schema': [thing(2), { type: 'ThingAdded', data: { n: 'two' } }],
        'an extra property': [{ type: 'ThingAdded', data: { n: 2, extra: true } }],
        'an unknown type': [thing(2), { type: 'NoSuchThing', data: {} }],
        'the wrong stream kind': [thing(2), { type: 'UserNoted', data: { text: 'x' } }],
        'an old version': [{ type: 'ThingAdded', version: 0, data: { n: 2 } }],
        'a version from the future': [{ type: 'ThingAdded', version: 2, data: { n: 2 } }],
        'one id twice': [thing(2, 'same-id'), thing(3, 'same-id')],
      }
      for (const [what, events] of Object.entries(bad)) {
        await t.rejects(store.append('app.a', events, { ...ctx, expectedVersion: 1 }), { code: 'WHARF_INVALID_EVENT' }, what)
      }
      await t.rejects(store.append('nokind.a', [thing(2)], { ...ctx, expectedVersion: 'any' }), { code: 'WHARF_INVALID_EVENT' }, 'an invalid stream id')
      t.equal(await store.lastSeq(), 1, 'nothing was written')
      t.same(
        (await store.readStream('app.a')).events.map((e) => e.data),
        [{ n: 1 }],
      )
    })

    t.test('old versions are upcast on read', async (t) => {
      const v1 = await factory.create(t, contractCatalogue())
      await v1.append('app.a', [{ type: 'Renamed', data: { name: 'Ada King Lovelace' } }, thing(1)], { ...ctx, expectedVersion: 0 })
      await t.rejects(v1.append('app.a', [{ type: 'Renamed', data: { first: 'A', last: 'B' } }], { ...ctx, expectedVersion: 'any' }), {
        code: 'WHARF_INVALID_EVENT',
      })
      const v2 = await factory.reopen(t, v1, contractCatalogueV2())
      const { events } = await v2.readStream('app.a')
      t.same(
        events.map((e) => [e.type, e.version, e.data]),
        [
          ['Renamed', 2, { first: 'Ada', last: 'King Lovelace' }],
          ['ThingAdded', 1, { n: 1 }],
        ],
      )
      const all = await collect(v2.readAll())
      t.same(all[0]!.data, { first: 'Ada', last: 'King Lovelace' })
      t.same((await v1.readStream('app.a')).events[0]!.data, { name: 'Ada King Lovelace' }, 'the log itself keeps v1')
      await t.rejects(v2.append('app.a', [{ type: 'Renamed', version: 1, data: { name: 'X' } }], { ...ctx, expectedVersion: 'any' }), {
        code: 'WHARF_INVALID_EVENT',
      })
      const sub = await v2.subscribe('upcast')
      t.teardown(() => sub.close())
      const d = await next(sub[Symbol.asyncIterator]())
      t.same([d.event.version, d.event.data], [2, { first: 'Ada', last: 'King Lovelace' }], 'deliveries are upcast too')
    })

    t.test('a durable subscription delivers everything, resumes after a restart, redelivers what was not acked', async (t) => {
      const store = await factory.create(t, contractCatalogue())
      await store.append('app.a', [thing(1), thing(2)], { ...ctx, expectedVersion: 0 })
      await store.append('user.u', [{ type: 'UserNoted', data: { text: 'x' } }], { ...ctx, expectedVersion: 0 })

      const sub = await store.subscribe('proj')
      t.equal(sub.name, 'proj')
      const it = sub[Symbol.asyncIterator]()
      const first = [await next(it), await next(it), await next(it)]
      t.same(
        first.map((d) => [d.event.seq, d.event.index, d.pending]),
        [
          [1, 0, 2],
          [1, 1, 1],
          [2, undefined, 0],
        ],
        "a commit's events are delivered one by one",
      )
      t.same(first[2]!.event.data, { text: 'x' })
      await store.append('app.a', [thing(3)], { ...ctx, expectedVersion: 1 })
      const live = await next(it)
      t.same([live.event.seq, live.pending], [3, 0], 'an event appended later is delivered live')
      await first[1]!.ack() // acks commit 1; 2 and 3 stay unacked
      await sub.close()
      const afterClose = await it.next()
      t.ok(afterClose.done, 'a closed subscription ends its iteration')

      const restarted = await factory.reopen(t, store, contractCatalogue())
      const sub2 = await restarted.subscribe('proj')
      const it2 = sub2[Symbol.asyncIterator]()
      const again = await next(it2)
      t.same([again.event.seq, again.pending], [2, 1], 'delivery resumes after the last ack: 2 comes again')
      const three = await next(it2)
      t.equal(three.event.seq, 3)
      await three.ack()
      await sub2.close()

      const sub3 = await restarted.subscribe('proj', { fromSeq: 1 })
      const it3 = sub3[Symbol.asyncIterator]()
      await restarted.append('app.a', [thing(4)], { ...ctx, expectedVersion: 3 })
      const fresh = await next(it3)
      t.equal(fresh.event.seq, 4, 'everything acked is not delivered again; fromSeq is ignored for an existing subscription')
      await sub3.close()
    })

    t.test('a commit is acked whole: an ack inside it acks only the commits before', async (t) => {
      const store = await factory.create(t, contractCatalogue())
      await store.append('app.a', [thing(1)], { ...ctx, expectedVersion: 0 })
      await store.append('app.a', [thing(2), thing(3), thing(4)], { ...ctx, expectedVersion: 1 })
      await store.append('app.a', [thing(5)], { ...ctx, expectedVersion: 2 })
      t.same(
        (await collect(store.readAll())).map((e) => [e.seq, e.index, (e.data as { n: number }).n]),
        [
          [1, undefined, 1],
          [2, 0, 2],
          [2, 1, 3],
          [2, 2, 4],
          [3, undefined, 5],
        ],
        'readAll unpacks the commit, in order',
      )
      t.same(
        (await collect(store.readAll(2))).map((e) => (e.data as { n: number }).n),
        [2, 3, 4, 5],
        'readAll from a commit starts at its first event',
      )
      const sub = await store.subscribe('whole')
      const it = sub[Symbol.asyncIterator]()
      const ds = [await next(it), await next(it), await next(it)]
      t.same(
        ds.map((d) => [d.event.seq, d.event.index ?? null, endsCommit(d.event)]),
        [
          [1, null, true],
          [2, 0, false],
          [2, 1, false],
        ],
      )
      await ds[2]!.ack() // inside commit 2: acks commit 1 only
      await sub.close()
      const again = await store.subscribe('whole')
      const it2 = again[Symbol.asyncIterator]()
      const whole = [await next(it2), await next(it2), await next(it2)]
      t.same(
        whole.map((d) => [d.event.seq, (d.event.data as { n: number }).n]),
        [
          [2, 2],
          [2, 3],
          [2, 4],
        ],
        'the whole commit comes again, from its first event',
      )
      await whole[2]!.ack()
      await again.close()
      const last = await store.subscribe('whole')
      t.equal((await next(last[Symbol.asyncIterator]())).event.seq, 3, 'the ack of its last event acked the commit')
      await last.close()
    })

    t.test('fromSeq, reset and deleteSubscription', async (t) => {
      const store = await factory.create(t, contractCatalogue())
      for (let i = 1; i <= 4; i++) await store.append('app.a', [thing(i)], { ...ctx, expectedVersion: 'any' })

      const sub = await store.subscribe('late', { fromSeq: 3, ackWaitMs: 5_000 })
      const it = sub[Symbol.asyncIterator]()
      const d = await next(it)
      t.same([d.event.seq, d.pending], [3, 1], 'a new subscription starts at fromSeq')
      await (await next(it)).ack()
      await sub.close()

      const reset = await store.subscribe('late', { fromSeq: 2, reset: true })
      t.equal((await next(reset[Symbol.asyncIterator]())).event.seq, 2, 'reset drops the position')
      await reset.close()

      const other = await store.subscribe('other')
      const o = await next(other[Symbol.asyncIterator]())
      await o.ack()
      await other.close()

      await store.deleteSubscription('late')
      await store.deleteSubscription('never-existed')
      const anew = await store.subscribe('late')
      t.equal((await next(anew[Symbol.asyncIterator]())).event.seq, 1, 'after delete, the name starts over')
      await anew.close()
      const kept = await store.subscribe('other')
      t.equal((await next(kept[Symbol.asyncIterator]())).event.seq, 2, 'other subscriptions keep their position')
      await kept.close()
      await t.rejects(store.subscribe('bad name'), { code: 'WHARF_INVALID' })
    })
  }) as unknown as Promise<void>
}
