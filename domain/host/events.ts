import Type, { type Static } from 'typebox'
import { DomainName } from '../app/events.js'
import type { EventDefinition } from '../../events/catalogue.js'
import type { RecordedEvent } from '../../events/envelope.js'
import { AppName, Strict } from '../schema.js'

export const DomainClaimedSchema = Type.Object({ domain: DomainName, app: AppName }, Strict)
export type DomainClaimedData = Static<typeof DomainClaimedSchema>

export const DomainReleasedSchema = Type.Object({ domain: DomainName, app: AppName }, Strict)
export type DomainReleasedData = Static<typeof DomainReleasedSchema>

/** An event of a `domain.<hash>` stream (a host-name claim) as readers see it: the newest version of its type. */
export type HostEvent = RecordedEvent<'DomainClaimed', DomainClaimedData> | RecordedEvent<'DomainReleased', DomainReleasedData>

/** Events of `domain.<hash of host name>` streams: claims that make a domain belong to one app. */
export const domainEvents: EventDefinition[] = [
  {
    type: 'DomainClaimed',
    version: 1,
    stream: 'domain',
    description: 'A domain now belongs to an app; no other app may add it.',
    schema: DomainClaimedSchema,
  },
  {
    type: 'DomainReleased',
    version: 1,
    stream: 'domain',
    description: 'A domain belongs to no app any more.',
    schema: DomainReleasedSchema,
  },
]
