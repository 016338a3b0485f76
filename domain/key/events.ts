import Type from 'typebox'
import type { EventDefinition } from '../../events/catalogue.js'
import { Strict, UserName } from '../schema.js'
import { KeyFingerprint } from '../user/events.js'

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
    schema: Type.Object({ fingerprint: KeyFingerprint, username: UserName }, Strict),
  },
  {
    type: 'KeyReleased',
    version: 1,
    stream: 'key',
    description: "An SSH key fingerprint's claim was given up (after `KeyRemoved`): anyone may add it again.",
    schema: Type.Object({ fingerprint: KeyFingerprint, username: UserName }, Strict),
  },
]
