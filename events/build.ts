import Type from 'typebox'
import type { EventDefinition } from './catalogue.js'
import { AppName, Sha, Strict, UserName } from './schema.js'

/** Events of `build.<uuid>` streams. */
export const buildEvents: EventDefinition[] = [
  {
    type: 'PushReceived',
    version: 1,
    stream: 'build',
    description: 'A git push to an app arrived.',
    schema: Type.Object({ app: AppName, sha: Sha, user: UserName, fingerprint: Type.String() }, Strict),
  },
]
