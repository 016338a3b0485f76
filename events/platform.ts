import Type from 'typebox'
import type { EventDefinition } from './catalogue.js'
import { Strict } from './schema.js'

/** Events of `platform.<name>` streams: the platform's own life. */
export const platformEvents: EventDefinition[] = [
  {
    type: 'PlatformStarted',
    version: 1,
    stream: 'platform',
    description: 'Wharf services started on a host.',
    schema: Type.Object({ host: Type.String(), services: Type.Array(Type.String()), version: Type.String() }, Strict),
  },
]
