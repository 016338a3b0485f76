import Type from 'typebox'
import type { EventDefinition } from './catalogue.js'
import { Strict, UserName } from './schema.js'

/**
 * Events of `platform.<name>` streams. The admin set lives on the one `platform.accounts` stream, so
 * that "the first user is the admin" and "never revoke the last admin" are decided on one stream,
 * race-free.
 */
export const platformEvents: EventDefinition[] = [
  {
    type: 'AdminGranted',
    version: 1,
    stream: 'platform',
    description: 'A user became an admin (on `platform.accounts`; the first registration grants it).',
    schema: Type.Object({ username: UserName }, Strict),
  },
  {
    type: 'AdminRevoked',
    version: 1,
    stream: 'platform',
    description: 'A user stopped being an admin (on `platform.accounts`; never the last admin).',
    schema: Type.Object({ username: UserName }, Strict),
  },
]
