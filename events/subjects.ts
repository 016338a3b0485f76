import { createHash } from 'node:crypto'

/**
 * The only file that spells NATS subject and stream names. Everything else speaks in stream ids
 * (`app.shop`, `user.alice`, `build.<uuid>`, `runtime.shop`) and asks here for the subject.
 */

/**
 * The kinds of event stream. A stream id is `<kind>.<id>`. `key` and `domain` streams are claims
 * that make a value unique platform-wide (an SSH key fingerprint, a host name): their id is a hash of
 * the value, since a subject token cannot hold dots or slashes.
 */
export const STREAM_KINDS = ['user', 'app', 'build', 'runtime', 'platform', 'key', 'domain', 'hook'] as const
export type StreamKind = (typeof STREAM_KINDS)[number]

/** Ids are a single subject token: no dots, wildcards, spaces or control characters. */
const ID_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9_@-]{0,127}$/

export interface StreamRef {
  kind: StreamKind
  id: string
}

/** `streamId('app', 'shop')` -> `app.shop`. Throws on an id that cannot be one subject token. */
export function streamId(kind: StreamKind, id: string): string {
  if (!STREAM_KINDS.includes(kind)) throw new TypeError(`unknown stream kind ${JSON.stringify(kind)}`)
  if (!ID_PATTERN.test(id)) throw new TypeError(`invalid stream id ${JSON.stringify(id)}`)
  return `${kind}.${id}`
}

/** Parses `app.shop` into `{ kind: 'app', id: 'shop' }`; returns undefined for anything else. */
export function parseStreamId(stream: string): StreamRef | undefined {
  const dot = stream.indexOf('.')
  if (dot <= 0) return undefined
  const kind = stream.slice(0, dot) as StreamKind
  const id = stream.slice(dot + 1)
  if (!STREAM_KINDS.includes(kind) || !ID_PATTERN.test(id)) return undefined
  return { kind, id }
}

/**
 * The claim stream that makes `value` unique platform-wide: `key.<hash>` for an SSH key
 * fingerprint, `domain.<hash>` for a host name; the hash is the first 32 hex digits of its SHA-256
 * (a subject token cannot hold the value's dots, slashes or pluses).
 */
export function claimStreamId(kind: 'key' | 'domain', value: string): string {
  return streamId(kind, createHash('sha256').update(value).digest('hex').slice(0, 32))
}

export function isStreamId(stream: string): boolean {
  return parseStreamId(stream) !== undefined
}

/**
 * Names in one namespace. The platform uses `wharf` (stream `WHARF_EVENTS`, subjects `wharf.ev.>`);
 * tests use a namespace of their own so that runs sharing one NATS server never see each other.
 */
export class EventSubjects {
  /** The JetStream stream that holds every event: file storage, unlimited retention. */
  readonly stream: string
  /** Every event subject starts with this. */
  readonly prefix: string
  /** Subject filter that matches every event. */
  readonly all: string

  constructor(readonly namespace = 'wharf') {
    if (!/^[a-z][a-z0-9_]{0,40}$/.test(namespace)) throw new TypeError(`invalid namespace ${JSON.stringify(namespace)}`)
    this.stream = namespace === 'wharf' ? 'WHARF_EVENTS' : `${namespace.toUpperCase()}_EVENTS`
    this.prefix = `${namespace}.ev`
    this.all = `${this.prefix}.>`
  }

  /** The subject an event of `stream` is published on: `app.shop` -> `wharf.ev.app.shop`. */
  subjectOf(stream: string): string {
    if (!isStreamId(stream)) throw new TypeError(`invalid stream ${JSON.stringify(stream)}`)
    return `${this.prefix}.${stream}`
  }

  /** The stream of a subject: `wharf.ev.app.shop` -> `app.shop`. */
  streamOfSubject(subject: string): string {
    if (!subject.startsWith(`${this.prefix}.`)) throw new TypeError(`not an event subject: ${subject}`)
    return subject.slice(this.prefix.length + 1)
  }

  /** Filter for every stream of one kind: `wharf.ev.app.>`. */
  kindFilter(kind: StreamKind): string {
    return `${this.prefix}.${kind}.>`
  }
}

/** The platform's names. */
export const subjects = new EventSubjects()

/**
 * Names of the log plane in one namespace: logs are not events, so they live in a stream of their
 * own (`WHARF_LOGS`, bounded by age and bytes) with subjects `<ns>.logs.<app>.<source>`, where the
 * source is a container (its 12-hex short id), `wharf` (platform lines) or `syslog` (lines from
 * outside). One subject per container lets a logspout read back where it stopped (last by subject).
 * The logger answers requests on `<ns>.logger.*`.
 */
export class LogSubjects {
  /** The JetStream stream of log lines. */
  readonly stream: string
  readonly prefix: string
  /** Subject filter that matches every log line. */
  readonly all: string
  /** The logger's request subjects (a queue group answers each). */
  readonly requests: { recent: string; history: string }

  constructor(readonly namespace = 'wharf') {
    const events = new EventSubjects(namespace)
    this.stream = events.stream.replace(/_EVENTS$/, '_LOGS')
    this.prefix = `${namespace}.logs`
    this.all = `${this.prefix}.>`
    this.requests = { recent: `${namespace}.logger.recent`, history: `${namespace}.logger.history` }
  }

  /** `shop`, `0123456789ab` -> `wharf.logs.shop.0123456789ab`; sources are a container id, `wharf` or `syslog`. */
  subjectOf(app: string, source: string): string {
    if (!ID_PATTERN.test(app) || !/^[a-z0-9]{1,64}$/.test(source)) throw new TypeError(`invalid log subject ${JSON.stringify(`${app}.${source}`)}`)
    return `${this.prefix}.${app}.${source}`
  }

  /** Every log line of one app: `wharf.logs.shop.>`. */
  appFilter(app: string): string {
    if (!ID_PATTERN.test(app)) throw new TypeError(`invalid app ${JSON.stringify(app)}`)
    return `${this.prefix}.${app}.>`
  }

  /** The app of a log subject, undefined for anything else. */
  appOf(subject: string): string | undefined {
    if (!subject.startsWith(`${this.prefix}.`)) return undefined
    const rest = subject.slice(this.prefix.length + 1)
    const dot = rest.indexOf('.')
    return dot > 0 ? rest.slice(0, dot) : undefined
  }
}
