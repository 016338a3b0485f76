import t, { type Test } from 'tap'
import { testNatsUrl, uniqueName } from '../test/harness.js'
import { connectJetStream, deleteStream } from './connection.js'
import { JetStreamEventStore } from './jetstream.js'
import { endsCommit, type RecordedEvent } from './envelope.js'
import { contractCatalogue } from './store.contract.js'
import { EventSubjects } from './subjects.js'

const servers = testNatsUrl()
const ctx = { actor: 'user:test', expectedVersion: 'any' as const }
const thing = (n: number) => ({ type: 'ThingAdded', data: { n } })

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

/** A log of `commits` commits (every fifth holds three events), and two stores over it: one reading on a thread of its own, one not. */
async function fixture(t: Test, commits: number) {
  const subjects = new EventSubjects(uniqueName('offthr').toLowerCase())
  const offThread = await JetStreamEventStore.connect({ servers, catalogue: contractCatalogue(), subjects, name: 'wharf-offthread-test', offThreadFrom: 1 })
  const inThread = await JetStreamEventStore.connect({ servers, catalogue: contractCatalogue(), subjects, name: 'wharf-inthread-test', offThreadFrom: 0 })
  t.teardown(async () => {
    await offThread.close()
    await inThread.close()
    const { nc, jsm } = await connectJetStream({ servers, name: 'wharf-offthread-cleanup' })
    await deleteStream(jsm, subjects.stream).catch(() => {})
    await nc.close()
  })
  let n = 0
  const writes: Promise<unknown>[] = []
  for (let i = 0; i < commits; i++) {
    const events = i % 5 === 0 ? [thing(n++), thing(n++), thing(n++)] : [thing(n++)]
    // One commit that is not ASCII (its actor): its chunk is decoded message by message, the others as one string each.
    writes.push(offThread.append(`app.a${i % 7}`, events, i === 1_200 ? { ...ctx, actor: 'user:tëst-😀' } : ctx))
    if (writes.length >= 200) await Promise.all(writes.splice(0))
  }
  await Promise.all(writes)
  return { offThread, inThread, subjects }
}

const view = (e: RecordedEvent) => ({ seq: e.seq, index: e.index, commitSize: e.commitSize, id: e.id, stream: e.stream, actor: e.actor, data: e.data })

t.test('read on a thread of its own: the events of an in-thread read, in whole commits', async (t) => {
  const { offThread, inThread } = await fixture(t, 1_500)
  for (const from of [1, 1_234]) {
    const chunks = await collect(offThread.readAllChunks(from, { batch: 300 }))
    const expected = await collect(inThread.readAllChunks(from, { batch: 300 }))
    t.same(chunks.flat().map(view), expected.flat().map(view), `from ${from}: the same events`)
    t.equal(new Set(chunks.flat().map((e) => e.seq)).size, 1_500 - from + 1, `from ${from}: every commit once`)
    if (from === 1)
      t.equal(chunks.flat().filter((e) => e.actor === 'user:tëst-😀').length, 3, 'the three events of the commit that is not ASCII, decoded as UTF-8')
    t.ok(
      chunks.every((c) => c.length > 0 && endsCommit(c.at(-1)!)),
      'no chunk is empty, each ends at the end of a commit',
    )
  }
  t.same(await collect(offThread.readAllChunks(1_501)), [], 'nothing after the end')
})

t.test('leaving the read early stops the thread and removes its consumer', async (t) => {
  const { offThread, subjects } = await fixture(t, 2_000)
  for await (const chunk of offThread.readAllChunks(1, { batch: 100 })) {
    t.ok(chunk.length > 0)
    break
  }
  const { nc, jsm } = await connectJetStream({ servers, name: 'wharf-offthread-check' })
  t.teardown(() => nc.close())
  let left = -1
  for (let i = 0; i < 50 && left !== 0; i++) {
    left = (await jsm.consumers.list(subjects.stream).next()).length
    if (left !== 0) await new Promise((r) => setTimeout(r, 100))
  }
  t.equal(left, 0, 'the read consumer is gone')
})

t.test('a read whose stream goes away fails with an error, not a hang', async (t) => {
  const { offThread, subjects } = await fixture(t, 2_000)
  const it = offThread.readAllChunks(1, { batch: 100 })[Symbol.asyncIterator]()
  t.ok(!(await it.next()).done)
  const { nc, jsm } = await connectJetStream({ servers, name: 'wharf-offthread-delete' })
  await deleteStream(jsm, subjects.stream)
  await nc.close()
  const rest = (async () => {
    for (let r = await it.next(); !r.done; r = await it.next());
  })()
  await t.rejects(rest, { name: 'WharfError' }, 'the read fails')
})
