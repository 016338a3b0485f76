/**
 * The verdict on this process's consumers of the log and of Postgres (see core/health.ts), with the
 * log's head and, for those behind, how long the event they wait on has been in the log.
 */
import { consumers as registry, type ConsumerHealth, type ConsumerReport, type HealthThresholds } from '../../../core/health.js'
import type { EventStore } from '../../../events/index.js'

export interface ConsumersVerdict {
  ok: boolean
  /** Why not, in one line. */
  reason?: string
  /** The log's last seq; undefined when NATS does not answer (then the lags are unknown). */
  head?: number
  consumers: ConsumerReport[]
}

/** At most this many "next event" reads per verdict (consumers mostly share a few positions). */
const MAX_READS = 8

export async function consumersVerdict(store: EventStore, t: HealthThresholds, health: ConsumerHealth = registry): Promise<ConsumersVerdict> {
  let head: number | undefined
  try {
    head = await store.lastSeq()
  } catch {
    head = undefined
  }
  const waited = new Map<number, number>()
  if (head !== undefined) {
    const now = Date.now()
    for (const position of health.positionsBehind(head).slice(0, MAX_READS)) {
      try {
        for await (const e of store.readAll(position + 1, { batch: 1 })) {
          waited.set(position, Math.max(0, Math.round((now - Date.parse(e.occurredAt)) / 100) / 10))
          break
        }
      } catch {
        // Unknown age: the stall is judged by the progress alone.
      }
    }
  }
  const v = health.verdict(head, t, waited)
  return { ...v, ...(head !== undefined ? { head } : {}) }
}
