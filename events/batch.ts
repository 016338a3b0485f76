import { endsCommit } from './envelope.js'
import type { Delivery } from './store.js'

/** How deliveries are grouped into one batch (one transaction of a projection). */
export interface BatchOptions {
  /** Most deliveries per batch, default 1000. */
  maxBatch?: number
  /**
   * Longest a non-empty batch waits for the next delivery when the subscription says more are
   * pending, ms, default 20. Guards against a `pending` count that is stale.
   */
  maxWaitMs?: number
}

/**
 * Turns of the microtask queue within which a delivery the client already holds comes out of the
 * subscription's iterators (a few per async generator on the way: the client's queue, the gap check,
 * the decoding); a delivery not there by then is not held yet.
 */
const HELD_TICKS = 64

/** Resolves with `'idle'` after `n` turns of the microtask queue. */
async function microtasks(n: number): Promise<'idle'> {
  for (let i = 0; i < n; i++) await undefined
  return 'idle'
}

/**
 * Groups deliveries into micro-batches: a batch ends when the subscription is caught up
 * (`pending === 0` and no further delivery is ready at once: within {@link HELD_TICKS} microtasks), when it holds `maxBatch` deliveries, or
 * when the next delivery takes longer than `maxWaitMs`; but only ever after the last event of a commit,
 * so that a batch (one transaction, one ack) holds whole commits. The events of one commit come from one
 * message, all ready at once. The source is pulled only while no batch is being processed (back-pressure).
 */
export async function* microBatches(source: AsyncIterable<Delivery>, opts: BatchOptions = {}): AsyncGenerator<Delivery[]> {
  const maxBatch = opts.maxBatch ?? 1000
  const maxWaitMs = opts.maxWaitMs ?? 20
  const it = source[Symbol.asyncIterator]()
  let batch: Delivery[] = []
  let caughtUp = false
  // One outstanding next() at a time: a wait that ran out keeps it for the following round.
  let next: Promise<IteratorResult<Delivery>> | undefined
  try {
    for (;;) {
      next ??= it.next()
      let result: IteratorResult<Delivery> | 'idle'
      if (batch.length === 0) {
        result = await next
      } else if (caughtUp) {
        // `pending` counts only what the server has not sent; deliveries the client already holds
        // (it pulls ahead) are ready within a few turns of the microtask queue, and join this batch.
        // Not a turn of the event loop: on a busy process that is a wait of its own (all the I/O
        // callbacks ready meanwhile), which every command waiting for this read model would pay.
        result = await Promise.race([next, microtasks(HELD_TICKS)])
      } else {
        let timer: NodeJS.Timeout | undefined
        const timeout = new Promise<'idle'>((resolve) => (timer = setTimeout(resolve, maxWaitMs, 'idle')))
        result = await Promise.race([next, timeout])
        clearTimeout(timer)
      }
      if (result === 'idle' && endsCommit(batch.at(-1)!.event)) {
        yield batch
        batch = []
        continue
      }
      if (result === 'idle') continue
      next = undefined
      if (result.done) break
      batch.push(result.value)
      caughtUp = result.value.pending === 0
      if (batch.length >= maxBatch && endsCommit(result.value.event)) {
        yield batch
        batch = []
      }
    }
    // A commit cut off by the end of the subscription is left out: it is delivered again, whole.
    const whole = batch.findLastIndex((d) => endsCommit(d.event)) + 1
    if (whole > 0) yield batch.slice(0, whole)
  } finally {
    // Not awaited: with a next() still outstanding, return() of an async generator waits for it.
    if (it.return) it.return().catch(() => {})
  }
}
