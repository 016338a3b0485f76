import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../core/log.js'
import { microBatches, type BatchOptions } from './batch.js'
import type { RecordedEvent } from './envelope.js'
import type { Delivery, EventStore, Subscription } from './store.js'

/** Handles one event at a time. */
interface OneByOne {
  /** Throwing makes the event come again after `retryMs` (it is not acked); `signal` aborts when the consumer stops. */
  handle(event: RecordedEvent, signal: AbortSignal): Promise<void>
}

/** Handles the events in micro-batches (see {@link microBatches}): one call and one ack per batch. */
interface Batched {
  /** The events of the batch that pass the filter, in order (never empty); throwing retries the whole batch. */
  handleBatch(events: RecordedEvent[], signal: AbortSignal): Promise<void>
  /** Default: at most 1000 events, and a batch ends when the subscription is caught up. */
  batch?: BatchOptions
}

export type ConsumerOptions = (OneByOne | Batched) & {
  store: EventStore
  /** The durable subscription's name: its position survives restarts and is shared by replicas. */
  durableName: string
  /**
   * Where a new durable subscription starts: a seq (default 1), or `'end'`, after the newest event at
   * start (for consumers that read what came before from read models). An existing durable resumes after
   * its last ack.
   */
  from?: number | 'end'
  /** Event types handled; the others are acked unhandled. Default every type. */
  types?: Iterable<string>
  /** A further filter: false acks the event unhandled. */
  filter?: (event: RecordedEvent) => boolean
  /**
   * Runs once the subscription exists and before the first event is handled: catch-up work (a full
   * reconcile or render) that must not miss an event appended meanwhile. Throwing closes the subscription.
   */
  catchUp?: () => Promise<void>
  /** Pause before a failed event (or batch) is handled again, ms, default 1_000. */
  retryMs?: number
  log: Logger
  /** Prefix of the log lines, e.g. `scheduler`. */
  name: string
}

export interface Consumer {
  readonly subscription: Subscription
  /** Stops taking events: waits for the event (or batch) in hand to be handled and acked; the rest comes again to the next consumer. */
  stop(): Promise<void>
  /** Stops at once, as a crash would: the event in hand is not waited for and not acked. */
  kill(): Promise<void>
}

/**
 * A durable consumer of the event log: subscribes as `durableName`, hands each event that passes
 * `types` and `filter` to the handler, acks it once the handler resolves (so a crash hands it again:
 * handlers must be idempotent), and retries a handler that throws every `retryMs` until it succeeds or
 * the consumer stops, logging each failure with the event's correlation id. Events are handled one at
 * a time, in log order, none missing (the subscription reads a lost delivery again). An ack covers only
 * whole commits (see `Delivery.ack`): a stop or crash in the middle of a commit's events hands the whole
 * commit again. `types` and `filter` are applied here, on an unfiltered subscription.
 */
export async function startConsumer(opts: ConsumerOptions): Promise<Consumer> {
  const { store, log, name } = opts
  const retryMs = opts.retryMs ?? 1_000
  const types = opts.types === undefined ? undefined : new Set(opts.types)
  const wanted = (e: RecordedEvent): boolean => (types === undefined || types.has(e.type)) && (opts.filter?.(e) ?? true)
  const fromSeq = opts.from === 'end' ? (await store.lastSeq()) + 1 : (opts.from ?? 1)
  const sub = await store.subscribe(opts.durableName, { fromSeq })
  if (opts.catchUp) {
    try {
      await opts.catchUp()
    } catch (err) {
      await sub.close().catch(() => {})
      throw err
    }
  }
  const abort = new AbortController()
  let stopping = false
  let killed = false
  /** The handling and ack of the deliveries in hand, if any. */
  let inHand: Promise<void> | undefined

  /** Runs `fn` until it resolves (true) or the consumer stops (false). */
  const untilDone = async (fn: () => Promise<void>, about: Record<string, unknown>): Promise<boolean> => {
    for (;;) {
      try {
        await fn()
        return true
      } catch (err) {
        if (stopping) return false
        log.error({ err, ...about }, `${name}: cannot handle an event; trying again`)
        await sleep(retryMs, undefined, { signal: abort.signal }).catch(() => {})
        if (stopping) return false
      }
    }
  }
  const aboutOne = (e: RecordedEvent) => ({ seq: e.seq, type: e.type, stream: e.stream, correlationId: e.correlationId })

  const handleOne = async (d: Delivery): Promise<void> => {
    const e = d.event
    if (wanted(e) && 'handle' in opts && !(await untilDone(() => opts.handle(e, abort.signal), aboutOne(e)))) return
    if (!killed) await d.ack()
  }
  const handleBatch = async (batch: Delivery[]): Promise<void> => {
    const events = batch.map((d) => d.event).filter(wanted)
    if (events.length > 0 && 'handleBatch' in opts) {
      const about = { firstSeq: events[0]!.seq, lastSeq: events.at(-1)!.seq, correlationIds: [...new Set(events.map((e) => e.correlationId))] }
      if (!(await untilDone(() => opts.handleBatch(events, abort.signal), about))) return
    }
    if (!killed) await batch.at(-1)!.ack()
  }

  const done = (async () => {
    if ('handleBatch' in opts) {
      for await (const batch of microBatches(sub, opts.batch)) {
        if (stopping) return
        await (inHand = handleBatch(batch))
        inHand = undefined
        if (stopping) return
      }
    } else {
      for await (const d of sub) {
        if (stopping) return
        await (inHand = handleOne(d))
        inHand = undefined
        if (stopping) return
      }
    }
  })().catch((err) => {
    if (!stopping) log.error({ err }, `${name}: stopped following events`)
  })

  let stopped: Promise<void> | undefined
  return {
    subscription: sub,
    stop: () =>
      (stopped ??= (async () => {
        stopping = true
        abort.abort()
        await inHand?.catch(() => {})
        await sub.close()
        await done
      })()),
    async kill() {
      stopping = true
      killed = true
      abort.abort()
      await sub.close().catch(() => {})
    },
  }
}
