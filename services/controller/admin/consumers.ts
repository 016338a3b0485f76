/**
 * The verdict on this process's consumers of the log and of Postgres (see core/health.ts), with the
 * log's head and, for those behind, how long the event they wait on has been in the log.
 */
import { consumers as registry, type ConsumerHealth, type ConsumerReport, type HealthThresholds } from '../../../core/health.js'
import type { EventStore } from '../../../events/index.js'
import { askHealthSocket } from '../../../core/health-socket.js'

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

/**
 * The verdict on this process's consumers with those of the services apart on this host (the router's
 * and the workers' processes, asked on their health sockets) added to its rows: each of those judges
 * its own (its socket's `consumers: ...` reason), and one that does not answer makes it not ok.
 */
export async function consumersOfHost(
  store: EventStore,
  t: HealthThresholds,
  sockets: readonly (string | undefined)[],
  health: ConsumerHealth = registry,
): Promise<ConsumersVerdict> {
  const [own, ...apart] = await Promise.all([
    consumersVerdict(store, t, health),
    ...sockets.flatMap((s) => (s ? [askHealthSocket(s).then((h) => ({ socket: s, h }))] : [])),
  ])
  const rows = [...own.consumers]
  const reasons = own.reason ? [own.reason] : []
  for (const { socket, h } of apart) {
    const theirs = h.detail?.consumers
    if (Array.isArray(theirs)) rows.push(...(theirs as ConsumerReport[]))
    else reasons.push(h.reason ?? `${socket}: no report of its consumers`)
    if (!h.ok && h.reason?.startsWith('consumers: ')) reasons.push(h.reason.slice('consumers: '.length))
  }
  rows.sort((a, b) => a.name.localeCompare(b.name))
  return {
    ok: reasons.length === 0,
    ...(reasons.length ? { reason: reasons.join('; ') } : {}),
    ...(own.head !== undefined ? { head: own.head } : {}),
    consumers: rows,
  }
}
