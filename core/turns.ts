/**
 * Turns per key within this process, per owner (an event store, a pool): `fn` runs after every earlier
 * turn on the same key of the same owner has finished, whether it succeeded or not.
 */
export class Turns<Owner extends object> {
  readonly #queues = new WeakMap<Owner, Map<string, Promise<unknown>>>()

  async run<T>(owner: Owner, key: string, fn: () => Promise<T>): Promise<T> {
    let queue = this.#queues.get(owner)
    if (!queue) this.#queues.set(owner, (queue = new Map()))
    const before = queue.get(key) ?? Promise.resolve()
    const mine = before.then(fn, fn)
    const settled = mine.then(
      () => {},
      () => {},
    )
    queue.set(key, settled)
    try {
      return await mine
    } finally {
      if (queue.get(key) === settled) queue.delete(key)
    }
  }
}
