import t from 'tap'
import { testNatsUrl, uniqueName } from '../test/harness.js'
import { connectJetStream, deleteStream as deleteStreamOn } from './connection.js'
import { JetStreamEventStore } from './jetstream.js'
import { eventStoreContract } from './store.contract.js'
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
