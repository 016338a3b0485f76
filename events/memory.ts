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
  /** log[seq - 1]: the events of the commit at seq, stored as JSON would return them, never upcast. */
  log: RecordedEvent[][]
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
 * `seq` from 1 per commit (one append; its events share the `seq` and carry `index` and `commitSize`
 * when there are several), a stream's version is the `seq` of its last commit, duplicate event ids are
 * not written again (for the life of the store, where JetStream remembers them for its duplicate
 * window), an append is all or nothing, and a durable subscription resumes after its last ack.
 * Unacked deliveries are delivered again when the subscription is reopened; `ackWaitMs` is accepted
 * and ignored (no redelivery while a subscription stays open).
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
    // Events already in the log (a retry) are answered as the log holds them, duplicate before the
    // version check as nats-server does; they must lead the append. The rest is one new commit.
    const have: RecordedEvent[] = []
    for (const envelope of envelopes) {
      const seq = s.seqOfId.get(envelope.id)
      if (seq === undefined) break
      have.push(s.log[seq - 1]!.find((e) => e.id === envelope.id)!)
    }
    const fresh = envelopes.slice(have.length)
    const expected = have.length > 0 ? have.at(-1)!.seq : opts.expectedVersion
    if (fresh.length === 0 && have.length === 0 && expected !== 'any' && expected !== version()) throw new ConcurrencyError(stream, expected, version())
    let written: RecordedEvent[] = []
    if (fresh.length > 0) {
      if (expected !== 'any' && expected !== version()) throw new ConcurrencyError(stream, expected, version())
      if (fresh.some((e) => s.seqOfId.has(e.id))) throw new WharfError('WHARF_INVALID_EVENT', 'an append mixes events already in the log with new ones')
      const seq = s.log.length + 1
      const commitSize = fresh.length
      written = fresh.map((e, index) => ({
        ...(JSON.parse(JSON.stringify(e)) as EventEnvelope),
        seq,
        ...(commitSize > 1 ? { index, commitSize } : {}),
      }))
      s.log.push(written)
      for (const e of written) s.seqOfId.set(e.id, seq)
      const seqs = s.bySeqOfStream.get(stream)
      if (seqs) seqs.push(seq)
      else s.bySeqOfStream.set(stream, [seq])
      for (const wake of [...s.waiters]) wake()
    }
    const recorded = [...have, ...written]
    return {
      lastSeq: recorded.at(-1)?.seq ?? version(),
      seqs: recorded.map((e) => e.seq),
      duplicate: recorded.length > 0 && fresh.length === 0,
      // A copy, upcast: a duplicate answers what the log holds (an earlier attempt wrote it, with its own timestamps).
      events: recorded.map((e) => this.#catalogue.upcast(structuredClone(e))),
    }
  }

  async streamVersion(stream: string): Promise<number> {
    return this.#state.bySeqOfStream.get(stream)?.at(-1) ?? 0
  }

  async readStream(stream: string, opts: { fromSeq?: number } = {}): Promise<{ version: number; events: RecordedEvent[] }> {
    const seqs = this.#state.bySeqOfStream.get(stream) ?? []
    const from = opts.fromSeq ?? 1
    const events = seqs.filter((seq) => seq >= from).flatMap((seq) => this.#read(seq))
    return { version: seqs.at(-1) ?? 0, events }
  }

  async *readAll(fromSeq = 1): AsyncIterable<RecordedEvent> {
    const end = this.#state.log.length
    for (let seq = Math.max(1, fromSeq); seq <= end; seq++) yield* this.#read(seq)
  }

  async *readAllChunks(fromSeq = 1, opts: { batch?: number } = {}): AsyncIterable<RecordedEvent[]> {
    const end = this.#state.log.length
    const size = Math.max(1, opts.batch ?? 5000)
    for (let seq = Math.max(1, fromSeq); seq <= end; seq += size) {
      const events: RecordedEvent[] = []
      for (let s = seq; s < seq + size && s <= end; s++) events.push(...this.#read(s))
      yield events
    }
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

  /** The events of the commit at `seq`: copies, upcast (callers may not change the log through what they read). */
  #read(seq: number): RecordedEvent[] {
    return this.#state.log[seq - 1]!.map((e) => this.#catalogue.upcast(structuredClone(e)))
  }
}

class MemorySubscription implements Subscription {
  #closed = false
  #iterating = false
  #wake: (() => void) | undefined
  readonly #durable: Durable
  readonly #state: State
  readonly #read: (seq: number) => RecordedEvent[]
  readonly #onClose: () => void

  constructor(
    readonly name: string,
    durable: Durable,
    state: State,
    read: (seq: number) => RecordedEvent[],
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
        const events = this.#read(seq)
        for (let i = 0; i < events.length; i++) {
          if (this.#closed) return
          // An event acks every commit wholly behind it: its own when it ends it, else the ones before.
          const floor = i === events.length - 1 ? seq : seq - 1
          yield {
            event: events[i]!,
            pending: this.#state.log.length - seq + events.length - 1 - i,
            ack: async () => {
              if (this.#state.durables.get(this.name) === this.#durable) this.#durable.ackFloor = Math.max(this.#durable.ackFloor, floor)
            },
          }
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
