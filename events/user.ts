import Type from 'typebox'
import type { EventDefinition } from './catalogue.js'
import { Strict, UserName } from './schema.js'

/** Events of `user.<name>` streams. */
export const userEvents: EventDefinition[] = [
  {
    type: 'UserRegistered',
    version: 1,
    stream: 'user',
    description: 'A user account was created; the first one is an admin.',
    schema: Type.Object(
      { username: UserName, email: Type.String({ maxLength: 254 }), passwordHash: Type.String(), admin: Type.Boolean() },
      Strict,
    ),
  },
]
