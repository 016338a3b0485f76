import type { EventContext, NewEvent, RecordedEvent } from './envelope.js'

/**
 * What `append` checks before writing:
 * - a number n: the stream's version must be exactly n (0 = the stream has no events yet);
 * - `'any'`: no check.
 */
export type ExpectedVersion = number | 'any'

export interface AppendOptions extends EventContext {
  expectedVersion: ExpectedVersion
}

export interface AppendResult {
  /** `seq` of the last event written: the stream's new version. */
  lastSeq: number
  /** `seq` of each event, in order. */
  seqs: number[]
  /** True when every event was already in the log (a retried append with the same ids). */
  duplicate: boolean
  /** The events as recorded (envelopes with their `seq`), in order: what a caller folds into its state. */
  events: RecordedEvent[]
}

/** One event handed to a durable subscriber. Ack after its effects are durable. */
export interface Delivery {
  event: RecordedEvent
  /** Events after this one that the subscription has not delivered yet (0 = caught up). */
  pending: number
  /** Acknowledges this event and every earlier one of the subscription. */
  ack(): Promise<void>
}

export interface SubscribeOptions {
  /** Where a new durable subscription starts (default 1). Ignored when it already exists, unless `reset`. */
  fromSeq?: number
  /** Drop any saved position and start at `fromSeq`. */
  reset?: boolean
  /** How long an unacked delivery waits before it is delivered again, ms, default 30_000. */
  ackWaitMs?: number
}

/**
 * A durable subscription to every event in log order. Iterating yields deliveries; events not
 * acked (the subscriber crashed) are delivered again, to this or the next subscriber of the same
 * name. `close` stops delivery and keeps the position.
 */
export interface Subscription extends AsyncIterable<Delivery> {
  readonly name: string
  close(): Promise<void>
}

/**
 * The event log. Adapters: JetStream (`jetstream.ts`) for the platform, in-memory (`memory.ts`) for
 * unit tests. Both pass the one contract suite (`store.contract.ts`).
 */
export interface EventStore {
  /**
   * Appends events to one stream, after checking `expectedVersion`. Each event is validated against
   * its schema first (`WHARF_INVALID_EVENT`, nothing written). A version mismatch throws
   * `ConcurrencyError`. Appending events whose ids are already in the log writes nothing again.
   */
  append(stream: string, events: readonly NewEvent[], opts: AppendOptions): Promise<AppendResult>

  /** Every event of one stream, upcast to the newest versions, oldest first; and the stream's version. */
  readStream(stream: string, opts?: { fromSeq?: number }): Promise<{ version: number; events: RecordedEvent[] }>

  /** Every event in the log from `fromSeq` (default 1) up to the end at the time of the call. */
  readAll(fromSeq?: number, opts?: { batch?: number }): AsyncIterable<RecordedEvent>

  /** The `seq` of the newest event in the log (0 when empty). */
  lastSeq(): Promise<number>

  /** A stream's version (the `seq` of its last event, 0 when it has none), without reading it. */
  streamVersion(stream: string): Promise<number>

  /** A durable subscription named `durableName` (letters, digits, `-` and `_`). */
  subscribe(durableName: string, opts?: SubscribeOptions): Promise<Subscription>

  /** Removes a durable subscription and its position. */
  deleteSubscription(durableName: string): Promise<void>

  close(): Promise<void>
}
