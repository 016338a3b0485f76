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
 * Drops events at or below the checkpoint (redelivered after a crash between commit and ack) and
 * events the projection does not handle; the checkpoint still moves past the latter.
 */
export function planBatch(events: readonly RecordedEvent[], checkpoint: number, handles: ReadonlySet<string>): BatchPlan {
  const apply: RecordedEvent[] = []
  let last = checkpoint
  for (const e of events) {
    if (e.seq <= last) continue
    last = e.seq
    if (handles.has(e.type)) apply.push(e)
  }
  return { apply, checkpoint: last }
}
