import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type MsgRequest,
  type NextMsgRequest,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StoredMsg,
  type StreamConfig,
} from '@nats-io/jetstream'
import { connect, nanos, nuid, type NatsConnection, type Server } from '@nats-io/transport-node'
import { WharfError } from '../core/errors.js'
import { natsServers } from './servers.js'

/** How long the server remembers message ids (`Nats-Msg-Id`) for de-duplication, ms. */
export const DUPLICATE_WINDOW_MS = 120_000
/** How long an ephemeral consumer outlives a reader that vanished, ms. */
const EPHEMERAL_INACTIVE_MS = 10_000
/**
 * The client's ping to its server, ms; two unanswered and the connection is stale: the client moves
 * to another server of the cluster. A server whose host is cut off sends no RST, so without this a
 * connection to it hangs until TCP gives up (the library's default ping, 2 min, takes 4-6 min).
 * Here a lost server is noticed within 4-6 s.
 */
export const PING_INTERVAL_MS = 2_000
const MAX_PINGS_OUT = 2
/**
 * How long a dial may take (TCP connect, INFO, the first PONG), ms; the library's default is 20 s.
 * A server whose host is cut off answers no SYN: each dial to it costs this long.
 */
export const CONNECT_TIMEOUT_MS = 5_000

/**
 * The server a (re)connect dials: the one of `pool` dialled least recently (never dialled first),
 * the library's pick (index 0) among equals. nats.js 3 dials first, after a lost connection, the
 * very server it lost (the one it connected to is kept at the head of its pool): with that server's
 * host cut off, every client on it waited out the dial's timeout (20 s, after the 4-6 s to notice
 * the connection stale) before it tried another server, and its appends with it. This picks
 * another server of the cluster first, and goes round them all before it tries one again.
 */
export function leastRecentlyDialled(pool: ReadonlyArray<Server>): Server | null {
  let best: Server | null = null
  for (const s of pool) if (best === null || s.lastConnect < best.lastConnect) best = s
  return best
}

export interface JetStreamConnectOptions {
  /** NATS server URL(s), e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[]
  /** Connection name shown by the server (`nats server report connections`). */
  name: string
}

/**
 * Connects to NATS for JetStream: reconnects forever after a lost connection (the platform's NATS
 * restarts under running services). A server that cannot be reached is `WHARF_UNAVAILABLE`.
 */
export async function connectJetStream(opts: JetStreamConnectOptions): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  let nc: NatsConnection
  // `nats://a:4222,nats://b:4222`: every server of a cluster, so a client finds another when one is lost.
  // A user and password in the URLs become the client's options; messages name the servers without them.
  const { shown, ...servers } = natsServers(opts.servers)
  try {
    nc = await connect({
      ...servers,
      name: opts.name,
      maxReconnectAttempts: -1,
      pingInterval: PING_INTERVAL_MS,
      maxPingOut: MAX_PINGS_OUT,
      timeout: CONNECT_TIMEOUT_MS,
      reconnectToServer: leastRecentlyDialled,
    })
  } catch (err) {
    throw new WharfError('WHARF_UNAVAILABLE', `cannot connect to NATS at ${shown}: ${(err as Error).message}`, { cause: err })
  }
  try {
    return { nc, jsm: await jetstreamManager(nc) }
  } catch (err) {
    await nc.close().catch(() => {})
    throw err
  }
}

/** How much a stream keeps: whichever limit is reached first drops the oldest messages. Default: everything, forever. */
export interface StreamLimits {
  /** ms; 0 or omitted: no limit. */
  maxAgeMs?: number
  /** Omitted: no limit. */
  maxBytes?: number
  /** Copies of every message on as many servers of a NATS cluster: 1 (default), 3 or 5. */
  replicas?: number
}

export type WharfStreamConfig = Partial<StreamConfig> & { name: string; subjects: string[]; max_age: number; max_bytes: number }

/**
 * The config of a stream of Wharf's (the event log, the log plane): one replica on file storage,
 * bounded only by `limits` (discarding the oldest), message ids remembered for
 * {@link DUPLICATE_WINDOW_MS}, and direct gets allowed (reads of one message without a consumer).
 */
export function wharfStreamConfig(name: string, subject: string, limits: StreamLimits = {}): WharfStreamConfig {
  return {
    name,
    subjects: [subject],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_msgs: -1,
    max_bytes: limits.maxBytes ?? -1,
    max_age: nanos(limits.maxAgeMs ?? 0),
    max_msgs_per_subject: -1,
    num_replicas: limits.replicas ?? 1,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    allow_direct: true,
  }
}

/**
 * Makes the stream exist with `config`: creates it, or updates the limits (`max_age`, `max_bytes`) and replicas of an
 * existing one that differ. An existing stream that does not take `config.subjects` is `WHARF_INTERNAL`
 * (another stream has the name). Safe to race: adding a stream with an identical config succeeds twice.
 */
export async function ensureStream(jsm: JetStreamManager, config: WharfStreamConfig): Promise<void> {
  try {
    const info = await jsm.streams.info(config.name)
    if (!config.subjects.every((s) => info.config.subjects?.includes(s))) {
      throw new WharfError('WHARF_INTERNAL', `stream ${config.name} exists but does not take ${config.subjects.join(', ')}`)
    }
    const replicas = config.num_replicas ?? info.config.num_replicas
    if (info.config.max_age !== config.max_age || info.config.max_bytes !== config.max_bytes || info.config.num_replicas !== replicas) {
      // A cluster raises (or lowers) a stream's replicas in place: the servers copy it over.
      await jsm.streams.update(config.name, { ...info.config, max_age: config.max_age, max_bytes: config.max_bytes, num_replicas: replicas })
    }
    return
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err
  }
  await jsm.streams.add(config)
}

/** Deletes a stream and everything in it; a missing stream is no error. For tests that made a namespace of their own. */
export async function deleteStream(jsm: JetStreamManager, name: string): Promise<void> {
  try {
    await jsm.streams.delete(name)
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err
  }
}

/**
 * The config of an ephemeral, in-memory, unacked consumer of `filter` (or of the whole stream), from
 * `startTime` when given, else from `fromSeq` (default 1). The server removes it 10 s after its reader vanished.
 */
export function ephemeralConsumer(filter: string | undefined, from: { fromSeq?: number; startTime?: Date } = {}): Partial<ConsumerConfig> & { name: string } {
  const start = from.startTime
    ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: from.startTime.toISOString() }
    : (from.fromSeq ?? 1) > 1
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from.fromSeq! }
      : { deliver_policy: DeliverPolicy.All }
  return {
    name: nuid.next(),
    ...(filter === undefined ? {} : { filter_subject: filter }),
    ack_policy: AckPolicy.None,
    ...start,
    mem_storage: true,
    num_replicas: 1,
    inactive_threshold: nanos(EPHEMERAL_INACTIVE_MS),
  }
}

/**
 * The messages that exist when the read starts, through the ephemeral consumer `config` (see
 * {@link ephemeralConsumer}), one by one: {@link readExistingBatches}.
 */
export async function* readExisting(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { name: string },
  opts: { batch: number; log?: ReadLog | undefined },
): AsyncGenerator<JsMsg> {
  for await (const messages of readExistingBatches(js, jsm, stream, config, opts)) for (const m of messages) yield m
}

/**
 * The messages that exist when the read starts, through the ephemeral consumer `config` (see
 * {@link ephemeralConsumer}): its creation answers how many there are, so the read knows where it ends
 * without another request. Pulls `batch` messages at a time and yields them in arrays of up to
 * 1000 (a replay reads millions: one await per thousand, not per message); the consumer is deleted
 * when the read ends.
 *
 * A delivery lost on the wire (an unacked consumer never delivers it again) shows as a jump in the
 * consumer's delivery sequence, which counts every message it sends, filtered or not; the read then
 * goes on with a new consumer from right after the last message it yielded, so it neither skips the
 * lost message nor reads past the end.
 */
/** What a read logs: a logger, or the reader thread's messages to its caller's (events/offthread.ts). */
export interface ReadLog {
  warn(obj: object, msg: string): void
  debug(obj: object, msg: string): void
}

/** At most this many messages are yielded at once by {@link readExistingBatches}. */
const YIELD_EVERY = 1000

/** Attempts of a message get that JetStream does not answer (a stream leader being elected). */
const GET_ATTEMPTS = 8

/**
 * The message `query` names, null when there is none: a `STREAM.MSG.GET`, which the stream's leader
 * answers, asked again when JetStream does not answer (`jsm`'s timeout is one attempt's). Not a direct
 * get: any replica answers those (a queue group over the cluster), and while a server cut off without
 * an RST is still taken for connected by the others (nats-server 2.9 keeps such a route until TCP
 * gives up on it), one request in three went its way and got no answer. Nor a consumer: see
 * {@link addConsumer}. A read from the leader also sees every acknowledged append.
 */
export async function getMessage(jsm: JetStreamManager, stream: string, query: MsgRequest | NextMsgRequest, log?: ReadLog): Promise<StoredMsg | null> {
  for (let attempt = 1; ; attempt++) {
    try {
      // nats.js types the request without `next_by_subj`, which nats-server has taken since 2.9.
      return await jsm.streams.getMessage(stream, query as MsgRequest)
    } catch (err) {
      if (attempt >= GET_ATTEMPTS || !isJetStreamUnavailable(err)) throw err
      log?.debug({ err, stream, attempt }, 'a message get was not answered; asking again')
      await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** (attempt - 1), 1_000)))
    }
  }
}

/**
 * Up to `max` messages of `subject` from `fromSeq`, in order, one {@link getMessage} each (no consumer
 * is made). Answers them and where the next would be, `done` when the subject has no more.
 */
export async function readSubjectByGets(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
  fromSeq: number,
  max: number,
  log?: ReadLog,
): Promise<{ messages: StoredMsg[]; next: number; done: boolean }> {
  const messages: StoredMsg[] = []
  let next = Math.max(1, fromSeq)
  while (messages.length < max) {
    const m = await getMessage(jsm, stream, { seq: next, next_by_subj: subject }, log)
    if (!m) return { messages, next, done: true }
    messages.push(m)
    next = m.seq + 1
  }
  return { messages, next, done: false }
}

/** Attempts at making a read's consumer when the cluster does not answer (see {@link addConsumer}). */
const CONSUMER_ADD_ATTEMPTS = 6

/** Whether `err` is JetStream not answering for now: a request timeout, no responder, or 503 "temporarily unavailable". */
export function isJetStreamUnavailable(err: unknown): boolean {
  const e = err as { name?: string; message?: string }
  if (e?.name === 'TimeoutError' || e?.name === 'NoRespondersError') return true
  if (err instanceof JetStreamApiError && err.status === 503) return true
  return /timeout|temporarily unavailable|no responders/i.test(e?.message ?? '')
}

/**
 * Makes the read consumer `config` on `stream`; when JetStream does not answer, again under a new
 * name. In a cluster that lost a server, a new consumer cannot be made while another metadata leader
 * is elected (seconds); and a server cut off without an RST is only taken for offline by the others
 * after their orphan check (~3 min with nats-server 2.9), so until then the metadata leader may still
 * place a consumer on it, which never answers: a new name is placed anew (on a live replica, two
 * times in three with three replicas). A consumer made for an attempt that timed out is left to its
 * `inactive_threshold`.
 */
export async function addConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { name: string },
  log?: ReadLog,
): Promise<Awaited<ReturnType<JetStreamManager['consumers']['add']>>> {
  let attemptConfig = config
  for (let attempt = 1; ; attempt++) {
    try {
      return await jsm.consumers.add(stream, attemptConfig)
    } catch (err) {
      if (attempt >= CONSUMER_ADD_ATTEMPTS || !isJetStreamUnavailable(err)) throw err
      log?.warn({ err, stream, attempt }, 'JetStream did not make a read consumer; trying again under a new name')
      await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** (attempt - 1), 2_000)))
      attemptConfig = { ...config, name: nuid.next() }
    }
  }
}

/** Deletes a read's consumer without waiting: the read is done, and `inactive_threshold` removes the consumer should this fail. */
export function dropReadConsumer(jsm: JetStreamManager, stream: string, name: string, log?: ReadLog): void {
  jsm.consumers.delete(stream, name).catch((err: unknown) => log?.debug({ err, consumer: name }, 'deleting a read consumer failed'))
}

/**
 * After a delivery of a read was lost: the read's consumer `previous` dropped and a new one made
 * under a new name, delivering from after `lastSeq` (from the start of `config` when none came yet).
 */
export async function renewReadConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig>,
  previous: string,
  lastSeq: number | undefined,
  log?: ReadLog,
): Promise<Awaited<ReturnType<typeof addConsumer>>> {
  dropReadConsumer(jsm, stream, previous, log)
  const from = lastSeq === undefined ? {} : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSeq + 1, opt_start_time: undefined }
  return addConsumer(jsm, stream, { ...config, name: nuid.next(), ...from }, log)
}

export async function* readExistingBatches(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { name: string },
  opts: { batch: number; log?: ReadLog | undefined },
): AsyncGenerator<JsMsg[]> {
  let info = await addConsumer(jsm, stream, config, opts.log)
  let name = info.name
  let left = info.num_pending
  /** The stream and delivery sequences of the last message yielded. */
  let lastSeq: number | undefined
  let lastDelivered = 0
  let restarted = false
  try {
    while (left > 0) {
      const consumer = js.consumers.getConsumerFromInfo(info)
      const iter = await consumer.fetch({ max_messages: Math.min(left, opts.batch), expires: 5_000 })
      let got = 0
      let pending: JsMsg[] = []
      let lost = false
      try {
        for await (const m of iter) {
          if (m.info.deliverySequence !== lastDelivered + 1) {
            lost = true
            break
          }
          pending.push(m)
          got++
          left--
          lastDelivered = m.info.deliverySequence
          lastSeq = m.seq
          if (left === 0) break
          // Handed on in slices, so that a reader decodes them while they are young (cheap to collect).
          if (pending.length >= YIELD_EVERY) {
            yield pending
            pending = []
          }
        }
      } catch (err) {
        // The server sent what the pull asked for and went quiet, but a message never came: the
        // client gives up on missed heartbeats. Lost on the way, unless the read was already restarted here.
        if (restarted && got === 0) throw err
        lost = true
      }
      if (pending.length > 0) yield pending
      if (!lost && got > 0) {
        restarted = false
        continue
      }
      // Nothing came although messages are left (the last ones were lost), or a delivery was skipped.
      if (!lost && restarted) throw new WharfError('WHARF_UNAVAILABLE', `reading ${config.filter_subject ?? stream} stalled with ${left} messages left`)
      opts.log?.warn({ stream, filter: config.filter_subject, after: lastSeq ?? null }, 'a delivery of a read was lost on the way; reading on from there')
      info = await renewReadConsumer(jsm, stream, config, name, lastSeq, opts.log)
      name = info.name
      lastDelivered = 0
      restarted = true
    }
  } finally {
    dropReadConsumer(jsm, stream, name, opts.log)
  }
}
