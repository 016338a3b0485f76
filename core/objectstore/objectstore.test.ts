import t from 'tap'
import { MemoryObjectStore } from './memory.js'
import { objectStoreContract } from './objectstore.contract.js'

await objectStoreContract(t, 'MemoryObjectStore', {
  async create(_t, opts = {}) {
    return new MemoryObjectStore(opts)
  },
})
