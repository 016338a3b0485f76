import t from 'tap'
import { testNatsUrl, uniqueName } from '../test/harness.js'
import { connectJetStream, deleteStream as deleteStreamOn } from './connection.js'
import { JetStreamEventStore } from './jetstream.js'
import { contractCatalogue, eventStoreContract } from './store.contract.js'
import { DeliverPolicy } from '@nats-io/jetstream'
import { EventSubjects } from './subjects.js'

const servers = testNatsUrl()

/** Deletes a test's stream over a connection of its own: the test may have closed its stores already. */
async function deleteStream(name: string): Promise<void> {
  const { nc, jsm } = await connectJetStream({ servers, name: 'wharf-events-test-cleanup' })
  try {
    await deleteStreamOn(jsm, name)
  } finally {
    await nc.close()
  }
}

await eventStoreContract(t, 'JetStreamEventStore', {
  async create(t, catalogue) {
    const subjects = new EventSubjects(uniqueName('evt').toLowerCase())
    const store = await JetStreamEventStore.connect({ servers, catalogue, subjects, name: 'wharf-events-test' })
    t.teardown(async () => {
      await store.close()
      await deleteStream(subjects.stream)
    })
    return store
  },
  async reopen(t, store, catalogue) {
    const again = await JetStreamEventStore.connect({
      servers,
      catalogue,
      subjects: (store as JetStreamEventStore).subjects,
      name: 'wharf-events-test-restarted',
    })
    t.teardown(() => again.close())
    return again
  },
})

for (const by of ['this process', 'another process'] as const) {
  t.test(`a subscription whose pull the server dropped pulls again soon after a commit of ${by}, not after two missed heartbeats`, async (t) => {
    const subjects = new EventSubjects(uniqueName('evt').toLowerCase())
    const store = await JetStreamEventStore.connect({ servers, catalogue: contractCatalogue(), subjects, name: 'wharf-events-test' })
    t.teardown(async () => {
      await store.close()
      await deleteStream(subjects.stream)
    })
    // Another process's store (the router's events are all appended by other processes).
    const writer =
      by === 'this process' ? store : await JetStreamEventStore.connect({ servers, catalogue: contractCatalogue(), subjects, name: 'wharf-events-test-writer' })
    if (writer !== store) t.teardown(() => writer.close())
    const ctx = { actor: 'user:test' }
    const first = await writer.append('app.a', [{ type: 'ThingAdded', data: { n: 1 } }], { ...ctx, expectedVersion: 0 })
    const sub = await store.subscribe('stall')
    t.teardown(() => sub.close())
    const it = sub[Symbol.asyncIterator]()
    const one = await it.next()
    t.equal(one.value?.event.seq, first.lastSeq)
    await one.value?.ack()
    // The server forgets the subscription's pull, as nats-server at times does under load: here its
    // consumer is made anew where it stood, and nats.js still counts its pull as outstanding.
    const { nc, jsm } = await connectJetStream({ servers, name: 'wharf-events-test-stall' })
    t.teardown(() => nc.close())
    const { config } = await jsm.consumers.info(subjects.stream, 'stall')
    await jsm.consumers.delete(subjects.stream, 'stall')
    await jsm.consumers.add(subjects.stream, { ...config, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: first.lastSeq + 1 })
    const t0 = performance.now()
    const second = await writer.append('app.a', [{ type: 'ThingAdded', data: { n: 2 } }], { ...ctx, expectedVersion: first.lastSeq })
    const two = await Promise.race([it.next(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no delivery within 10 s')), 10_000))])
    const ms = Math.round(performance.now() - t0)
    t.equal(two.value?.event.seq, second.lastSeq, 'the commit is delivered')
    // nats.js alone pulls again after two missed heartbeats (2 x 500 ms, counted from the server's last word).
    t.ok(ms < 900, `within 900 ms of the append (${ms} ms)`)
  })
}
