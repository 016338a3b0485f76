import Type from 'typebox'
import { Procfile } from './app.js'
import type { EventDefinition } from './catalogue.js'
import { AppName, Port, Sha, Strict, UserName } from './schema.js'

/** Events of `build.<uuid>` streams. */
export const buildEvents: EventDefinition[] = [
  {
    type: 'PushReceived',
    version: 1,
    stream: 'build',
    description: 'A git push to an app arrived.',
    schema: Type.Object({ app: AppName, sha: Sha, user: UserName, fingerprint: Type.String() }, Strict),
  },
  {
    type: 'BuildSucceeded',
    version: 1,
    stream: 'build',
    description: 'An image was built and pushed to the registry; the release manager makes a release of it.',
    schema: Type.Object(
      {
        app: AppName,
        image: Type.String({ minLength: 1, maxLength: 512 }),
        digest: Type.Optional(Type.String({ maxLength: 200 })),
        /** Process type -> command from the Procfile; empty when there is none (the image's CMD is `web`). */
        procfile: Procfile,
        /** The port a web process listens on ($PORT). */
        port: Port,
      },
      Strict,
    ),
  },
]
