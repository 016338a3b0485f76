import Type from 'typebox'
import { DomainName } from '../app/events.js'
import type { EventDefinition } from '../../events/catalogue.js'
import { AppName, Strict } from '../schema.js'

/** Events of `domain.<hash of host name>` streams: claims that make a domain belong to one app. */
export const domainEvents: EventDefinition[] = [
  {
    type: 'DomainClaimed',
    version: 1,
    stream: 'domain',
    description: 'A domain now belongs to an app; no other app may add it.',
    schema: Type.Object({ domain: DomainName, app: AppName }, Strict),
  },
  {
    type: 'DomainReleased',
    version: 1,
    stream: 'domain',
    description: 'A domain belongs to no app any more.',
    schema: Type.Object({ domain: DomainName, app: AppName }, Strict),
  },
]
