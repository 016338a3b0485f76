/** The event log: what other folders may use. */
import { appEvents } from './app.js'
import { buildEvents } from './build.js'
import { Catalogue } from './catalogue.js'
import { certEvents } from './cert.js'
import { domainEvents } from './domain.js'
import { keyEvents } from './key.js'
import { platformEvents } from './platform.js'
import { runtimeEvents } from './runtime.js'
import { userEvents } from './user.js'

export { Catalogue, type EventDefinition } from './catalogue.js'
export { newEventId, toEnvelopes, type EventContext, type EventEnvelope, type NewEvent, type RecordedEvent } from './envelope.js'
export * from './subjects.js'
export type { AppendOptions, AppendResult, Delivery, EventStore, ExpectedVersion, SubscribeOptions, Subscription } from './store.js'
export { JetStreamEventStore, type JetStreamEventStoreOptions } from './jetstream.js'
export { MemoryEventStore, type MemoryEventStoreOptions } from './memory.js'
export { JetStreamPublisher } from './jspublish.js'

/** Every event type Wharf writes, each version with its schema and upcaster. */
export function wharfCatalogue(): Catalogue {
  return new Catalogue([...userEvents, ...keyEvents, ...appEvents, ...certEvents, ...domainEvents, ...buildEvents, ...runtimeEvents, ...platformEvents])
}
