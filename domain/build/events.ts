import Type, { type Static } from 'typebox'
import { Procfile } from '../app/events.js'
import type { EventDefinition } from '../../events/catalogue.js'
import type { RecordedEvent } from '../../events/envelope.js'
import { AppName, Port, Sha, Strict, UserName } from '../schema.js'

/** An image reference as Docker takes it: `[registry/]repo[:tag][@digest]`. */
export const ImageRef = Type.String({ minLength: 1, maxLength: 512, pattern: '^[a-zA-Z0-9][a-zA-Z0-9._:/@-]*$' })

export const PushReceivedSchema = Type.Object({ app: AppName, sha: Sha, user: UserName, fingerprint: Type.String() }, Strict)
export type PushReceivedData = Static<typeof PushReceivedSchema>

export const BuildStartedSchema = Type.Object(
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
)
export type BuildStartedData = Static<typeof BuildStartedSchema>

export const BuildSucceededSchema = Type.Object(
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
)
export type BuildSucceededData = Static<typeof BuildSucceededSchema>

export const BuildFailedSchema = Type.Object(
  {
    app: AppName,
    reason: Type.String({ minLength: 1, maxLength: 2048 }),
    /** The last lines of the build output, for `builds:info` and the push's message. */
    lastLines: Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 50 }),
  },
  Strict,
)
export type BuildFailedData = Static<typeof BuildFailedSchema>

/** An event of a `build.<uuid>` stream as readers see it: the newest version of its type. */
export type BuildEvent =
  | RecordedEvent<'PushReceived', PushReceivedData>
  | RecordedEvent<'BuildStarted', BuildStartedData>
  | RecordedEvent<'BuildSucceeded', BuildSucceededData>
  | RecordedEvent<'BuildFailed', BuildFailedData>

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
    schema: PushReceivedSchema,
  },
  {
    type: 'BuildStarted',
    version: 1,
    stream: 'build',
    description: 'The builder started building an image for an app (from a pushed commit, or from an existing image).',
    schema: BuildStartedSchema,
  },
  {
    type: 'BuildSucceeded',
    version: 1,
    stream: 'build',
    description: 'An image was built and pushed to the registry; the release manager makes a release of it.',
    schema: BuildSucceededSchema,
  },
  {
    type: 'BuildFailed',
    version: 1,
    stream: 'build',
    description: 'A build failed (or its builder stopped); nothing was released.',
    schema: BuildFailedSchema,
  },
]
