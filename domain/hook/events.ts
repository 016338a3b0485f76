import Type, { type Static } from 'typebox'
import type { EventDefinition } from '../../events/catalogue.js'
import type { RecordedEvent } from '../../events/envelope.js'
import { AppName, Strict, UserName } from '../schema.js'
import { EVENT_PATTERN, HOOK_ID_PATTERN, MAX_HOOK_PATTERNS, MAX_HOOK_URL } from './names.js'

export const HookId = Type.String({ pattern: HOOK_ID_PATTERN })
/** The id of an event delivered (the `webhook-id` header): a delivery is one event to one hook, attempted one or more times. */
const DeliveryId = Type.String({ minLength: 1, maxLength: 64 })
const Reason = Type.String({ maxLength: 500 })

export const HookAddedSchema = Type.Object(
  {
    id: HookId,
    url: Type.String({ minLength: 1, maxLength: MAX_HOOK_URL }),
    /** The app whose events it gets; null: every event of the platform (an admin's hook). */
    scope: Type.Union([AppName, Type.Null()]),
    /** Event type patterns (`Release*`); empty: every type. */
    events: Type.Array(Type.String({ pattern: EVENT_PATTERN }), { maxItems: MAX_HOOK_PATTERNS }),
    owner: UserName,
    /** The signing secret (`whsec_` + base64): the events API redacts fields named so. */
    secret: Type.String({ pattern: '^whsec_[A-Za-z0-9+/]+=*$', maxLength: 200 }),
  },
  Strict,
)
export type HookAddedData = Static<typeof HookAddedSchema>

export const HookRemovedSchema = Type.Object({ id: HookId, by: UserName }, Strict)
export type HookRemovedData = Static<typeof HookRemovedSchema>

export const HookDisabledSchema = Type.Object({ id: HookId, reason: Reason, failingSince: Type.String({ maxLength: 40 }) }, Strict)
export type HookDisabledData = Static<typeof HookDisabledSchema>

export const HookDeliveryFailedSchema = Type.Object(
  { id: HookId, delivery: DeliveryId, seq: Type.Integer({ minimum: 1 }), error: Reason, retryInMs: Type.Integer({ minimum: 0 }) },
  Strict,
)
export type HookDeliveryFailedData = Static<typeof HookDeliveryFailedSchema>

export const HookRecoveredSchema = Type.Object(
  { id: HookId, delivery: DeliveryId, seq: Type.Integer({ minimum: 1 }), failedAttempts: Type.Integer({ minimum: 0 }) },
  Strict,
)
export type HookRecoveredData = Static<typeof HookRecoveredSchema>

export const HookRedeliveryRequestedSchema = Type.Object(
  { id: HookId, delivery: DeliveryId, seq: Type.Integer({ minimum: 1 }), request: Type.String({ pattern: '^rd_[0-9a-f]{16}$' }), by: UserName },
  Strict,
)
export type HookRedeliveryRequestedData = Static<typeof HookRedeliveryRequestedSchema>

/** One attempt to deliver one event to one hook. */
export const HookAttemptSchema = Type.Object(
  {
    delivery: DeliveryId,
    seq: Type.Integer({ minimum: 1 }),
    type: Type.String({ maxLength: 64 }),
    /** When it started, ISO 8601. */
    at: Type.String({ maxLength: 40 }),
    /** The HTTP status answered; 0 when there was no answer (refused, timed out, closed early). */
    status: Type.Integer({ minimum: 0, maximum: 999 }),
    durationMs: Type.Integer({ minimum: 0 }),
    error: Type.Optional(Reason),
    /** Set on a redelivery: the request's id. */
    request: Type.Optional(Type.String({ maxLength: 40 })),
  },
  Strict,
)
export type HookAttempt = Static<typeof HookAttemptSchema>

/** Most attempts one `HookAttempts` event carries; the rest are counted in `omitted`. */
export const MAX_ATTEMPTS_PER_EVENT = 100

export const HookAttemptsSchema = Type.Object(
  { id: HookId, attempts: Type.Array(HookAttemptSchema, { maxItems: MAX_ATTEMPTS_PER_EVENT }), omitted: Type.Integer({ minimum: 0 }) },
  Strict,
)
export type HookAttemptsData = Static<typeof HookAttemptsSchema>

/** An event of a `hook.<id>` stream as readers see it: the newest version of its type. */
export type HookEvent =
  | RecordedEvent<'HookAdded', HookAddedData>
  | RecordedEvent<'HookRemoved', HookRemovedData>
  | RecordedEvent<'HookDisabled', HookDisabledData>
  | RecordedEvent<'HookDeliveryFailed', HookDeliveryFailedData>
  | RecordedEvent<'HookRecovered', HookRecoveredData>
  | RecordedEvent<'HookRedeliveryRequested', HookRedeliveryRequestedData>
  | RecordedEvent<'HookAttempts', HookAttemptsData>

/**
 * Events of `hook.<id>` streams: a webhook subscription and what became of its deliveries. Outcomes are
 * written a bounded number of times, whatever the traffic: attempts in batches (`HookAttempts`, at most
 * one per hook per flush interval), and only the changes of health (`HookDeliveryFailed` when a
 * hook starts failing, `HookRecovered` when it delivers again, `HookDisabled` at the end of the retry window).
 */
export const hookEvents: EventDefinition[] = [
  { type: 'HookAdded', version: 1, stream: 'hook', description: "A webhook was added (an app's, or the platform's: scope null).", schema: HookAddedSchema },
  { type: 'HookRemoved', version: 1, stream: 'hook', description: 'A webhook was removed: nothing more is sent to it.', schema: HookRemovedSchema },
  {
    type: 'HookDisabled',
    version: 1,
    stream: 'hook',
    description: 'A webhook failed every retry for the whole retry window (3 days by default) and was disabled.',
    schema: HookDisabledSchema,
  },
  {
    type: 'HookDeliveryFailed',
    version: 1,
    stream: 'hook',
    description: 'A webhook that delivered started failing: its deliveries wait and are retried with backoff.',
    schema: HookDeliveryFailedSchema,
  },
  { type: 'HookRecovered', version: 1, stream: 'hook', description: 'A failing webhook delivered again.', schema: HookRecoveredSchema },
  {
    type: 'HookRedeliveryRequested',
    version: 1,
    stream: 'hook',
    description: 'A user asked for one past delivery to be sent again.',
    schema: HookRedeliveryRequestedSchema,
  },
  {
    type: 'HookAttempts',
    version: 1,
    stream: 'hook',
    description: 'Delivery attempts of a webhook since the previous such event (time, status, duration, error), at most 100; the rest counted.',
    schema: HookAttemptsSchema,
  },
]
