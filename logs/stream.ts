import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type PubAck,
  type StreamConfig,
} from '@nats-io/jetstream'
import { connect, nanos, nuid, type NatsConnection } from '@nats-io/transport-node'
import { WharfError } from '../core/errors.js'
import type { Logger } from '../core/log.js'
import { JetStreamPublisher, LogSubjects } from '../events/index.js'
import { decodeBatch, encodeBatch, type LogBatch } from './line.js'

/** How long the server remembers batch ids for de-duplication, ms. */
const DUPLICATE_WINDOW_MS = 120_000
/** How long an ephemeral consumer outlives a reader that vanished, ms. */
const EPHEMERAL_INACTIVE_MS = 10_000
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
  readonly #open = new Set<{ close(): Promise<void> }>()

  private constructor(nc: NatsConnection, jsm: JetStreamManager, opts: LogStreamOptions) {
    this.nc = nc
    this.#jsm = jsm
    this.#js = jetstream(nc)
    this.#publisher = new JetStreamPublisher(nc)
    this.subjects = opts.subjects
    this.#log = opts.logger
  }

  static async connect(opts: LogStreamOptions): Promise<LogStream> {
    let nc: NatsConnection
    try {
      nc = await connect({ servers: opts.servers, name: opts.name ?? 'wharf-logs', maxReconnectAttempts: -1 })
    } catch (err) {
      throw new WharfError('WHARF_UNAVAILABLE', `cannot connect to NATS at ${String(opts.servers)}`, { cause: err })
    }
    return new LogStream(nc, await jetstreamManager(nc), opts)
  }

  /** Makes the stream exist with these limits (creating it, or updating the limits of an existing one). */
  async ensure(limits: LogStreamLimits): Promise<void> {
    const name = this.subjects.stream
    const config: Partial<StreamConfig> & { name: string } = {
      name,
      subjects: [this.subjects.all],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_age: nanos(limits.maxAgeMs),
      max_bytes: limits.maxBytes,
      max_msgs: -1,
      max_msgs_per_subject: -1,
      num_replicas: 1,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
      allow_direct: true,
    }
    try {
      const info = await this.#jsm.streams.info(name)
      if (info.config.max_age !== config.max_age || info.config.max_bytes !== config.max_bytes) {
        await this.#jsm.streams.update(name, { ...info.config, max_age: config.max_age!, max_bytes: config.max_bytes! })
      }
      return
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err
    }
    // Adding a stream with an identical config is idempotent, so racing creators both succeed.
    await this.#jsm.streams.add(config)
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
    const stream = this.subjects.stream
    const info = await this.#jsm.consumers.add(stream, { ...this.#ephemeral(filter, from) })
    let left = info.num_pending
    try {
      if (left === 0) return
      const consumer = this.#js.consumers.getConsumerFromInfo(info)
      while (left > 0) {
        const iter = await consumer.fetch({ max_messages: Math.min(left, PULL_BATCH), expires: 5_000 })
        let got = 0
        for await (const m of iter) {
          got++
          left--
          if (from.untilSeq !== undefined && m.seq > from.untilSeq) return
          const b = this.#stored(m)
          if (b) yield b
          if (left === 0) break
        }
        if (got === 0) throw new WharfError('WHARF_UNAVAILABLE', `reading ${filter} stalled with ${left} messages left`)
      }
    } finally {
      this.#jsm.consumers.delete(stream, info.name).catch((err: unknown) => this.#log?.debug({ err }, 'deleting a log read consumer failed'))
    }
  }

  /** Every batch on `filter` from `fromSeq` (or only new ones), as it is stored, until closed. */
  async follow(filter: string, from: { fromSeq?: number } | 'new'): Promise<LiveFeed> {
    const stream = this.subjects.stream
    const config = from === 'new' ? { ...this.#ephemeral(filter, {}), deliver_policy: DeliverPolicy.New } : this.#ephemeral(filter, from)
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
    try {
      await this.#jsm.streams.delete(this.subjects.stream)
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err
    }
  }

  #ephemeral(filter: string, from: { fromSeq?: number; startTime?: Date }): Partial<ConsumerConfig> {
    const start = from.startTime
      ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: from.startTime.toISOString() }
      : (from.fromSeq ?? 1) > 1
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from.fromSeq! }
        : { deliver_policy: DeliverPolicy.All }
    return {
      name: nuid.next(),
      filter_subject: filter,
      ack_policy: AckPolicy.None,
      ...start,
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: nanos(EPHEMERAL_INACTIVE_MS),
    }
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
