/**
 * One build of a pushed commit: events, the Docker build with its output streamed to the pusher,
 * the registry push, and the wait for the release the release manager makes of it.
 */
import type pg from 'pg'
import { appUrl, type WharfConfig } from '../../core/config.js'
import type { BuildOptions, ContainerEngine } from '../../core/engine/engine.js'
import { WharfError } from '../../core/errors.js'
import { checkTarget, outboundPolicy, urlPort } from '../../core/outbound.js'
import { checkImageRef, dockerfileRefs } from '../../domain/build/images.js'
import type { Logger } from '../../core/log.js'
import { buildDecider, type BuildCommand } from '../../domain/build/decider.js'
import { runCommand } from '../../domain/command.js'
import { LABELS } from '../../domain/runtime/labels.js'
import { newEventId, streamId, type EventStore } from '../../events/index.js'
import { formatTrace, type Trace } from '../../domain/runtime/trace.js'
import { deployVerdict, releaseOfBuild, traceOf, visibleApp, waitUntil, getUser } from '../../projections/index.js'
import { imagePort, pushImage } from '../../core/engine/images.js'
import type { BuildOutput } from './output.js'
import { parseProcfile } from './procfile.js'
import type { PushedTree } from './repo.js'
import { detectStack, NODE_BASE_IMAGE } from './stack.js'

export interface BuildDeps {
  cfg: WharfConfig
  store: EventStore
  pool: pg.Pool
  log: Logger
  /** The container engine the images are built in and pushed from. */
  docker: ContainerEngine
  /** `host:pid` of this builder, recorded in `BuildStarted`. */
  builderId: string
  /** How long the push waits for the release manager's release, ms (default 60_000). */
  releaseTimeoutMs?: number
  /**
   * How long a push waits for the scheduler's `DeployCompleted` / `DeployFailed` of its release, ms;
   * 0 or unset: it does not wait (no scheduler runs).
   */
  deployTimeoutMs?: number
  /**
   * How long a push waits, once its deploy completed, for the router to serve the new containers
   * (its `RouteServed`), ms; 0 or unset: it does not wait (no router runs). The trace is printed either way.
   */
  serveTimeoutMs?: number
  /** The longest a docker build may take, ms (default `cfg.limits.buildTimeoutMs`, `WHARF_BUILD_TIMEOUT`); then the build fails. */
  buildTimeoutMs?: number
  /** Build args and network settings for buildpack-style builds (the npm registry). */
  npmRegistry?: string
}

export interface PushToBuild {
  app: string
  sha: string
  user: string
  fingerprint: string
  tree: PushedTree
  out: BuildOutput
  signal: AbortSignal
  correlationId: string
  /** When the SSH session started, for the phase figures. */
  startedAt: number
}

/** How long each phase of a push took, ms (what `bench:push` reports). */
export interface PushPhases {
  receive: number
  build: number
  registry: number
  release: number
  /** Release -> deploy completed (only when the builder waits for deploys). */
  deploy?: number
  /** Deploy completed -> the router serves the new containers (only when the builder waits for the router). */
  serve?: number
}

export type BuildResult = { ok: true; build: string; image: string; release?: number; phases: PushPhases } | { ok: false; build: string; reason: string }

/** A failure whose message is for the pusher (bad Procfile, failing Dockerfile, ...). */
class BuildFailure extends Error {}

/** The registry address images are tagged with. */
export function registryOf(cfg: WharfConfig): string {
  return `127.0.0.1:${cfg.ports.registry}`
}

export async function buildPush(deps: BuildDeps, p: PushToBuild): Promise<BuildResult> {
  const build = newEventId()
  const stream = streamId('build', build)
  const ctx = { actor: `user:${p.user}`, correlationId: p.correlationId }
  const log = deps.log.child({ build, app: p.app, correlationId: p.correlationId })
  const t0 = Date.now()
  const sha7 = p.sha.slice(0, 7)
  const out = p.out
  out.keep(deps.cfg.home, build)

  // Nothing waits for a read model after these appends (the release is waited for below).
  const run = (command: BuildCommand) => runCommand(deps, { stream, decider: buildDecider, command, ctx, waitFor: [] })
  const fail = async (reason: string): Promise<BuildResult> => {
    out.error(reason)
    out.error(`nothing was released; details: wharf builds:info ${build} -a ${p.app}`)
    const lastLines = out.lastLines()
    await out.close()
    await run({ type: 'FailBuild', app: p.app, reason, lastLines })
    log.info({ reason }, 'build failed')
    return { ok: false, build, reason }
  }

  try {
    const files = await p.tree.rootFiles()
    // A bad repo (no stack we build) still becomes a recorded, failed build the user can look at.
    let stack: ReturnType<typeof detectStack> | undefined
    let stackError: string | undefined
    try {
      const pkg = files.has('package.json') ? await p.tree.read('package.json') : undefined
      stack = detectStack({ has: (f) => files.has(f), read: (f) => (f === 'package.json' ? pkg : undefined) })
    } catch (err) {
      stackError = (err as Error).message
    }
    // What the Dockerfile fetches and builds on, refused before anything is recorded: the engine
    // fetches `ADD <url>` from the host (it could read the platform's ports) and resolves FROM in
    // its own store (another app's image, an image id prefix).
    if (stack?.stack === 'dockerfile') {
      const refused = await dockerfileRefused(deps, p.user, (await p.tree.read('Dockerfile')) ?? '')
      if (refused) {
        out.error(refused)
        out.error('nothing was built or recorded')
        await out.close()
        log.info({ reason: refused }, 'push refused: the Dockerfile names what it may not')
        return { ok: false, build, reason: refused }
      }
    }
    await run({
      type: 'ReceivePush',
      app: p.app,
      sha: p.sha,
      user: p.user,
      fingerprint: p.fingerprint,
      stack: stack?.stack ?? 'unknown',
      builder: deps.builderId,
    })
    const receive = t0 - p.startedAt
    if (stackError !== undefined) return await fail(stackError)

    let procfile: Record<string, string> = {}
    const procText = files.has('Procfile') ? await p.tree.read('Procfile') : undefined
    if (procText !== undefined) {
      try {
        procfile = parseProcfile(procText)
      } catch (err) {
        return await fail((err as Error).message)
      }
    }

    const image = `${registryOf(deps.cfg)}/${p.app}:git-${sha7}`
    out.heading(`Building ${p.app} ${sha7} (${stack!.stack === 'node' ? `Node app, no Dockerfile: built on ${NODE_BASE_IMAGE}` : 'Dockerfile'})`)
    const tb = Date.now()
    const extra: Record<string, string> = stack!.stack === 'node' ? { Dockerfile: stack!.dockerfile } : {}
    try {
      await dockerBuild(deps, p, image, extra)
    } catch (err) {
      if (err instanceof BuildFailure) return await fail(err.message)
      throw err
    }
    const tr = Date.now()
    out.heading(`Pushing ${image}`)
    const digest = await pushImage(deps.docker, image, (line) => log.debug({ line }, 'registry push'))
    const port = await imagePort(deps.docker, image)
    const ts = Date.now()
    const types = Object.keys(procfile)
    out.heading(`Process types: ${types.length ? types.join(', ') : 'web (the image CMD)'}; web port ${port}`)
    await run({ type: 'SucceedBuild', app: p.app, image, digest, procfile, port })
    log.info({ image, digest }, 'build succeeded')
    out.heading('Releasing...')
    const release = await waitForRelease(deps, p.app, build, p.signal)
    const te = Date.now()
    const phases: PushPhases = { receive, build: tr - tb, registry: ts - tr, release: te - ts }
    let deployFailed = false
    if (release === undefined) {
      out.error('the release manager has not made the release yet; it will appear in `wharf releases`')
    } else {
      out.heading(`Released v${release}`)
      if (deps.deployTimeoutMs) {
        out.heading(`Deploying v${release}...`)
        const deploy = await waitForDeploy(deps, p.app, release, deps.deployTimeoutMs, p.signal)
        phases.deploy = Date.now() - te
        if (deploy.outcome === 'completed') {
          out.heading(`Deployed v${deploy.release}${deploy.release === release ? '' : ` (v${release} was superseded by it)`}`)
          const td = Date.now()
          const trace = await waitForServed(deps, p.app, p.correlationId, deps.serveTimeoutMs ?? 0, p.signal)
          if (deps.serveTimeoutMs) phases.serve = Date.now() - td
          if (trace?.status === 'served') out.heading(`Served by the router: every new request reaches v${deploy.release}`)
          else if (deps.serveTimeoutMs)
            out.error(
              `the router does not serve v${deploy.release} yet (${Math.round(deps.serveTimeoutMs / 1000)} s); \`wharf events:trace v${release}\` follows it`,
            )
          if (trace) {
            out.heading('Trace: from the push to the live route')
            out.lines(`${formatTrace(trace)}\n`)
          }
        } else if (deploy.outcome === 'failed') {
          deployFailed = true
          out.error(`the deploy of v${release} failed: ${deploy.reason}`)
          out.error(deploy.rolledBackTo ? `v${deploy.rolledBackTo} keeps running` : 'what ran before keeps running')
        } else out.error(`v${release} is not deployed after ${Math.round(deps.deployTimeoutMs / 1000)} s; \`wharf ps\` shows what runs`)
      }
      out.lines(`${appUrl(deps.cfg, p.app)}\n`)
    }
    out.lines(
      `(receive ${s(receive)}, build ${s(phases.build)}, registry ${s(phases.registry)}, release ${s(phases.release)}${phases.deploy === undefined ? '' : `, deploy ${s(phases.deploy)}`}${phases.serve === undefined ? '' : `, route ${s(phases.serve)}`})\n`,
    )
    await out.close()
    log.info({ release, phases, deployFailed }, 'push done')
    if (deployFailed) return { ok: false, build, reason: 'the deploy failed' }
    return { ok: true, build, image, ...(release === undefined ? {} : { release }), phases }
  } catch (err) {
    log.error({ err }, 'build broke')
    const reason = p.signal.aborted ? 'the push was interrupted (the client went away)' : `the builder could not finish: ${(err as Error).message}`
    try {
      return await fail(reason)
    } catch (err2) {
      // WHARF_CONFLICT: the build decider refused (the build had finished, or never started).
      if (err2 instanceof WharfError && err2.code === 'WHARF_CONFLICT') log.error({ err: err2 }, 'cannot record the failed build')
      else log.error({ err: err2 }, 'cannot record the failed build; the recovery sweep will')
      return { ok: false, build, reason }
    }
  }
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`

/** `docker build` of the commit through the engine API, every line of output to the pusher. */
async function dockerBuild(deps: BuildDeps, p: PushToBuild, image: string, extra: Record<string, string>): Promise<void> {
  const { stream: tar, done: archived } = p.tree.archive(extra)
  const limitMs = deps.buildTimeoutMs ?? deps.cfg.limits.buildTimeoutMs
  const timeout = AbortSignal.timeout(limitMs)
  const opts: BuildOptions = {
    tag: image,
    labels: { [LABELS.app]: p.app, [LABELS.sha]: p.sha },
    signal: AbortSignal.any([p.signal, timeout]),
  }
  if (deps.npmRegistry) opts.buildArgs = { NPM_CONFIG_REGISTRY: deps.npmRegistry }
  let failure: string | undefined
  try {
    failure = (await deps.docker.buildImage(tar, opts, (text) => p.out.lines(text))).error
  } catch (err) {
    const e = err as { statusCode?: number; message: string }
    if (timeout.aborted)
      throw new BuildFailure(
        `the build took longer than ${limitMs >= 120_000 ? `${Math.round(limitMs / 60_000)} min` : `${Math.round(limitMs / 1000)} s`} and was stopped`,
      )
    // 4xx: the engine refused what the repo gave it (an empty Dockerfile, a bad instruction).
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) throw new BuildFailure(`the build failed: ${e.message}`)
    if (p.signal.aborted) throw err
    throw new WharfError('WHARF_UNAVAILABLE', `the Docker engine refused the build: ${e.message}`, { cause: err })
  }
  await archived.catch((err: Error) => {
    failure ??= err.message
  })
  if (failure) throw new BuildFailure(`the build failed: ${failure.trim()}`)
}

/**
 * The version of the release the release manager makes of the build (from the releases read
 * model), or undefined after the timeout.
 */
async function waitForRelease(deps: BuildDeps, app: string, build: string, signal: AbortSignal): Promise<number | undefined> {
  return waitUntil(deps.pool, () => releaseOfBuild(deps.pool, app, build), { projections: ['releases'], timeoutMs: deps.releaseTimeoutMs ?? 60_000, signal })
}

type DeployOutcome = { outcome: 'completed'; release: number } | { outcome: 'failed'; reason: string; rolledBackTo?: number } | { outcome: 'timeout' }

/**
 * The scheduler's verdict on a release (from the event log read model): `DeployCompleted` of it or
 * of a later release (which superseded it), `DeployFailed` of it, or a timeout.
 */
async function waitForDeploy(deps: BuildDeps, app: string, release: number, timeoutMs: number, signal: AbortSignal): Promise<DeployOutcome> {
  const r = await waitUntil(deps.pool, () => deployVerdict(deps.pool, app, release), { projections: ['eventlog'], timeoutMs, signal })
  if (r?.type === 'DeployCompleted') return { outcome: 'completed', release: r.data.release }
  if (r?.type === 'DeployFailed') {
    return { outcome: 'failed', reason: r.data.reason ?? 'unknown', ...(r.data.rolledBackTo ? { rolledBackTo: r.data.rolledBackTo } : {}) }
  }
  return { outcome: 'timeout' }
}

/**
 * The trace of the push (by its correlation id) once the router serves its deploy's containers (or
 * the chain failed), waiting up to `timeoutMs`; then the trace as it stands (undefined: nothing of
 * the push in the events read model yet).
 */
async function waitForServed(deps: BuildDeps, app: string, correlationId: string, timeoutMs: number, signal: AbortSignal): Promise<Trace | undefined> {
  const done = (t: Trace | undefined) => (t && t.status !== 'deploying' && t.status !== 'pending' ? t : undefined)
  if (timeoutMs > 0) {
    const t = await waitUntil(deps.pool, async () => done(await traceOf(deps.pool, app, correlationId)), { projections: ['eventlog'], timeoutMs, signal })
    if (t) return t
  }
  return traceOf(deps.pool, app, correlationId)
}

/**
 * Why the Dockerfile may not be built, or undefined: an image it names that the pusher may not use
 * (an image id, another app's repository in the platform's registry), an `ADD` URL to a loopback,
 * private, link-local or platform address (the outbound rule of hooks and drains, WHARF_OUTBOUND_ALLOW).
 */
export async function dockerfileRefused(deps: Pick<BuildDeps, 'cfg' | 'pool'>, user: string, text: string): Promise<string | undefined> {
  const who = { username: user, admin: (await getUser(deps.pool, user))?.admin ?? false }
  const mayUse = (app: string) =>
    visibleApp(deps.pool, who, app, 'use').then(
      () => true,
      () => false,
    )
  const policy = outboundPolicy(deps.cfg)
  for (const ref of dockerfileRefs(text)) {
    try {
      if (ref.kind === 'image') await checkImageRef(ref.ref, mayUse, `the Dockerfile, line ${ref.line}`)
      else {
        let url: URL
        try {
          url = new URL(ref.url)
        } catch {
          return `the Dockerfile, line ${ref.line}: ADD ${ref.url.slice(0, 200)} is not a URL the builder can check; name files of the repo or a public URL`
        }
        if (url.protocol !== 'http:' && url.protocol !== 'https:') return `the Dockerfile, line ${ref.line}: ADD fetches http(s) URLs only`
        await checkTarget(policy, url.hostname, urlPort(url))
      }
    } catch (err) {
      if (err instanceof WharfError) return ref.kind === 'url' ? `the Dockerfile, line ${ref.line}: ADD ${ref.url.slice(0, 200)}: ${err.message}` : err.message
      throw err
    }
  }
  return undefined
}
