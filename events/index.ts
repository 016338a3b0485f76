/** The event log: what other folders may use. */
export { Catalogue, type EventDefinition } from './catalogue.js'
export { endsCommit, newEventId, toEnvelopes, type EventContext, type EventEnvelope, type NewEvent, type RecordedEvent } from './envelope.js'
export * from './subjects.js'
export type { AppendOptions, AppendResult, Delivery, EventStore, ExpectedVersion, SubscribeOptions, Subscription } from './store.js'
export { JetStreamEventStore, type JetStreamEventStoreOptions } from './jetstream.js'
export { MemoryEventStore, type MemoryEventStoreOptions } from './memory.js'
export { JetStreamPublisher } from './jspublish.js'
export { natsServers, type NatsServers } from './servers.js'
