import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream'
import { nanos, type NatsConnection } from '@nats-io/transport-node'
import { ConcurrencyError, WharfError } from '../core/errors.js'
import type { Logger } from '../core/log.js'
import type { Catalogue } from './catalogue.js'
import { connectJetStream, deleteStream, ensureStream, ephemeralConsumer, readExisting, wharfStreamConfig } from './connection.js'
import type { EventEnvelope, NewEvent, RecordedEvent } from './envelope.js'
import { JetStreamPublisher } from './jspublish.js'
import type { AppendOptions, AppendResult, Delivery, EventStore, SubscribeOptions, Subscription } from './store.js'
import { type EventSubjects, subjects as platformSubjects } from './subjects.js'

const DURABLE_NAME = /^[A-Za-z0-9_-]{1,64}$/
/** How long one pull of a durable subscription waits on the server, ms. */
const PULL_EXPIRES_MS = 5_000
/** The server's heartbeat on an idle pull, ms: two missed and the client pulls again. */
const PULL_HEARTBEAT_MS = 1_000
/** Messages per pull when reading. */
const READ_BATCH = 5_000
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
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * The event log on NATS JetStream: one stream (file storage, unlimited retention), one subject per
 * event stream, `Nats-Msg-Id` = event id for idempotent appends and `expect.lastSubjectSequence` for
 * optimistic concurrency.
 *
 * A multi-event append publishes one message per event, each expecting the previous one's `seq`, so
 * another writer can never interleave; but it is not atomic across a crash: the first events may be
 * written and the rest not. Retrying the append with the same ids (and expected version) completes it.
 */
export class JetStreamEventStore implements EventStore {
  readonly subjects: EventSubjects
  readonly #nc: NatsConnection
  readonly #js: JetStreamClient
  readonly #jsm: JetStreamManager
  readonly #catalogue: Catalogue
  readonly #log: Logger | undefined
  readonly #open = new Set<JetStreamSubscription>()
  readonly #publisher: JetStreamPublisher

  private constructor(nc: NatsConnection, jsm: JetStreamManager, opts: JetStreamEventStoreOptions) {
    this.#nc = nc
    this.#jsm = jsm
    this.#js = jetstream(nc)
    this.#publisher = new JetStreamPublisher(nc)
    this.#catalogue = opts.catalogue
    this.subjects = opts.subjects ?? platformSubjects
    this.#log = opts.logger
  }

  /** Connects and makes sure the event stream exists (creating it if not). */
  static async connect(opts: JetStreamEventStoreOptions): Promise<JetStreamEventStore> {
    const { nc, jsm } = await connectJetStream({ servers: opts.servers, name: opts.name ?? 'wharf-events' })
    try {
      const store = new JetStreamEventStore(nc, jsm, opts)
      await ensureStream(jsm, wharfStreamConfig(store.subjects.stream, store.subjects.all))
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
    const seqs: number[] = []
    const dups: boolean[] = []
    let duplicate = true
    let expected = opts.expectedVersion
    // Filled only after a conflict: ids already in the stream, found by reading it.
    let known: Map<string, number> | undefined
    for (const envelope of envelopes) {
      let seq = known?.get(envelope.id)
      let dup = seq !== undefined
      if (seq === undefined) {
        try {
          const ack = await this.#publisher.publish(subject, encoder.encode(JSON.stringify(envelope)), {
            msgID: envelope.id,
            ...(expected === 'any' ? {} : { expectLastSubjectSequence: expected }),
          })
          seq = ack.seq
          dup = ack.duplicate
        } catch (err) {
          if (!isWrongLastSequence(err) || expected === 'any') throw err
          // The server checks ids before the expected sequence, but only within its duplicate window
          // (and not in that order on every server version): a retry that arrives later conflicts with
          // its own earlier write. If the id is in the stream, it is a duplicate, not a conflict.
          const found = await this.#idsSince(subject, expected + 1)
          seq = found.ids.get(envelope.id)
          if (seq === undefined) throw new ConcurrencyError(stream, expected, actualOf(err) ?? found.version, err)
          known = found.ids
          dup = true
        }
      }
      seqs.push(seq)
      dups.push(dup)
      duplicate &&= dup
      if (expected !== 'any') expected = seq
    }
    // A duplicate was written by an earlier attempt, with its own timestamps: answer what the log holds.
    const recorded = await Promise.all(envelopes.map(async (e, i) => (dups[i] ? this.#stored(seqs[i]!) : this.#catalogue.upcast({ ...e, seq: seqs[i]! }))))
    return { lastSeq: seqs.at(-1)!, seqs, duplicate, events: recorded }
  }

  async readStream(stream: string, opts: { fromSeq?: number } = {}): Promise<{ version: number; events: RecordedEvent[] }> {
    const subject = this.subjects.subjectOf(stream)
    const events: RecordedEvent[] = []
    for await (const m of this.#read(subject, opts.fromSeq ?? 1)) events.push(this.#decode(m))
    // Nothing at or after fromSeq does not mean the stream is empty.
    const version = events.at(-1)?.seq ?? ((opts.fromSeq ?? 1) > 1 ? await this.#version(subject) : 0)
    return { version, events }
  }

  async *readAll(fromSeq = 1, opts: { batch?: number } = {}): AsyncIterable<RecordedEvent> {
    for await (const m of this.#read(undefined, fromSeq, opts.batch)) yield this.#decode(m)
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
    if (info && opts.reset) {
      await this.#jsm.consumers.delete(stream, durableName)
      info = undefined
    }
    if (!info) {
      const fromSeq = Math.max(1, opts.fromSeq ?? 1)
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
    const consumer = this.#js.consumers.getConsumerFromInfo(info)
    // Short pulls with a heartbeat every second: when the server ends a pull with a 409 status,
    // nats.js pulls again only after two missed heartbeats, 30 s with the defaults (30 s pulls, 15 s
    // heartbeats). A projection stalled that long under load here (no redelivery, no error logged).
    const messages = await consumer.consume({ max_messages: READ_BATCH, expires: PULL_EXPIRES_MS, idle_heartbeat: PULL_HEARTBEAT_MS })
    const sub = new JetStreamSubscription(
      durableName,
      messages,
      (m) => this.#decode(m),
      (seq) => this.#confirmAck(durableName, seq),
      () => this.#open.delete(sub),
    )
    this.#open.add(sub)
    return sub
  }

  async deleteSubscription(durableName: string): Promise<void> {
    for (const sub of [...this.#open]) if (sub.name === durableName) await sub.close()
    try {
      await this.#jsm.consumers.delete(this.subjects.stream, durableName)
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err
    }
  }

  /** Closes the subscriptions, then drains the connection (pending publishes and acks are sent). */
  async close(): Promise<void> {
    for (const sub of [...this.#open]) await sub.close()
    this.#publisher.close()
    if (!this.#nc.isClosed()) await this.#nc.drain()
  }

  /** Deletes the whole event stream. For tests that made their own namespace. */
  async destroy(): Promise<void> {
    await deleteStream(this.#jsm, this.subjects.stream)
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

  #decode(m: JsMsg): RecordedEvent {
    const envelope = JSON.parse(decoder.decode(m.data)) as EventEnvelope
    return this.#catalogue.upcast({ ...envelope, seq: m.seq })
  }

  /** The event at `seq`, read back from the log. */
  async #stored(seq: number): Promise<RecordedEvent> {
    const m = await this.#jsm.direct.getMessage(this.subjects.stream, { seq })
    if (!m) throw new WharfError('WHARF_INTERNAL', `event ${seq} is missing from ${this.subjects.stream}`)
    return this.#catalogue.upcast({ ...(JSON.parse(decoder.decode(m.data)) as EventEnvelope), seq: m.seq })
  }

  /** The seq of the last message on `subject`, 0 when there is none. */
  async streamVersion(stream: string): Promise<number> {
    return this.#version(this.subjects.subjectOf(stream))
  }

  async #version(subject: string): Promise<number> {
    const m = await this.#jsm.direct.getMessage(this.subjects.stream, { last_by_subj: subject })
    return m?.seq ?? 0
  }

  /** Ids of the events on `subject` from `fromSeq`, with their seqs, and the subject's version if any were found. */
  async #idsSince(subject: string, fromSeq: number): Promise<{ ids: Map<string, number>; version: number | undefined }> {
    const ids = new Map<string, number>()
    let version: number | undefined
    for await (const m of this.#read(subject, fromSeq)) {
      ids.set((JSON.parse(decoder.decode(m.data)) as EventEnvelope).id, m.seq)
      version = m.seq
    }
    return { ids, version }
  }

  /** The messages from `fromSeq` (on `subject`, or all) that exist when the read starts. */
  #read(subject: string | undefined, fromSeq: number, batch = READ_BATCH): AsyncGenerator<JsMsg> {
    return readExisting(this.#js, this.#jsm, this.subjects.stream, ephemeralConsumer(subject, { fromSeq }), { batch, log: this.#log })
  }
}

class JetStreamSubscription implements Subscription {
  #closed = false
  #iterating = false
  #lastAcked: JsMsg | undefined
  #ackTimer: NodeJS.Immediate | undefined
  readonly #messages: ConsumerMessages
  readonly #decode: (m: JsMsg) => RecordedEvent
  /** Resolves once the server's ack floor has reached `seq`. */
  readonly #confirmAck: (seq: number) => Promise<void>
  readonly #onClose: () => void

  constructor(
    readonly name: string,
    messages: ConsumerMessages,
    decode: (m: JsMsg) => RecordedEvent,
    confirmAck: (seq: number) => Promise<void>,
    onClose: () => void,
  ) {
    this.#messages = messages
    this.#decode = decode
    this.#confirmAck = confirmAck
    this.#onClose = onClose
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Delivery> {
    if (this.#iterating) throw new Error(`subscription ${this.name} is already being iterated`)
    this.#iterating = true
    for await (const m of this.#messages) {
      if (this.#closed) break
      yield {
        event: this.#decode(m),
        pending: m.info.pending,
        // Sent without waiting for the server's reply, so a subscriber that acks every event is not held
        // to one round trip each; `close` waits until the server has the last ack. An ack lost in a crash
        // only means the events come again (at-least-once).
        ack: async () => {
          if (this.#lastAcked && this.#lastAcked.seq >= m.seq) return
          this.#lastAcked = m
          // AckPolicy.All: only the newest ack matters, so acks made in one turn of the event loop are sent as one.
          this.#ackTimer ??= setImmediate(() => this.#sendAck())
        },
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#onClose()
    // Not awaited: the iterator only reports closed once whatever it buffered has been iterated, which a
    // subscriber that stopped iterating never does. Unsubscribing happens at once either way.
    void this.#messages.close()
    this.#sendAck()
    if (this.#lastAcked) await this.#confirmAck(this.#lastAcked.seq)
  }

  #sendAck(): void {
    if (this.#ackTimer) clearImmediate(this.#ackTimer)
    this.#ackTimer = undefined
    this.#lastAcked?.ack()
  }
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
