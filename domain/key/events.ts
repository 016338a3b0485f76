import Type, { type Static } from 'typebox'
import type { EventDefinition } from '../../events/catalogue.js'
import type { RecordedEvent } from '../../events/envelope.js'
import { Strict, UserName } from '../schema.js'
import { KeyFingerprint } from '../user/events.js'

export const KeyClaimedSchema = Type.Object({ fingerprint: KeyFingerprint, username: UserName }, Strict)
export type KeyClaimedData = Static<typeof KeyClaimedSchema>

export const KeyReleasedSchema = Type.Object({ fingerprint: KeyFingerprint, username: UserName }, Strict)
export type KeyReleasedData = Static<typeof KeyReleasedSchema>

/** An event of a `key.<hash>` stream as readers see it: the newest version of its type. */
export type KeyEvent = RecordedEvent<'KeyClaimed', KeyClaimedData> | RecordedEvent<'KeyReleased', KeyReleasedData>

/**
 * Events of `key.<hash of fingerprint>` streams: claims that make an SSH key belong to one user.
 * Appended with an expected version, so two users adding one key at once cannot both win.
 */
export const keyEvents: EventDefinition[] = [
  {
    type: 'KeyClaimed',
    version: 1,
    stream: 'key',
    description: 'An SSH key fingerprint was claimed by a user (before `KeyAdded` on the user stream).',
    schema: KeyClaimedSchema,
  },
  {
    type: 'KeyReleased',
    version: 1,
    stream: 'key',
    description: "An SSH key fingerprint's claim was given up (after `KeyRemoved`): anyone may add it again.",
    schema: KeyReleasedSchema,
  },
]
