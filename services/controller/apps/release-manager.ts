import { WharfError } from '../../../core/errors.js'
import type { Logger } from '../../../core/log.js'
import { dataOf, isEvent } from '../../../domain/index.js'
import { startConsumer } from '../../../events/consumer.js'
import { parseStreamId, type EventStore, type RecordedEvent } from '../../../events/index.js'
import { runCommand } from '../../../domain/command.js'
import type { ControllerDeps } from '../context.js'
import { appStream } from './access.js'
import { appDecider } from '../../../domain/app/decider.js'

/** The durable subscription of the release manager (shared by controller replicas). */
export const RELEASE_MANAGER_DURABLE = 'release-manager'

export interface ReleaseManagerOptions {
  /** Pause before a release that failed for a passing reason (NATS, Postgres) is tried again, ms, default 1_000. */
  retryMs?: number
}

/**
 * Who made the build (the user of its `PushReceived` or `BuildStarted` for `builds:create`, if any)
 * and when it began: the seq of its first event, which places it in one incarnation of its app.
 */
async function pusherOf(store: EventStore, stream: string): Promise<{ user: string | undefined; at: number | undefined }> {
  const { events } = await store.readStream(stream)
  const start = events.find((e) => isEvent(e, ['PushReceived', 'BuildStarted']))
  return { user: start?.data.user, at: events[0]?.seq }
}

/**
 * Turns one `BuildSucceeded` into a `ReleaseCreated` on its app's stream (and `web=1` for an app's
 * first build). Idempotent by build id: the app stream knows the builds it released, so a redelivery
 * decides nothing. A build of an app that is gone is skipped.
 */
export async function releaseBuild(deps: Pick<ControllerDeps, 'store' | 'pool' | 'log'>, event: RecordedEvent): Promise<'released' | 'duplicate' | 'skipped'> {
  const build = parseStreamId(event.stream)
  const data = dataOf(event, 'BuildSucceeded')
  if (!data || build?.kind !== 'build') return 'skipped'
  const { user: pushedBy, at: pushedAt } = await pusherOf(deps.store, event.stream)
  try {
    const res = await runCommand(deps, {
      stream: appStream(data.app),
      decider: appDecider,
      command: {
        type: 'ReleaseBuild',
        by: { kind: 'system' },
        build: build.id,
        image: data.image,
        ...(data.digest === undefined ? {} : { digest: data.digest }),
        procfile: data.procfile,
        port: data.port,
        ...(pushedBy === undefined ? {} : { pushedBy }),
        ...(pushedAt === undefined ? {} : { pushedAt }),
      },
      ctx: { actor: 'system:release-manager', correlationId: event.correlationId, causationId: event.id },
      waitFor: [],
    })
    return res.events.length ? 'released' : 'duplicate'
  } catch (err) {
    if (err instanceof WharfError && err.code === 'WHARF_NOT_FOUND') {
      deps.log.warn({ app: data.app, build: build.id }, 'release manager: the app of a build is gone (or is a new app of that name); no release')
      return 'skipped'
    }
    throw err
  }
}

/**
 * The release manager: a durable subscription to the log that releases every `BuildSucceeded`
 * (see {@link releaseBuild}). An event is acked only after its release is appended, so a crash
 * releases it on the next start; a passing failure is retried until it works or `stop` is called.
 */
export async function startReleaseManager(
  deps: Pick<ControllerDeps, 'store' | 'pool'> & { log: Logger },
  opts: ReleaseManagerOptions = {},
): Promise<{ stop(): Promise<void> }> {
  return startConsumer({
    store: deps.store,
    durableName: RELEASE_MANAGER_DURABLE,
    from: 1,
    types: ['BuildSucceeded'],
    retryMs: opts.retryMs ?? 1_000,
    log: deps.log,
    name: 'release manager',
    handle: async (event) => {
      const outcome = await releaseBuild(deps, event)
      deps.log.info({ stream: event.stream, seq: event.seq, outcome }, 'release manager: build handled')
    },
  })
}
