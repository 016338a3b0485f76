import type { EventDefinition } from './catalogue.js'

/** Events of `key.<hash of fingerprint>` streams: claims that make an SSH key belong to one user. */
export const keyEvents: EventDefinition[] = []
