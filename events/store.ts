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
  /** `seq` of the commit written (the last one, for a retry that completed an older cut-short append): the stream's new version. */
  lastSeq: number
  /** `seq` of each event, in order: one append is one commit, so they are all `lastSeq` unless a retry completed an older append. */
  seqs: number[]
  /** True when every event was already in the log (a retried append with the same ids). */
  duplicate: boolean
  /** The events as recorded (envelopes with their `seq`), in order: what a caller folds into its state. */
  events: RecordedEvent[]
}

/**
 * One event handed to a durable subscriber, in log order, with no event missing (a delivery lost on
 * the wire is read again before anything after it). The events of one commit come one after another;
 * `endsCommit(event)` tells the last. Ack after its effects are durable.
 */
export interface Delivery {
  event: RecordedEvent
  /** Events after this one that the subscription has not delivered yet (0 = caught up); a commit not yet delivered counts as one. */
  pending: number
  /**
   * Acknowledges every commit wholly delivered up to this event: with its own commit when the event
   * ends it (`endsCommit`), else only the commits before. A commit is never acked in part, so a crash
   * in its middle delivers all of it again.
   */
  ack(): Promise<void>
}

export interface SubscribeOptions {
  /** Where a new durable subscription starts (default 1). Ignored when it already exists, unless `reset`. */
  fromSeq?: number
  /** Drop any saved position and start at `fromSeq`. */
  reset?: boolean
  /** How long an unacked delivery waits before it is delivered again, ms, default 30_000. */
  ackWaitMs?: number
  /**
   * The event types the subscriber reads (a hint): a commit with none of them may come as one
   * {@link NOT_READ} event in their place (its seq only), not decoded. Default: every commit decoded.
   */
  types?: Iterable<string>
}

/** The type of the event that stands for a commit the subscriber does not read (see {@link SubscribeOptions.types}). */
export const NOT_READ = '(not read)'

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
   * Appends events to one stream as one commit, all or nothing, after checking `expectedVersion`. Each
   * event is validated against its schema first (`WHARF_INVALID_EVENT`, nothing written). A version
   * mismatch throws `ConcurrencyError`. Appending events whose ids are already in the log writes
   * nothing again (a retry); events after those that are not (an append cut short by a writer from
   * before commits) are written as a commit after them.
   */
  append(stream: string, events: readonly NewEvent[], opts: AppendOptions): Promise<AppendResult>

  /** Every event of one stream, upcast to the newest versions, oldest first; and the stream's version. */
  readStream(stream: string, opts?: { fromSeq?: number }): Promise<{ version: number; events: RecordedEvent[] }>

  /** Every event in the log from `fromSeq` (default 1) up to the end at the time of the call. */
  readAll(fromSeq?: number, opts?: { batch?: number }): AsyncIterable<RecordedEvent>

  /**
   * The events of {@link readAll}, in the same order, as arrays: those of up to `batch` commits
   * (default 5000) at a time, whole commits each, none empty. For readers of millions (a replay).
   */
  readAllChunks(fromSeq?: number, opts?: { batch?: number }): AsyncIterable<RecordedEvent[]>

  /** The `seq` of the newest commit in the log (0 when empty). */
  lastSeq(): Promise<number>

  /** A stream's version (the `seq` of its last commit, 0 when it has none), without reading it. */
  streamVersion(stream: string): Promise<number>

  /** A durable subscription named `durableName` (letters, digits, `-` and `_`). */
  subscribe(durableName: string, opts?: SubscribeOptions): Promise<Subscription>

  /** Removes a durable subscription and its position. */
  deleteSubscription(durableName: string): Promise<void>

  close(): Promise<void>
}
