import type { EventDefinition } from './catalogue.js'

/** Events of `domain.<hash of host name>` streams: claims that make a domain belong to one app. */
export const domainEvents: EventDefinition[] = []
