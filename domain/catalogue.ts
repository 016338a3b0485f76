import { Catalogue } from '../events/catalogue.js'
import type { RecordedEvent } from '../events/envelope.js'
import type { StreamKind } from '../events/subjects.js'
import { certEvents } from './app/certs.js'
import { appEvents, type AppEvent } from './app/events.js'
import { buildEvents, type BuildEvent } from './build/events.js'
import { domainEvents, type HostEvent } from './host/events.js'
import { hookEvents, type HookEvent } from './hook/events.js'
import { keyEvents, type KeyEvent } from './key/events.js'
import { platformEvents, type PlatformEvent } from './platform/events.js'
import { runtimeEvents, type RuntimeEvent } from './runtime/events.js'
import { userEvents, type UserEvent } from './user/events.js'

/** Every event type Wharf writes, each version with its schema and upcaster. */
export function wharfCatalogue(): Catalogue {
  return new Catalogue([
    ...userEvents,
    ...keyEvents,
    ...appEvents,
    ...certEvents,
    ...domainEvents,
    ...buildEvents,
    ...runtimeEvents,
    ...platformEvents,
    ...hookEvents,
  ])
}

/** The typed events of each stream kind (`domain` streams hold host-name claims). */
export interface EventsByKind {
  user: UserEvent
  key: KeyEvent
  app: AppEvent
  domain: HostEvent
  build: BuildEvent
  runtime: RuntimeEvent
  platform: PlatformEvent
  hook: HookEvent
}

/**
 * Any event Wharf writes, as readers see it: the newest version of its type, since the store
 * validates data against the catalogue on append and upcasts to the newest version on read.
 */
export type WharfEvent = EventsByKind[StreamKind]
/** The name of an event type Wharf writes. */
export type EventType = WharfEvent['type']
/** The typed events of the given types: `EventOf<'AppCreated' | 'AppDestroyed'>`. */
export type EventOf<T extends EventType> = Extract<WharfEvent, { type: T }>
/** The data of the given event types. */
export type DataOf<T extends EventType> = { [E in WharfEvent as E['type']]: E['data'] }[T]

/**
 * Whether `event` is of type `type` (or of one of `type`), narrowing it to the typed event. Sound
 * because the store validates data against the catalogue on append and upcasts to the newest
 * version on read.
 */
export function isEvent<T extends EventType>(event: RecordedEvent, type: T | readonly T[]): event is EventOf<T> {
  return typeof type === 'string' ? event.type === type : type.some((t) => t === event.type)
}

function hasType<T extends EventType>(event: { type: string; data: unknown }, type: T): event is { type: T; data: DataOf<T> } {
  return event.type === type
}

/** The data of `event` (recorded, or just appended) when it is of type `type`; undefined for another type or no event. */
export function dataOf<T extends EventType>(event: { type: string; data: unknown } | undefined, type: T): DataOf<T> | undefined {
  return event && hasType(event, type) ? event.data : undefined
}

/**
 * Every type of each stream kind's union, as a value: the compiler holds it equal to the unions
 * (a missing or extra type does not compile), and domain/catalogue.test.ts holds it equal to the
 * catalogue, so an event type defined without a typed union fails a test.
 */
export const typedEventTypes: { [K in StreamKind]: { [T in EventsByKind[K]['type']]: true } } = {
  user: { UserRegistered: true, PasswordChanged: true, TokenIssued: true, TokensRevoked: true, KeyAdded: true, KeyRemoved: true },
  key: { KeyClaimed: true, KeyReleased: true },
  app: {
    AppCreated: true,
    AppDestroyed: true,
    ConfigSet: true,
    ConfigUnset: true,
    AppTransferred: true,
    CollaboratorAdded: true,
    CollaboratorRemoved: true,
    ReleaseCreated: true,
    FormationScaled: true,
    DomainAdded: true,
    DomainRemoved: true,
    LimitsSet: true,
    LimitsUnset: true,
    MaintenanceSet: true,
    DrainAdded: true,
    DrainRemoved: true,
    RestartRequested: true,
    CertAdded: true,
    CertAttached: true,
    CertDetached: true,
    CertRemoved: true,
  },
  domain: { DomainClaimed: true, DomainReleased: true },
  build: { PushReceived: true, BuildStarted: true, BuildSucceeded: true, BuildFailed: true },
  runtime: {
    DeployStarted: true,
    DeployCompleted: true,
    DeployFailed: true,
    ContainerStarted: true,
    ContainerStopping: true,
    ContainerStopped: true,
    ContainerCrashed: true,
  },
  platform: {
    AdminGranted: true,
    AdminRevoked: true,
    BackupCompleted: true,
    BackupFailed: true,
    BackupRestored: true,
    BackupDeleted: true,
    EventsExported: true,
    RouteServed: true,
  },
  hook: {
    HookAdded: true,
    HookRemoved: true,
    HookDisabled: true,
    HookDeliveryFailed: true,
    HookRecovered: true,
    HookRedeliveryRequested: true,
    HookAttempts: true,
  },
}

const TYPED: ReadonlySet<string> = new Set(Object.values(typedEventTypes).flatMap((types) => Object.keys(types)))

/**
 * Narrows an event to the union `E` of the events a reader handles (`EventOf<...>` of the types it is
 * given: a projection's `handles`, the events of a decider's stream). The one cast on events in the
 * tree, sound because the store validates data against the catalogue on append and upcasts to the
 * newest version on read, and a reader's switch on `type` ignores the types it does not list.
 */
export function narrow<E extends WharfEvent>(event: RecordedEvent): E {
  return event as E
}

/** Whether `event` is of a type this Wharf knows (a reader may be older than the log), narrowing it to `WharfEvent`. */
export function isWharfEvent(event: RecordedEvent): event is WharfEvent {
  return TYPED.has(event.type)
}
