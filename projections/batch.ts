import type { RecordedEvent } from '../events/index.js'

export { microBatches, type BatchOptions } from '../events/batch.js'

/** What one batch does to a projection whose checkpoint is `checkpoint`. */
export interface BatchPlan {
  /** Events after the checkpoint that the projection handles, in order. */
  apply: RecordedEvent[]
  /** The checkpoint after the batch: the highest seq seen, or `checkpoint` when nothing is new. */
  checkpoint: number
}

/**
 * Drops events at or below the checkpoint (redelivered after a crash between commit and ack), any
 * event at or before one already planned (a delivery seen twice), and events the projection does not
 * handle; the checkpoint still moves past the latter. A checkpoint is a commit's `seq`: the batch must
 * hold whole commits (`microBatches` cuts only between commits), since the events of a commit share it.
 */
export function planBatch(events: readonly RecordedEvent[], checkpoint: number, handles: ReadonlySet<string>): BatchPlan {
  const apply: RecordedEvent[] = []
  let last = checkpoint
  let lastIndex = Number.POSITIVE_INFINITY
  for (const e of events) {
    const index = e.index ?? 0
    if (e.seq < last || (e.seq === last && index <= lastIndex)) continue
    last = e.seq
    lastIndex = index
    if (handles.has(e.type)) apply.push(e)
  }
  return { apply, checkpoint: last }
}
