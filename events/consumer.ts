import { setTimeout as sleep } from 'node:timers/promises'
import { backoffMs, type BackoffOptions } from '../core/backoff.js'
import { ConsumerHealth, consumers } from '../core/health.js'
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
  /**
   * Pauses between tries to subscribe again after the subscription broke (NATS restarted, the
   * connection dropped mid-batch): bounded exponential, default 200 ms doubling up to 5 s. Each try
   * resumes after the durable's last ack, so nothing is skipped and nothing acked is handled again.
   */
  backoff?: BackoffOptions
  /**
   * Where its state and lag are reported (`/healthz`), default the process's registry; null for a
   * consumer whose delay is not the platform's (a webhook catching up on a subscriber that is down).
   */
  health?: ConsumerHealth | null
}

export interface Consumer {
  /** The current subscription (a new one after each reconnection). */
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
  const health = opts.health === null ? new ConsumerHealth() : (opts.health ?? consumers)
  const fromSeq = opts.from === 'end' ? (await store.lastSeq()) + 1 : (opts.from ?? 1)
  // Commits of no handled type come undecoded (their seq only).
  const subscribeOpts = { fromSeq, ...(types === undefined ? {} : { types }) }
  let sub = await store.subscribe(opts.durableName, subscribeOpts)
  if (opts.catchUp) {
    try {
      await opts.catchUp()
    } catch (err) {
      await sub.close().catch(() => {})
      throw err
    }
  }
  health.register(name, opts.from === 'end' ? fromSeq - 1 : undefined)
  const abort = new AbortController()
  let stopping = false
  let killed = false
  /** The handling and ack of the deliveries in hand, if any. */
  let inHand: Promise<void> | undefined

  /** Runs `fn` until it resolves (true) or the consumer stops (false). */
  const untilDone = async (fn: () => Promise<void>, about: Record<string, unknown>): Promise<boolean> => {
    for (let attempt = 0; ; attempt++) {
      try {
        await fn()
        return true
      } catch (err) {
        if (stopping) return false
        health.failing(name, err)
        log.error({ err, ...about }, `${name}: cannot handle an event; trying again`)
        await sleep(Math.min(retryMs * 2 ** attempt, Math.max(retryMs, 10_000)), undefined, { signal: abort.signal }).catch(() => {})
        if (stopping) return false
      }
    }
  }
  const aboutOne = (e: RecordedEvent) => ({ seq: e.seq, type: e.type, stream: e.stream, correlationId: e.correlationId })

  const handleOne = async (d: Delivery): Promise<void> => {
    const e = d.event
    health.saw(name, e.seq)
    if (wanted(e) && 'handle' in opts && !(await untilDone(() => opts.handle(e, abort.signal), aboutOne(e)))) return
    if (!killed) {
      await d.ack()
      health.progress(name, e.seq)
    }
  }
  const handleBatch = async (batch: Delivery[]): Promise<void> => {
    health.saw(name, batch[0]!.event.seq)
    const events = batch.map((d) => d.event).filter(wanted)
    if (events.length > 0 && 'handleBatch' in opts) {
      const about = { firstSeq: events[0]!.seq, lastSeq: events.at(-1)!.seq, correlationIds: [...new Set(events.map((e) => e.correlationId))] }
      if (!(await untilDone(() => opts.handleBatch(events, abort.signal), about))) return
    }
    if (!killed) {
      await batch.at(-1)!.ack()
      health.progress(name, batch.at(-1)!.event.seq)
    }
  }

  /** Reads the subscription until it ends; throws what broke it. */
  const follow = async (s: Subscription): Promise<void> => {
    if ('handleBatch' in opts) {
      for await (const batch of microBatches(s, opts.batch)) {
        if (stopping) return
        await (inHand = handleBatch(batch))
        inHand = undefined
        if (stopping) return
      }
    } else {
      for await (const d of s) {
        if (stopping) return
        await (inHand = handleOne(d))
        inHand = undefined
        if (stopping) return
      }
    }
  }

  // The subscription breaks when NATS restarts or the connection drops (idle or mid-batch): subscribe
  // again, with bounded backoff, after the durable's last ack. An unacked batch comes again whole.
  const done = (async () => {
    for (let attempt = 0; !stopping; ) {
      let broke: unknown
      try {
        await follow(sub)
      } catch (err) {
        broke = err
      }
      inHand = undefined
      if (stopping) return
      health.reconnecting(name, broke ?? new Error('the subscription ended'))
      log.warn({ err: broke }, `${name}: the event subscription ended; subscribing again`)
      await sub.close().catch(() => {})
      for (;;) {
        await sleep(backoffMs(attempt++, opts.backoff), undefined, { signal: abort.signal }).catch(() => {})
        if (stopping) return
        try {
          sub = await store.subscribe(opts.durableName, subscribeOpts)
          attempt = 0
          health.resumed(name)
          log.info(`${name}: subscribed again; resuming after the last ack`)
          break
        } catch (err) {
          health.reconnecting(name, err)
          log.warn({ err }, `${name}: cannot subscribe yet; trying again`)
        }
      }
    }
  })().catch((err) => {
    if (!stopping) {
      health.stopped(name, err)
      log.error({ err }, `${name}: stopped following events`)
    }
  })

  let stopped: Promise<void> | undefined
  return {
    get subscription() {
      return sub
    },
    stop: () =>
      (stopped ??= (async () => {
        stopping = true
        abort.abort()
        await inHand?.catch(() => {})
        await sub.close()
        await done
        health.remove(name)
      })()),
    async kill() {
      stopping = true
      killed = true
      abort.abort()
      await sub.close().catch(() => {})
      health.remove(name)
    },
  }
}
