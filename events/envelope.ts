import { v7 as uuidv7 } from 'uuid'

/**
 * An event as it is stored: plain data. `stream` is a stream id (`app.shop`); `version` is the
 * version of the event type's schema (not of the stream); `actor` is who caused it (`user:alice`,
 * `system:builder`); `causationId` is the id of the event or request that caused it; all events of one
 * user action share the `correlationId`.
 */
export interface EventEnvelope<T extends string = string, D = unknown> {
  id: string
  type: T
  version: number
  stream: string
  occurredAt: string
  actor: string
  causationId: string | null
  correlationId: string
  data: D
}

/**
 * An event read back from the log. `seq` is its position in the whole log (JetStream stream
 * sequence, from 1). A stream's version is the `seq` of its last event (0 when it has none), which
 * is what `append` takes as `expectedVersion`.
 */
export interface RecordedEvent<T extends string = string, D = unknown> extends EventEnvelope<T, D> {
  seq: number
}

/** What a caller gives to `append`: the store fills in nothing it does not have to. */
export interface NewEvent<T extends string = string, D = unknown> {
  type: T
  data: D
  /** Schema version; default: the newest version of the type in the catalogue. */
  version?: number
  /** Default: a fresh UUIDv7. A retried append must pass the same id (that makes it idempotent). */
  id?: string
  occurredAt?: string
}

/** Who and why, shared by every event of one append. */
export interface EventContext {
  actor: string
  correlationId?: string
  causationId?: string | null
}

export function newEventId(): string {
  return uuidv7()
}

/** Builds full envelopes for one stream. Pure apart from fresh ids and the clock. */
export function toEnvelopes(
  stream: string,
  events: readonly NewEvent[],
  ctx: EventContext,
  latestVersion: (type: string) => number,
): EventEnvelope[] {
  const correlationId = ctx.correlationId ?? newEventId()
  return events.map((e) => ({
    id: e.id ?? newEventId(),
    type: e.type,
    version: e.version ?? latestVersion(e.type),
    stream,
    occurredAt: e.occurredAt ?? new Date().toISOString(),
    actor: ctx.actor,
    causationId: ctx.causationId ?? null,
    correlationId,
    data: e.data,
  }))
}
