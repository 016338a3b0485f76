import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type PubAck,
} from '@nats-io/jetstream'
import { nanos, type NatsConnection } from '@nats-io/transport-node'
import type { Logger } from '../core/log.js'
import { connectJetStream, deleteStream, ensureStream, ephemeralConsumer, readExisting, wharfStreamConfig } from '../events/connection.js'
import { JetStreamPublisher, type LogSubjects } from '../events/index.js'
import { decodeBatch, encodeBatch, type LogBatch } from './line.js'

/** Messages per pull. */
const PULL_BATCH = 1_000

/** How much the log stream keeps: whichever limit is reached first drops the oldest lines. */
export interface LogStreamLimits {
  /** ms, e.g. 24 h. */
  maxAgeMs: number
  maxBytes: number
}

/** The log stream's limits from the config (`logs.streamHours` hours, `logs.streamMb` MiB), as the logger and logspout ensure them. */
export function logLimits(cfg: { logs: { streamHours: number; streamMb: number } }): LogStreamLimits {
  return { maxAgeMs: cfg.logs.streamHours * 3_600_000, maxBytes: cfg.logs.streamMb * 1024 * 1024 }
}

/** A batch as stored: its stream sequence, subject and the time the server stored it. */
export interface StoredBatch {
  seq: number
  subject: string
  batch: LogBatch
}

/** A live read; `close` stops it and removes its consumer. */
export interface LiveFeed extends AsyncIterable<StoredBatch> {
  close(): Promise<void>
}

/** A durable read: ack a delivery once it is handled (acks everything before it too). */
export interface DurableFeed extends AsyncIterable<StoredBatch & { ack(): void }> {
  close(): Promise<void>
}

export interface LogStreamOptions {
  servers: string | string[]
  subjects: LogSubjects
  /** Connection name shown by the server, default `wharf-logs`. */
  name?: string
  logger?: Logger
  /** Copies of the stream in a NATS cluster (`WHARF_NATS_REPLICAS`): 1 (default), 3 or 5. */
  replicas?: number
}

/**
 * The log plane on NATS JetStream: one stream (file storage, bounded by age and bytes, discarding
 * the oldest), one subject per source (see {@link LogSubjects}), a batch of lines per message, and
 * `Nats-Msg-Id` per batch so a retried publish is stored once. Also the connection the logger answers
 * requests on.
 */
export class LogStream {
  readonly subjects: LogSubjects
  readonly nc: NatsConnection
  readonly #js: JetStreamClient
  readonly #jsm: JetStreamManager
  readonly #publisher: JetStreamPublisher
  readonly #log: Logger | undefined
  readonly #replicas: number
  readonly #open = new Set<{ close(): Promise<void> }>()

  private constructor(nc: NatsConnection, jsm: JetStreamManager, opts: LogStreamOptions) {
    this.nc = nc
    this.#jsm = jsm
    this.#js = jetstream(nc)
    this.#publisher = new JetStreamPublisher(nc)
    this.subjects = opts.subjects
    this.#log = opts.logger
    this.#replicas = opts.replicas ?? 1
  }

  static async connect(opts: LogStreamOptions): Promise<LogStream> {
    const { nc, jsm } = await connectJetStream({ servers: opts.servers, name: opts.name ?? 'wharf-logs' })
    return new LogStream(nc, jsm, opts)
  }

  /** Makes the stream exist with these limits (creating it, or updating the limits of an existing one). */
  async ensure(limits: LogStreamLimits): Promise<void> {
    await ensureStream(this.#jsm, wharfStreamConfig(this.subjects.stream, this.subjects.all, { replicas: this.#replicas, ...limits }))
  }

  /** Publishes one batch without waiting for the one before (pipelined); resolves on the server's ack. */
  publish(subject: string, batch: LogBatch, msgID: string): Promise<PubAck> {
    return this.#publisher.publish(subject, encodeBatch(batch), { msgID })
  }

  /** The newest batch on `subject`, or undefined when the stream holds none. */
  async last(subject: string): Promise<StoredBatch | undefined> {
    const m = await this.#jsm.direct.getMessage(this.subjects.stream, { last_by_subj: subject })
    const batch = m ? decodeBatch(m.data) : undefined
    return m && batch ? { seq: m.seq, subject: m.subject, batch } : undefined
  }

  /** Removes every batch on `filter` from the stream (an app's lines when it is destroyed). */
  async purge(filter: string): Promise<number> {
    try {
      return (await this.#jsm.streams.purge(this.subjects.stream, { filter })).purged
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return 0
      throw err
    }
  }

  /** The sequence of the newest message (0 when the stream is empty or missing). */
  async lastSeq(): Promise<number> {
    try {
      return (await this.#jsm.streams.info(this.subjects.stream)).state.last_seq
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return 0
      throw err
    }
  }

  /**
   * The batches on `filter` that exist when the read starts, from `fromSeq` (default 1) or from
   * those stored at or after `startTime`, up to `untilSeq` when given.
   */
  async *read(filter: string, from: { fromSeq?: number; startTime?: Date; untilSeq?: number } = {}): AsyncGenerator<StoredBatch> {
    for await (const m of readExisting(this.#js, this.#jsm, this.subjects.stream, ephemeralConsumer(filter, from), { batch: PULL_BATCH, log: this.#log })) {
      if (from.untilSeq !== undefined && m.seq > from.untilSeq) return
      const b = this.#stored(m)
      if (b) yield b
    }
  }

  /** Every batch on `filter` from `fromSeq` (or only new ones), as it is stored, until closed. */
  async follow(filter: string, from: { fromSeq?: number } | 'new'): Promise<LiveFeed> {
    const stream = this.subjects.stream
    const config = from === 'new' ? { ...ephemeralConsumer(filter, {}), deliver_policy: DeliverPolicy.New } : ephemeralConsumer(filter, from)
    const info = await this.#jsm.consumers.add(stream, config)
    const messages = await this.#js.consumers.getConsumerFromInfo(info).consume({ max_messages: PULL_BATCH })
    return this.#feed(messages, async () => {
      await this.#jsm.consumers.delete(stream, info.name).catch(() => {})
    })
  }

  /**
   * A durable read named `durable`: a new one starts after the stream's current end (only new
   * lines); an existing one where its acks left it (AckPolicy.All).
   */
  async subscribe(durable: string): Promise<DurableFeed> {
    const stream = this.subjects.stream
    let info
    try {
      info = await this.#jsm.consumers.info(stream, durable)
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err
      info = await this.#jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.All,
        deliver_policy: DeliverPolicy.New,
        ack_wait: nanos(30_000),
        max_ack_pending: 20_000,
        max_deliver: -1,
      })
    }
    const messages = await this.#js.consumers.getConsumerFromInfo(info).consume({ max_messages: PULL_BATCH })
    const feed = this.#feed(messages, async () => {}, true)
    return feed as DurableFeed
  }

  async close(): Promise<void> {
    for (const f of [...this.#open]) await f.close()
    this.#publisher.close()
    if (!this.nc.isClosed()) await this.nc.drain()
  }

  /** Deletes the stream. For tests that made a namespace of their own. */
  async destroy(): Promise<void> {
    await deleteStream(this.#jsm, this.subjects.stream)
  }

  #stored(m: JsMsg): StoredBatch | undefined {
    const batch = decodeBatch(m.data)
    if (!batch) {
      this.#log?.warn({ seq: m.seq, subject: m.subject }, 'a message of the log stream is not a batch of lines; skipped')
      return undefined
    }
    return { seq: m.seq, subject: m.subject, batch }
  }

  #feed(messages: ConsumerMessages, cleanup: () => Promise<void>, acks = false): LiveFeed {
    let closed = false
    const stored = (m: JsMsg) => this.#stored(m)
    const feed = {
      async *[Symbol.asyncIterator]() {
        for await (const m of messages) {
          if (closed) break
          const b = stored(m)
          if (!b) {
            if (acks) m.ack()
            continue
          }
          yield acks ? { ...b, ack: () => m.ack() } : b
        }
      },
      close: async () => {
        if (closed) return
        closed = true
        this.#open.delete(feed)
        void messages.close()
        await cleanup()
      },
    }
    this.#open.add(feed)
    return feed
  }
}
