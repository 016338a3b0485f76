import t from 'tap'
import { MemoryEventStore } from './memory.js'
import { eventStoreContract } from './store.contract.js'

await eventStoreContract(t, 'MemoryEventStore', {
  async create(t, catalogue) {
    const store = new MemoryEventStore({ catalogue })
    t.teardown(() => store.close())
    return store
  },
  async reopen(t, store, catalogue) {
    const again = (store as MemoryEventStore).reopen({ catalogue })
    t.teardown(() => again.close())
    return again
  },
})
