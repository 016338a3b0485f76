import { isAscii } from 'node:buffer'
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type PubAck,
  type StoredMsg,
} from '@nats-io/jetstream'
import { nanos, type NatsConnection } from '@nats-io/transport-node'
import { ConcurrencyError, WharfError } from '../core/errors.js'
import type { Logger } from '../core/log.js'
import { consumerLabel, consumerPending, observeAppended } from '../core/metrics.js'
import type { Catalogue } from './catalogue.js'
import {
  connectJetStream,
  deleteStream,
  ensureStream,
  ephemeralConsumer,
  getMessage,
  readExisting,
  readExistingBatches,
  readSubjectByGets,
  wharfStreamConfig,
} from './connection.js'
import { decodeCommit, decodeCommitText, encodeCommit } from './commit.js'
import type { EventEnvelope, NewEvent, RecordedEvent } from './envelope.js'
import { contiguous, type ContiguousOptions } from './gaps.js'
import { JetStreamPublisher } from './jspublish.js'
import { forEachPacked, readOffThread } from './offthread.js'
import {
  NOT_READ,
  type AppendOptions,
  type AppendResult,
  type Delivery,
  type EventStore,
  type ExpectedVersion,
  type SubscribeOptions,
  type Subscription,
} from './store.js'
import { type EventSubjects, subjects as platformSubjects } from './subjects.js'

const DURABLE_NAME = /^[A-Za-z0-9_-]{1,64}$/
/** How long the making of a read's consumer may take before it is asked for again under a new name, ms. */
const READ_CONSUMER_TIMEOUT_MS = 2_000
/** How long one pull of a durable subscription waits on the server, ms. */
const PULL_EXPIRES_MS = 5_000
/** The server's heartbeat on an idle pull, ms (nats.js's least): two missed and the client pulls again. */
const PULL_HEARTBEAT_MS = 500
/**
 * A live subscription that has had no delivery for this long, ms, while this process appended a later
 * commit that long ago, pulls again (see {@link JetStreamEventStore} `#watchStalls`).
 */
const STALL_MS = 150
/**
 * A read of one subject (an event stream) gets up to this many messages one by one (message gets
 * answered by the stream's leader, no consumer), then the rest through a consumer (one pull per
 * batch): a command's read usually catches a cached state up by a few events, and a consumer made
 * for it may be placed on a server that is gone (see `addConsumer` in connection.ts).
 */
const GETS_READ_MAX = 128
/** Messages per pull when reading. */
const READ_BATCH = 5_000
/** Commits kept decoded for the other live subscriptions of the process (see `#decoded`). */
const DECODED_KEPT = 1_000
/** Deliveries a durable subscriber may hold unacked before the server waits for an ack. */
const MAX_ACK_PENDING = 20_000

export interface JetStreamEventStoreOptions {
  /** NATS server URL(s), e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[]
  catalogue: Catalogue
  /** Subject and stream names; default the platform's (`WHARF_EVENTS`, `wharf.ev.>`). Tests pass their own namespace. */
  subjects?: EventSubjects
  /** Connection name shown by the server (`nats server report connections`), default `wharf-events`. */
  name?: string
  logger?: Logger
  /** Copies of the stream in a NATS cluster (`WHARF_NATS_REPLICAS`): 1 (default), 3 or 5. */
  replicas?: number
  /**
   * From how many commits on `readAllChunks` reads on a thread of its own (events/offthread.ts), default
   * {@link OFF_THREAD_FROM}; 0: never.
   */
  offThreadFrom?: number
}

/** Commits from which `readAllChunks` reads on a thread of its own: a rebuild's or a replay's read, not a short catch-up. */
export const OFF_THREAD_FROM = 20_000

/**
 * The event log on NATS JetStream: one stream (file storage, unlimited retention), one subject per
 * event stream, `Nats-Msg-Id` = event id for idempotent appends and `expect.lastSubjectSequence` for
 * optimistic concurrency.
 *
 * One append is one message (a commit, see `encodeCommit`), with `Nats-Msg-Id` = the first event's
 * id: the server writes all of its events or none, and a retry with the same ids is a duplicate. A
 * durable subscription notices a delivery lost on the wire (a gap in the stream sequence) and reads
 * it again before anything after it (see `contiguous`).
 */
export class JetStreamEventStore implements EventStore {
  readonly subjects: EventSubjects
  readonly #nc: NatsConnection
  readonly #js: JetStreamClient
  readonly #jsm: JetStreamManager
  /** For the reads' consumers: a short timeout, so that one placed on a lost server is asked for again soon (see `addConsumer`). */
  readonly #readJsm: JetStreamManager
  readonly #catalogue: Catalogue
  readonly #log: Logger | undefined
  readonly #open = new Set<JetStreamSubscription>()
  /** The newest commit this process appended (its seq) and when its ack came (performance.now()). */
  #appended = { seq: 0, at: 0 }
  #stallTimer: NodeJS.Timeout | undefined
  /** When the stream's head was last asked for (performance.now()), and whether that is under way. */
  #polledAt = -Infinity
  #polling = false
  /**
   * The commits live subscriptions decoded lately, by seq: each of the process's subscribers that
   * reads a commit (a dozen read models, the router, the scheduler, ...) gets the same events, decoded
   * once. Subscribers only read the events they are handed.
   */
  readonly #decoded = new Map<number, { bytes: number; events: RecordedEvent[] }>()
  readonly #publisher: JetStreamPublisher
  /** For a reader thread, which connects on its own. */
  readonly #servers: string | string[]
  readonly #name: string
  readonly #offThreadFrom: number

  private constructor(nc: NatsConnection, jsm: JetStreamManager, readJsm: JetStreamManager, opts: JetStreamEventStoreOptions) {
    this.#nc = nc
    this.#jsm = jsm
    this.#readJsm = readJsm
    this.#js = jetstream(nc)
    this.#publisher = new JetStreamPublisher(nc)
    this.#catalogue = opts.catalogue
    this.subjects = opts.subjects ?? platformSubjects
    this.#log = opts.logger
    this.#servers = opts.servers
    this.#name = opts.name ?? 'wharf-events'
    this.#offThreadFrom = opts.offThreadFrom ?? OFF_THREAD_FROM
  }

  /** Connects and makes sure the event stream exists (creating it if not). */
  static async connect(opts: JetStreamEventStoreOptions): Promise<JetStreamEventStore> {
    const { nc, jsm } = await connectJetStream({ servers: opts.servers, name: opts.name ?? 'wharf-events' })
    try {
      const readJsm = await jetstreamManager(nc, { timeout: READ_CONSUMER_TIMEOUT_MS, checkAPI: false })
      const store = new JetStreamEventStore(nc, jsm, readJsm, opts)
      await ensureStream(jsm, wharfStreamConfig(store.subjects.stream, store.subjects.all, { replicas: opts.replicas ?? 1 }))
      return store
    } catch (err) {
      await nc.close().catch(() => {})
      throw err
    }
  }

  async append(stream: string, events: readonly NewEvent[], opts: AppendOptions): Promise<AppendResult> {
    const envelopes = this.#catalogue.prepare(stream, events, opts)
    const subject = this.subjects.subjectOf(stream)
    if (envelopes.length === 0) {
      const version = await this.#version(subject)
      if (opts.expectedVersion !== 'any' && opts.expectedVersion !== version) throw new ConcurrencyError(stream, opts.expectedVersion, version)
      return { lastSeq: version, seqs: [], duplicate: false, events: [] }
    }
    const result = await this.#commit(stream, subject, envelopes, opts.expectedVersion)
    if (!result.duplicate) observeAppended(result.events)
    if (result.lastSeq > this.#appended.seq) this.#appended = { seq: result.lastSeq, at: performance.now() }
    return result
  }

  /**
   * Publishes `envelopes` as one message (one commit, see `encodeCommit`), its id the first event's id.
   * A duplicate (the id is in the log: a retried append) answers what the log holds, and writes the
   * events that are not there yet (an append cut short by a writer from before commits, which wrote
   * one message per event) as a commit after them.
   */
  async #commit(stream: string, subject: string, envelopes: EventEnvelope[], expected: ExpectedVersion): Promise<AppendResult> {
    let ack: PubAck
    try {
      ack = await this.#publisher.publish(subject, encodeCommit(envelopes), {
        msgID: envelopes[0]!.id,
        ...(expected === 'any' ? {} : { expectLastSubjectSequence: expected }),
      })
    } catch (err) {
      if (!isWrongLastSequence(err) || expected === 'any') throw err
      // The server checks ids before the expected sequence, but only within its duplicate window
      // (and not in that order on every server version): a retry that arrives later conflicts with
      // its own earlier write. If the id is in the stream, it is a duplicate, not a conflict.
      const found = await this.#eventsSince(subject, expected + 1)
      const at = found.events.findIndex((e) => e.id === envelopes[0]!.id)
      if (at < 0) throw new ConcurrencyError(stream, expected, actualOf(err) ?? found.version, err)
      return this.#completed(stream, subject, envelopes, found.events.slice(at))
    }
    if (!ack.duplicate) {
      const recorded = envelopes.length === 1 ? [{ ...envelopes[0]!, seq: ack.seq }] : decodeCommitOf(envelopes, ack.seq)
      return { lastSeq: ack.seq, seqs: recorded.map((e) => e.seq), duplicate: false, events: recorded.map((e) => this.#catalogue.upcast(e)) }
    }
    return this.#completed(stream, subject, envelopes, (await this.#eventsSince(subject, ack.seq)).events)
  }

  /** The answer to an append whose first event is `stored[0]`: `stored` holds the log's events of the subject from there. */
  async #completed(stream: string, subject: string, envelopes: EventEnvelope[], stored: RecordedEvent[]): Promise<AppendResult> {
    let n = 0
    while (n < envelopes.length && n < stored.length && stored[n]!.id === envelopes[n]!.id) n++
    const have = stored.slice(0, n)
    if (n === 0) throw new WharfError('WHARF_INTERNAL', `the log says event ${envelopes[0]!.id} of ${stream} is written, but it is not where it says`)
    if (n === envelopes.length) return { lastSeq: have.at(-1)!.seq, seqs: have.map((e) => e.seq), duplicate: true, events: have }
    // The events after the first n are not in the log: unless another writer got in between, they follow.
    const rest = await this.#commit(stream, subject, envelopes.slice(n), have.at(-1)!.seq)
    return { lastSeq: rest.lastSeq, seqs: [...have.map((e) => e.seq), ...rest.seqs], duplicate: false, events: [...have, ...rest.events] }
  }

  async readStream(stream: string, opts: { fromSeq?: number } = {}): Promise<{ version: number; events: RecordedEvent[] }> {
    const subject = this.subjects.subjectOf(stream)
    const events: RecordedEvent[] = []
    for await (const m of this.#read(subject, opts.fromSeq ?? 1)) for (const e of this.#decode(m.data, m.seq)) events.push(e)
    // Nothing at or after fromSeq does not mean the stream is empty.
    const version = events.at(-1)?.seq ?? ((opts.fromSeq ?? 1) > 1 ? await this.#version(subject) : 0)
    return { version, events }
  }

  async *readAll(fromSeq = 1, opts: { batch?: number } = {}): AsyncIterable<RecordedEvent> {
    // A plain loop: `yield*` over an array costs an extra await per event in an async generator.
    for await (const events of this.readAllChunks(fromSeq, opts)) for (const e of events) yield e
  }

  async *readAllChunks(fromSeq = 1, opts: { batch?: number } = {}): AsyncIterable<RecordedEvent[]> {
    const batch = opts.batch ?? READ_BATCH
    // A large read (a replay) on a thread of its own; a few commits are not worth starting one.
    if (this.#offThreadFrom > 0 && (await this.lastSeq()) - fromSeq + 1 >= this.#offThreadFrom) {
      const chunks = readOffThread({ servers: this.#servers, name: `${this.#name}-reader`, stream: this.subjects.stream, fromSeq, batch, log: this.#log })
      for await (const p of chunks) {
        const events: RecordedEvent[] = []
        // A chunk of ASCII only (most are: JSON.stringify escapes nothing else, and names are ASCII) as one
        // string, each message a slice of it: no UTF-8 decoder call per message.
        const bytes = Buffer.from(p.payload.buffer, p.payload.byteOffset, p.payload.byteLength)
        if (isAscii(bytes)) {
          const text = bytes.toString('latin1')
          let start = 0
          for (let i = 0; i < p.seqs.length; i++) {
            const end = p.ends[i]!
            for (const e of this.#upcast(decodeCommitText(text.slice(start, end), p.seqs[i]!))) events.push(e)
            start = end
          }
        } else {
          forEachPacked(p, (data, seq) => {
            for (const e of this.#decode(data, seq)) events.push(e)
          })
        }
        yield events
      }
      return
    }
    const config = ephemeralConsumer(undefined, { fromSeq })
    for await (const messages of readExistingBatches(this.#js, this.#readJsm, this.subjects.stream, config, {
      batch,
      log: this.#log,
    })) {
      const events: RecordedEvent[] = []
      for (const m of messages) for (const e of this.#decode(m.data, m.seq)) events.push(e)
      yield events
    }
  }

  async lastSeq(): Promise<number> {
    const info = await this.#jsm.streams.info(this.subjects.stream)
    return info.state.last_seq
  }

  async subscribe(durableName: string, opts: SubscribeOptions = {}): Promise<Subscription> {
    if (!DURABLE_NAME.test(durableName)) throw new WharfError('WHARF_INVALID', `invalid durable name ${JSON.stringify(durableName)}`)
    const stream = this.subjects.stream
    let info: ConsumerInfo | undefined
    try {
      info = await this.#jsm.consumers.info(stream, durableName)
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err
    }
    const ackWait = opts.ackWaitMs === undefined ? undefined : nanos(opts.ackWaitMs)
    /** The start of a consumer made here, where its first delivery must be. */
    let created: number | undefined
    if (info && opts.reset) {
      await this.#jsm.consumers.delete(stream, durableName)
      info = undefined
    }
    if (!info) {
      const fromSeq = Math.max(1, opts.fromSeq ?? 1)
      created = fromSeq
      info = await this.#jsm.consumers.add(stream, {
        durable_name: durableName,
        ack_policy: AckPolicy.All,
        ...(fromSeq > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq } : { deliver_policy: DeliverPolicy.All }),
        ack_wait: ackWait ?? nanos(30_000),
        max_ack_pending: MAX_ACK_PENDING,
        max_deliver: -1,
      })
    } else if (info.num_ack_pending > 0 || info.num_waiting > 0 || info.delivered.stream_seq > info.ack_floor.stream_seq) {
      // A previous subscriber left deliveries unacked (it crashed, or closed with messages still in its
      // buffer). The server would only redeliver them after ack_wait, and meanwhile hand out later
      // events, so an ack of those would skip them. Recreating the consumer right after the ack floor
      // restores strict order. One live subscriber per durable name is assumed.
      const config: Partial<ConsumerConfig> = { ...info.config, ...(ackWait === undefined ? {} : { ack_wait: ackWait }) }
      if (info.ack_floor.stream_seq > 0) {
        config.deliver_policy = DeliverPolicy.StartSequence
        config.opt_start_seq = info.ack_floor.stream_seq + 1
      }
      await this.#jsm.consumers.delete(stream, durableName)
      info = await this.#jsm.consumers.add(stream, config)
    } else if (ackWait !== undefined && info.config.ack_wait !== ackWait) {
      info = await this.#jsm.consumers.update(stream, durableName, { ack_wait: ackWait })
    }
    // Where the first delivery must be: right after the ack floor (a recreated or idle consumer has
    // nothing delivered past it), else where the consumer was configured to start.
    const expected = created ?? (info.ack_floor.stream_seq > 0 ? info.ack_floor.stream_seq + 1 : Math.max(1, info.config.opt_start_seq ?? 1))
    const consumer = this.#js.consumers.getConsumerFromInfo(info)
    // Short pulls with a heartbeat every second: when the server ends a pull with a 409 status,
    // nats.js pulls again only after two missed heartbeats, 30 s with the defaults (30 s pulls, 15 s
    // heartbeats). A projection stalled that long under load here (no redelivery, no error logged).
    const messages = await consumer.consume({ max_messages: READ_BATCH, expires: PULL_EXPIRES_MS, idle_heartbeat: PULL_HEARTBEAT_MS })
    void this.#watchPulls(durableName, messages.status())
    const types = opts.types === undefined ? undefined : new Set(opts.types)
    const reads = types && mayHold(types)
    const sub = new JetStreamSubscription(durableName, messages, {
      expected,
      decode: (data, seq) => {
        // Decoded already for another subscriber: its types say it, with no scan of the bytes.
        const kept = this.#keptDecoded(data, seq)
        if (kept) return types && !kept.some((e) => types.has(e.type)) ? [notRead(seq)] : kept
        return reads && !reads(data) ? [notRead(seq)] : this.#decodeShared(data, seq)
      },
      fetch: async (seq) => (await getMessage(this.#readJsm, stream, { seq }, this.#log)) ?? undefined,
      firstSeq: async () => (await this.#jsm.streams.info(stream)).state.first_seq,
      onGap: (from, to) => this.#log?.warn({ durableName, from, to }, 'deliveries were lost on the way; reading them again'),
      confirmAck: (seq) => this.#confirmAck(durableName, seq),
      onClose: () => {
        this.#open.delete(sub)
        if (this.#open.size === 0) {
          clearInterval(this.#stallTimer)
          this.#stallTimer = undefined
        }
      },
    })
    this.#open.add(sub)
    this.#stallTimer ??= setInterval(() => this.#watchStalls(), STALL_MS / 2).unref()
    return sub
  }

  /**
   * Logs what stalls a subscription's pulls: a pull the server ended early (a 409 status: nats.js pulls
   * again only after two missed heartbeats, 2 s here) and the missed heartbeats themselves.
   */
  async #watchPulls(durableName: string, notices: AsyncIterable<{ type: string; code?: number }>): Promise<void> {
    try {
      for await (const n of notices) {
        // A pull that expired (408) is pulled again at once.
        if (n.type === 'next' || n.type === 'heartbeat' || n.type === 'discard' || (n.type === 'debug' && n.code === 408)) continue
        this.#log?.warn({ durableName, notice: n }, 'a pull of the subscription was ended or stalled')
      }
    } catch {
      // The subscription closed.
    }
  }

  async deleteSubscription(durableName: string): Promise<void> {
    for (const sub of [...this.#open]) if (sub.name === durableName) await sub.close()
    try {
      await this.#jsm.consumers.delete(this.subjects.stream, durableName)
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err
    }
  }

  /**
   * Pulls again for each live subscription that the server has sent nothing for {@link STALL_MS}
   * while the log holds a commit past what it delivered. Under load nats-server (2.9) at times holds
   * no pull request for a consumer while nats.js counts one outstanding: nothing comes, not even
   * heartbeats, until nats.js misses two of them and pulls again (1 s with 0.5 s heartbeats; 2 s with
   * 1 s heartbeats: a `config:set` waiting for that read model waited as long). The log's head is
   * known two ways: a commit this process appended (given {@link STALL_MS} to arrive), and, for the
   * commits of other processes (the router's events are all appended by others), the stream's last
   * seq asked of the server when a subscription has had nothing for {@link STALL_MS} (at most once per
   * {@link STALL_MS}; a pull again that was not needed costs a round trip, nothing else).
   */
  #watchStalls(): void {
    const now = performance.now()
    const own = this.#appended
    if (own.seq > 0 && now - own.at >= STALL_MS) this.#pullStalled(own.seq, now)
    if (this.#polling || now - this.#polledAt < STALL_MS) return
    let quiet = false
    for (const sub of this.#open) if (sub.quiet(now, STALL_MS)) quiet = true
    if (!quiet) return
    this.#polling = true
    this.#polledAt = now
    this.lastSeq()
      .then(
        (head) => this.#pullStalled(head, performance.now()),
        () => {},
      )
      .finally(() => (this.#polling = false))
  }

  /** Pulls again for each subscription that {@link JetStreamSubscription.stalled} behind `head`. */
  #pullStalled(head: number, now: number): void {
    for (const sub of this.#open) {
      if (!sub.stalled(head, now, STALL_MS)) continue
      this.#log?.info({ durableName: sub.name, head }, 'no delivery on a subscription behind the log; pulling again')
      sub.pullAgain()
    }
  }

  /** Closes the subscriptions, then drains the connection (pending publishes and acks are sent). */
  async close(): Promise<void> {
    clearInterval(this.#stallTimer)
    this.#stallTimer = undefined
    for (const sub of [...this.#open]) await sub.close()
    this.#publisher.close()
    if (!this.#nc.isClosed()) await this.#nc.drain()
  }

  /** Deletes the whole event stream. For tests that made their own namespace. */
  async destroy(): Promise<void> {
    await deleteStream(this.#jsm, this.subjects.stream)
    this.#decoded.clear()
  }

  /**
   * Waits (up to ~2 s) until the consumer's ack floor reaches `seq`. A fire-and-forget ack has left the
   * client after `flush`, but the server applies acks asynchronously, and `ackAck` cannot confirm an
   * ack that was already sent.
   */
  async #confirmAck(durableName: string, seq: number): Promise<void> {
    if (this.#nc.isClosed()) return
    await this.#nc.flush()
    for (let attempt = 0; attempt < 200; attempt++) {
      try {
        const info = await this.#jsm.consumers.info(this.subjects.stream, durableName)
        if (info.ack_floor.stream_seq >= seq) return
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound) return
        throw err
      }
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    this.#log?.warn({ durableName, seq }, 'the ack of a closing subscription was not confirmed; those events may be delivered again')
  }

  /** The events of the commit at `seq` if a live subscription decoded it lately (see {@link #decoded}). */
  #keptDecoded(data: Uint8Array, seq: number): RecordedEvent[] | undefined {
    // The size too: a stream deleted and made again (tests) reuses its seqs.
    const kept = this.#decoded.get(seq)
    return kept && kept.bytes === data.length ? kept.events : undefined
  }

  /** {@link #decode} once for every live subscription (see {@link #decoded}). */
  #decodeShared(data: Uint8Array, seq: number): RecordedEvent[] {
    const kept = this.#keptDecoded(data, seq)
    if (kept) return kept
    const events = this.#decode(data, seq)
    this.#decoded.set(seq, { bytes: data.length, events })
    if (this.#decoded.size > DECODED_KEPT) this.#decoded.delete(this.#decoded.keys().next().value!)
    return events
  }

  /** The events of the message at `seq`, upcast. */
  #decode(data: Uint8Array, seq: number): RecordedEvent[] {
    return this.#upcast(decodeCommit(data, seq))
  }

  /** `events`, each upcast in place. */
  #upcast(events: RecordedEvent[]): RecordedEvent[] {
    for (let i = 0; i < events.length; i++) events[i] = this.#catalogue.upcast(events[i]!)
    return events
  }

  /** The seq of the last message on `subject`, 0 when there is none. */
  async streamVersion(stream: string): Promise<number> {
    return this.#version(this.subjects.subjectOf(stream))
  }

  async #version(subject: string): Promise<number> {
    const m = await getMessage(this.#readJsm, this.subjects.stream, { last_by_subj: subject }, this.#log)
    return m?.seq ?? 0
  }

  /** The events on `subject` from `fromSeq`, and the subject's version if any were found. */
  async #eventsSince(subject: string, fromSeq: number): Promise<{ events: RecordedEvent[]; version: number | undefined }> {
    const events: RecordedEvent[] = []
    let version: number | undefined
    for await (const m of this.#read(subject, fromSeq)) {
      for (const e of this.#decode(m.data, m.seq)) events.push(e)
      version = m.seq
    }
    return { events, version }
  }

  /**
   * The messages of `subject` from `fromSeq`: the first {@link GETS_READ_MAX} by message gets, the rest
   * (those that exist when that part of the read starts) through a consumer.
   */
  async *#read(subject: string, fromSeq: number): AsyncGenerator<{ seq: number; data: Uint8Array }> {
    const stream = this.subjects.stream
    const first = await readSubjectByGets(this.#readJsm, stream, subject, fromSeq, GETS_READ_MAX, this.#log)
    yield* first.messages
    if (first.done) return
    yield* readExisting(this.#js, this.#readJsm, stream, ephemeralConsumer(subject, { fromSeq: first.next }), { batch: READ_BATCH, log: this.#log })
  }
}

/**
 * Whether a commit may hold an event of `types`, from its bytes (no decode): JSON.stringify writes
 * each envelope's type as `"type":"<type>"`. A nested `type` field with the same value only costs a decode.
 */
export function mayHold(types: Iterable<string>): (data: Uint8Array) => boolean {
  const needles = [...new Set(types)].map((t) => Buffer.from(`"type":${JSON.stringify(t)}`))
  return (data) => {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    return needles.some((n) => buf.indexOf(n) >= 0)
  }
}

/** The event that stands for a commit a subscriber does not read. */
function notRead(seq: number): RecordedEvent {
  return { id: '', type: NOT_READ, version: 1, stream: '', occurredAt: '', actor: '', causationId: null, correlationId: '', data: null, seq }
}

interface SubscriptionParts extends Omit<ContiguousOptions<StoredMsg>, 'fetch'> {
  decode(data: Uint8Array, seq: number): RecordedEvent[]
  /** The message at `seq` read again (a message get), undefined when there is none. */
  fetch(seq: number): Promise<StoredMsg | undefined>
  /** Resolves once the server's ack floor has reached `seq`. */
  confirmAck(seq: number): Promise<void>
  onClose(): void
}

/**
 * Deliveries in stream order with no gap (see {@link contiguous}), one per event: the events of a
 * commit come one after another from its one message. Acks are AckPolicy.All acks of a message, so an
 * event acks the last message that is wholly behind it: its own when it ends its commit, else the one
 * before. A message read again after a lost delivery has no ack subject of its own; the next one's ack covers it.
 */
class JetStreamSubscription implements Subscription {
  #closed = false
  #iterating = false
  /** The seq of the newest message the server delivered, and when it was taken (performance.now()). */
  #delivered: { seq: number; at: number }
  /** When this subscription last pulled again on its own (performance.now()). */
  #pulledAt = -Infinity
  #lastAcked: JsMsg | undefined
  #ackTimer: NodeJS.Immediate | undefined
  readonly #messages: ConsumerMessages
  readonly #parts: SubscriptionParts

  constructor(
    readonly name: string,
    messages: ConsumerMessages,
    parts: SubscriptionParts,
  ) {
    this.#messages = messages
    this.#parts = parts
    this.#delivered = { seq: parts.expected - 1, at: performance.now() }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Delivery> {
    if (this.#iterating) throw new Error(`subscription ${this.name} is already being iterated`)
    this.#iterating = true
    /** The newest delivered message (with an ack subject) whose events have all been handed out. */
    let behind: JsMsg | undefined
    for await (const item of contiguous(this.#messages, { ...this.#parts, fetch: (seq) => this.#fetch(seq) })) {
      if (this.#closed) break
      const live = item.kind === 'live' ? item.msg : undefined
      const seq = item.msg.seq
      this.#delivered = { seq: Math.max(seq, this.#delivered.seq), at: performance.now() }
      const events = this.#parts.decode(item.msg.data, seq)
      // Messages after this one that the server has not sent yet (plus, for a message read again, the ones up to the delivery that revealed the gap).
      const after = item.kind === 'live' ? item.msg.info.pending : item.before.info.pending + (item.before.seq - seq)
      for (let i = 0; i < events.length; i++) {
        if (this.#closed) return
        const target = live && i === events.length - 1 ? live : behind
        if (i === 0) consumerPending.set({ consumer: consumerLabel.of(this.name) }, after + events.length - 1)
        yield {
          event: events[i]!,
          pending: after + events.length - 1 - i,
          // Sent without waiting for the server's reply, so a subscriber that acks every event is not held
          // to one round trip each; `close` waits until the server has the last ack. An ack lost in a crash
          // only means the events come again (at-least-once).
          ack: async () => {
            if (!target || (this.#lastAcked && this.#lastAcked.seq >= target.seq)) return
            this.#lastAcked = target
            // AckPolicy.All: only the newest ack matters, so acks made in one turn of the event loop are sent as one.
            this.#ackTimer ??= setImmediate(() => this.#sendAck())
          },
        }
      }
      if (live) behind = live
    }
  }

  /** True when it is live and the server has sent nothing for `ms`, nor has it pulled again meanwhile. */
  quiet(now: number, ms: number): boolean {
    return !this.#closed && this.#iterating && now - this.#delivered.at >= ms && now - this.#pulledAt >= ms
  }

  /**
   * True when the server has sent nothing for `ms` (none taken, none waiting in the client's buffer)
   * although the log holds `head`, past what it delivered, and it did not pull again in the last `ms`.
   */
  stalled(head: number, now: number, ms: number): boolean {
    if (this.#closed || !this.#iterating || head <= this.#delivered.seq) return false
    if (now - this.#delivered.at < ms || now - this.#pulledAt < ms) return false
    return this.#messages.getPending() === 0
  }

  /** Asks the server for messages again, forgetting the pulls nats.js counts as outstanding. */
  pullAgain(): void {
    this.#pulledAt = performance.now()
    const m = this.#messages as ConsumerMessages & { resetPending?: () => Promise<boolean> }
    m.resetPending?.().catch(() => {})
  }

  /**
   * The message at `seq` read again, retried (a gap shows up around a reconnect, when a request may
   * fail too) until it is read or the subscription closes.
   */
  async #fetch(seq: number): Promise<StoredMsg | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#parts.fetch(seq)
      } catch (err) {
        if (this.#closed) throw err
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2_000)))
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#parts.onClose()
    // Not awaited: the iterator only reports closed once whatever it buffered has been iterated, which a
    // subscriber that stopped iterating never does. Unsubscribing happens at once either way.
    void this.#messages.close()
    this.#sendAck()
    if (this.#lastAcked) await this.#parts.confirmAck(this.#lastAcked.seq)
  }

  #sendAck(): void {
    if (this.#ackTimer) clearImmediate(this.#ackTimer)
    this.#ackTimer = undefined
    this.#lastAcked?.ack()
  }
}

/** The events of a commit just written, as `decodeCommit` reads them back. */
function decodeCommitOf(envelopes: EventEnvelope[], seq: number): RecordedEvent[] {
  const commitSize = envelopes.length
  return envelopes.map((e, index) => ({ ...e, seq, index, commitSize }))
}

function isWrongLastSequence(err: unknown): err is JetStreamApiError {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  )
}

/** The stream's actual version from `wrong last sequence: 12`, when the server says it. */
function actualOf(err: JetStreamApiError): number | undefined {
  const m = /wrong last sequence: (\d+)/.exec(err.message)
  return m ? Number(m[1]) : undefined
}
