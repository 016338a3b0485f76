import { ConcurrencyError, WharfError } from '../core/errors.js'
import type { Catalogue } from './catalogue.js'
import type { EventEnvelope, NewEvent, RecordedEvent } from './envelope.js'
import type { AppendOptions, AppendResult, Delivery, EventStore, SubscribeOptions, Subscription } from './store.js'

const DURABLE_NAME = /^[A-Za-z0-9_-]{1,64}$/

interface Durable {
  /** Every event up to this seq is acknowledged. */
  ackFloor: number
}

/** What a store and its reopened siblings share: the log and the durable positions. */
interface State {
  /** log[seq - 1], stored as JSON would return it, never upcast. */
  log: RecordedEvent[]
  bySeqOfStream: Map<string, number[]>
  seqOfId: Map<string, number>
  durables: Map<string, Durable>
  /** Woken on every append, so that open subscriptions deliver it. */
  waiters: Set<() => void>
}

export interface MemoryEventStoreOptions {
  catalogue: Catalogue
}

/**
 * The in-memory event log, for unit tests. It keeps the JetStream adapter's semantics: one global
 * `seq` from 1, a stream's version is the `seq` of its last event, duplicate event ids are not written
 * again (for the life of the store, where JetStream remembers them for its duplicate window), and a
 * durable subscription resumes after its last ack. An append is atomic here (JetStream's multi-event
 * append is not across a crash). Unacked deliveries are delivered again when the subscription is
 * reopened; `ackWaitMs` is accepted and ignored (no redelivery while a subscription stays open).
 */
export class MemoryEventStore implements EventStore {
  readonly #catalogue: Catalogue
  readonly #state: State
  readonly #open = new Set<MemorySubscription>()

  constructor(opts: MemoryEventStoreOptions, state?: State) {
    this.#catalogue = opts.catalogue
    this.#state = state ?? { log: [], bySeqOfStream: new Map(), seqOfId: new Map(), durables: new Map(), waiters: new Set() }
  }

  /**
   * Another store over the same log and durable positions, as a process restart would see it;
   * `catalogue` defaults to this store's (pass another to read old events with newer upcasters).
   */
  reopen(opts: Partial<MemoryEventStoreOptions> = {}): MemoryEventStore {
    return new MemoryEventStore({ catalogue: opts.catalogue ?? this.#catalogue }, this.#state)
  }

  async append(stream: string, events: readonly NewEvent[], opts: AppendOptions): Promise<AppendResult> {
    const envelopes = this.#catalogue.prepare(stream, events, opts)
    const s = this.#state
    const version = (): number => s.bySeqOfStream.get(stream)?.at(-1) ?? 0
    // Decide every event first (duplicate before the version check, as nats-server does), then
    // write: nothing is written when any event conflicts.
    const plan: { envelope: EventEnvelope; seq: number; duplicate: boolean }[] = []
    let next = s.log.length + 1
    let expected = opts.expectedVersion
    let streamVersion = version()
    for (const envelope of envelopes) {
      const existing = s.seqOfId.get(envelope.id)
      if (existing !== undefined) {
        plan.push({ envelope, seq: existing, duplicate: true })
        if (expected !== 'any') expected = existing
        continue
      }
      if (expected !== 'any' && expected !== streamVersion) throw new ConcurrencyError(stream, expected, streamVersion)
      plan.push({ envelope, seq: next, duplicate: false })
      streamVersion = next
      if (expected !== 'any') expected = next
      next++
    }
    if (plan.length === 0 && expected !== 'any' && expected !== streamVersion) throw new ConcurrencyError(stream, expected, streamVersion)
    for (const p of plan) {
      if (p.duplicate) continue
      const recorded = { ...(JSON.parse(JSON.stringify(p.envelope)) as EventEnvelope), seq: p.seq }
      s.log.push(recorded)
      s.seqOfId.set(recorded.id, recorded.seq)
      const seqs = s.bySeqOfStream.get(stream)
      if (seqs) seqs.push(recorded.seq)
      else s.bySeqOfStream.set(stream, [recorded.seq])
    }
    if (plan.some((p) => !p.duplicate)) for (const wake of [...s.waiters]) wake()
    const seqs = plan.map((p) => p.seq)
    return {
      lastSeq: seqs.at(-1) ?? version(),
      seqs,
      duplicate: plan.length > 0 && plan.every((p) => p.duplicate),
      // A duplicate answers what the log holds (an earlier attempt wrote it, with its own timestamps).
      events: plan.map((p) => this.#catalogue.upcast(p.duplicate ? { ...s.log[p.seq - 1]! } : { ...p.envelope, seq: p.seq })),
    }
  }

  async streamVersion(stream: string): Promise<number> {
    return this.#state.bySeqOfStream.get(stream)?.at(-1) ?? 0
  }

  async readStream(stream: string, opts: { fromSeq?: number } = {}): Promise<{ version: number; events: RecordedEvent[] }> {
    const seqs = this.#state.bySeqOfStream.get(stream) ?? []
    const from = opts.fromSeq ?? 1
    const events = seqs.filter((seq) => seq >= from).map((seq) => this.#read(seq))
    return { version: seqs.at(-1) ?? 0, events }
  }

  async *readAll(fromSeq = 1): AsyncIterable<RecordedEvent> {
    const end = this.#state.log.length
    for (let seq = Math.max(1, fromSeq); seq <= end; seq++) yield this.#read(seq)
  }

  async lastSeq(): Promise<number> {
    return this.#state.log.length
  }

  async subscribe(durableName: string, opts: SubscribeOptions = {}): Promise<Subscription> {
    if (!DURABLE_NAME.test(durableName)) throw new WharfError('WHARF_INVALID', `invalid durable name ${JSON.stringify(durableName)}`)
    const durables = this.#state.durables
    let durable = durables.get(durableName)
    if (!durable || opts.reset) {
      durable = { ackFloor: Math.max(1, opts.fromSeq ?? 1) - 1 }
      durables.set(durableName, durable)
    }
    const sub = new MemorySubscription(
      durableName,
      durable,
      this.#state,
      (seq) => this.#read(seq),
      () => this.#open.delete(sub),
    )
    this.#open.add(sub)
    return sub
  }

  async deleteSubscription(durableName: string): Promise<void> {
    this.#state.durables.delete(durableName)
    for (const sub of [...this.#open]) if (sub.name === durableName) await sub.close()
  }

  async close(): Promise<void> {
    for (const sub of [...this.#open]) await sub.close()
  }

  /** A copy, upcast: callers may not change the log through what they read. */
  #read(seq: number): RecordedEvent {
    return this.#catalogue.upcast(structuredClone(this.#state.log[seq - 1]!))
  }
}

class MemorySubscription implements Subscription {
  #closed = false
  #iterating = false
  #wake: (() => void) | undefined
  readonly #durable: Durable
  readonly #state: State
  readonly #read: (seq: number) => RecordedEvent
  readonly #onClose: () => void

  constructor(
    readonly name: string,
    durable: Durable,
    state: State,
    read: (seq: number) => RecordedEvent,
    onClose: () => void,
  ) {
    this.#durable = durable
    this.#state = state
    this.#read = read
    this.#onClose = onClose
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Delivery> {
    if (this.#iterating) throw new Error(`subscription ${this.name} is already being iterated`)
    this.#iterating = true
    // Delivery restarts after the last ack: whatever was delivered but not acked comes again.
    let next = this.#durable.ackFloor + 1
    while (!this.#closed) {
      if (next <= this.#state.log.length) {
        const seq = next++
        yield {
          event: this.#read(seq),
          pending: this.#state.log.length - seq,
          ack: async () => {
            if (this.#state.durables.get(this.name) === this.#durable) this.#durable.ackFloor = Math.max(this.#durable.ackFloor, seq)
          },
        }
        continue
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve
        this.#state.waiters.add(resolve)
      })
      if (this.#wake) this.#state.waiters.delete(this.#wake)
      this.#wake = undefined
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#wake?.()
    this.#onClose()
  }
}
