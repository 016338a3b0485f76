import Type from 'typebox'
import { Procfile } from '../app/events.js'
import type { EventDefinition } from '../../events/catalogue.js'
import { AppName, Port, Sha, Strict, UserName } from '../schema.js'

/** An image reference as Docker takes it: `[registry/]repo[:tag][@digest]`. */
export const ImageRef = Type.String({ minLength: 1, maxLength: 512, pattern: '^[a-zA-Z0-9][a-zA-Z0-9._:/@-]*$' })

/**
 * Events of `build.<uuid>` streams. A build from `git push` is `PushReceived`, `BuildStarted`, then
 * `BuildSucceeded` or `BuildFailed`; one from `wharf builds:create <image>` starts at `BuildStarted`.
 * The release manager turns `BuildSucceeded` into a release.
 */
export const buildEvents: EventDefinition[] = [
  {
    type: 'PushReceived',
    version: 1,
    stream: 'build',
    description: 'A git push to an app arrived.',
    schema: Type.Object({ app: AppName, sha: Sha, user: UserName, fingerprint: Type.String() }, Strict),
  },
  {
    type: 'BuildStarted',
    version: 1,
    stream: 'build',
    description: 'The builder started building an image for an app (from a pushed commit, or from an existing image).',
    schema: Type.Object(
      {
        app: AppName,
        user: UserName,
        /** `git`: a pushed commit (`sha`); `image`: an image given to `builds:create` (`source`). */
        kind: Type.Union([Type.Literal('git'), Type.Literal('image')]),
        sha: Type.Optional(Sha),
        source: Type.Optional(ImageRef),
        /** How it is built: `dockerfile`, `node` (buildpack style), or `image`. */
        stack: Type.String({ minLength: 1, maxLength: 32 }),
        /** The builder process that runs it (host:pid), so a restarted builder knows its orphans. */
        builder: Type.String({ minLength: 1, maxLength: 200 }),
      },
      Strict,
    ),
  },
  {
    type: 'BuildSucceeded',
    version: 1,
    stream: 'build',
    description: 'An image was built and pushed to the registry; the release manager makes a release of it.',
    schema: Type.Object(
      {
        app: AppName,
        image: ImageRef,
        digest: Type.Optional(Type.String({ maxLength: 200 })),
        /** Process type -> command from the Procfile; empty when there is none (the image's CMD is `web`). */
        procfile: Procfile,
        /** The port a web process listens on ($PORT). */
        port: Port,
      },
      Strict,
    ),
  },
  {
    type: 'BuildFailed',
    version: 1,
    stream: 'build',
    description: 'A build failed (or its builder stopped); nothing was released.',
    schema: Type.Object(
      {
        app: AppName,
        reason: Type.String({ minLength: 1, maxLength: 2048 }),
        /** The last lines of the build output, for `builds:info` and the push's message. */
        lastLines: Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 50 }),
      },
      Strict,
    ),
  },
]
