import { Catalogue } from '../events/catalogue.js'
import { certEvents } from './app/certs.js'
import { appEvents } from './app/events.js'
import { buildEvents } from './build/events.js'
import { domainEvents } from './host/events.js'
import { keyEvents } from './key/events.js'
import { platformEvents } from './platform/events.js'
import { runtimeEvents } from './runtime/events.js'
import { userEvents } from './user/events.js'

/** Every event type Wharf writes, each version with its schema and upcaster. */
export function wharfCatalogue(): Catalogue {
  return new Catalogue([...userEvents, ...keyEvents, ...appEvents, ...certEvents, ...domainEvents, ...buildEvents, ...runtimeEvents, ...platformEvents])
}
