import { mkdir, open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type pg from 'pg'
import Type from 'typebox'
import type { ContainerEngine } from '../../../core/engine/engine.js'
import { WharfError } from '../../../core/errors.js'
import { buildDecider, type BuildCommand } from '../../../domain/build/decider.js'
import { runCommand } from '../../../domain/command.js'
import { checkImageRef, ImageRef, Port, Procfile, type DataOf } from '../../../domain/index.js'
import { newEventId, streamId } from '../../../events/index.js'
import { findBuildRows, listBuildRows, releasedVersion, waitUntil, type BuildRow, visibleApp } from '../../../projections/index.js'
import { importImage } from '../../../core/engine/images.js'
import { buildLogPath } from '../../../core/paths.js'
import { acquirePushLock } from '../../../core/pushlock.js'
import { contextOf, runAppCommand, signedIn } from '../apps/access.js'
import { AppName, AppParams, ErrorOut } from '../apps/schemas.js'
import type { RoutePlugin } from '../context.js'
import { appUrl } from '../../../core/config.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 503: ErrorOut, 504: ErrorOut }

/** Most of a build log `GET .../builds/:build` answers: its last 1 MiB. */
export const MAX_LOG_BYTES = 1024 * 1024
/** How long `POST .../builds` waits for the release manager to release a build, ms. */
const RELEASE_WAIT_MS = 30_000
/** Lines of output a `BuildFailed` keeps (the schema's maximum), and the longest line. */
const LAST_LINES = 50
const MAX_LINE = 4096

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()])

export const BuildOut = Type.Object(
  {
    /** The build stream's UUIDv7 (`build.<id>`). */
    id: Type.String(),
    app: Type.String(),
    /** `git` (a push) or `image` (`builds:create`). */
    kind: Type.String(),
    sha: Nullable(Type.String()),
    source: Nullable(Type.String()),
    stack: Nullable(Type.String()),
    /** Who pushed or created it. */
    by: Type.String(),
    status: Type.Union([Type.Literal('received'), Type.Literal('building'), Type.Literal('succeeded'), Type.Literal('failed')]),
    image: Nullable(Type.String()),
    digest: Nullable(Type.String()),
    procfile: Nullable(Type.Record(Type.String(), Type.String())),
    port: Nullable(Type.Integer()),
    reason: Nullable(Type.String()),
    lastLines: Type.Array(Type.String()),
    /** The release made of it (`vN`), once the release manager has. */
    release: Nullable(Type.Integer()),
    created: Type.String(),
    finished: Nullable(Type.String()),
  },
  { additionalProperties: false },
)
export const BuildInfoOut = Type.Object({ ...BuildOut.properties, log: Type.String() }, { additionalProperties: false })
const BuildRef = Type.String({ pattern: '^(latest|[0-9a-f][0-9a-f-]{7,35})$', description: 'a build id, a unique prefix of one (8+ characters), or `latest`' })

/** One build as the API answers it (the CLI reads the same type). */
export type BuildView = {
  id: string
  app: string
  kind: string
  sha: string | null
  source: string | null
  stack: string | null
  by: string
  status: 'received' | 'building' | 'succeeded' | 'failed'
  image: string | null
  digest: string | null
  procfile: Record<string, string> | null
  port: number | null
  reason: string | null
  lastLines: string[]
  release: number | null
  created: string
  finished: string | null
}

function buildOf(r: BuildRow): BuildView {
  return {
    id: r.id,
    app: r.app,
    kind: r.kind,
    sha: r.sha,
    source: r.source,
    stack: r.stack,
    by: r.username,
    status: r.status,
    image: r.image,
    digest: r.digest,
    procfile: r.procfile,
    port: r.port,
    reason: r.reason,
    lastLines: r.last_lines ?? [],
    release: r.release,
    created: r.created_at.toISOString(),
    finished: r.finished_at ? r.finished_at.toISOString() : null,
  }
}

/** Builds of an app, newest first. */
export async function listBuilds(pool: pg.Pool, app: string, limit = 100): Promise<BuildView[]> {
  return (await listBuildRows(pool, app, limit)).map(buildOf)
}

/** One build of an app by id, unique id prefix, or `latest`; `WHARF_NOT_FOUND` when there is none. */
export async function getBuild(pool: pg.Pool, app: string, ref: string): Promise<BuildView> {
  const rows = await findBuildRows(pool, app, ref)
  const exact = rows.find((r) => r.id === ref)
  if (exact) return buildOf(exact)
  if (rows.length > 1)
    throw new WharfError('WHARF_INVALID', `${ref} names more than one build of ${app}: give more of the id`, { details: { app, build: ref } })
  if (!rows[0])
    throw new WharfError('WHARF_NOT_FOUND', ref === 'latest' ? `${app} has no build` : `${app} has no build ${ref}`, { details: { app, build: ref } })
  return buildOf(rows[0])
}

/** The last {@link MAX_LOG_BYTES} of a build's log file (from a line start), or undefined when there is none. */
async function readLogTail(path: string): Promise<string | undefined> {
  let fh
  try {
    fh = await open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    const { size } = await fh.stat()
    const start = Math.max(0, size - MAX_LOG_BYTES)
    const buf = Buffer.alloc(size - start)
    await fh.read(buf, 0, buf.length, start)
    if (start === 0) return buf.toString('utf8')
    // Cut mid-file: start at the next whole line (no half line, no half character).
    const nl = buf.indexOf(0x0a)
    return buf.subarray(nl < 0 ? 0 : nl + 1).toString('utf8')
  } finally {
    await fh.close()
  }
}

/** Waits until the release of `build` is in both the builds and the releases read models; answers its version. */
async function releaseOf(pool: pg.Pool, build: string, timeoutMs: number): Promise<number> {
  const release = await waitUntil(pool, () => releasedVersion(pool, build), { projections: ['builds', 'releases'], timeoutMs })
  if (release !== undefined) return release
  throw new WharfError('WHARF_TIMEOUT', `build ${build} succeeded, but its release did not appear within ${timeoutMs / 1000} s; see wharf releases:list`, {
    details: { build },
  })
}

/** Keeps the last {@link LAST_LINES} lines, each cut to {@link MAX_LINE} characters. */
function tail(lines: readonly string[]): string[] {
  return lines.slice(-LAST_LINES).map((l) => (l.length > MAX_LINE ? l.slice(0, MAX_LINE) : l))
}

/**
 * `builds:list|info|create`. `POST` is Deis's `pull` (Heroku's `builds:create`): an image from the
 * Docker engine or the platform registry becomes a build of the app, then a release.
 */
export const buildsRoutes: RoutePlugin = (api, deps) => {
  const engine = (): ContainerEngine => {
    if (!deps.engine) throw new WharfError('WHARF_UNAVAILABLE', 'the controller has no Docker engine (WHARF_DOCKER_HOST is not set)')
    return deps.engine
  }

  api.get(
    '/apps/:app/builds',
    {
      schema: {
        summary: "An app's builds, newest first.",
        params: AppParams,
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ builds: Type.Array(BuildOut) }, { additionalProperties: false }), ...errors },
      },
    },
    async (req) => {
      await visibleApp(deps.pool, signedIn(req), req.params.app)
      return { builds: await listBuilds(deps.pool, req.params.app, req.query.limit ?? 100) }
    },
  )

  api.get(
    '/apps/:app/builds/:build',
    {
      schema: {
        summary: 'One build (or `latest`), with its output: the last 1 MiB of its log, else its last lines.',
        params: Type.Object({ app: AppName, build: BuildRef }, { additionalProperties: false }),
        response: { 200: BuildInfoOut, ...errors },
      },
    },
    async (req) => {
      await visibleApp(deps.pool, signedIn(req), req.params.app)
      const build = await getBuild(deps.pool, req.params.app, req.params.build)
      const log = (await readLogTail(buildLogPath(deps.cfg.home, build.id))) ?? build.lastLines.map((l) => `${l}\n`).join('')
      return { ...build, log }
    },
  )

  api.post(
    '/apps/:app/builds',
    {
      schema: {
        summary: 'Release an existing image (from the Docker engine or the platform registry) as a build: pushes it to the registry, makes a release.',
        params: AppParams,
        body: Type.Object(
          {
            image: ImageRef,
            /** Process type -> command; default none (the image's CMD is `web`). */
            procfile: Type.Optional(Procfile),
            /** The port a web process listens on; default the image's one EXPOSEd TCP port, else 5000. */
            port: Type.Optional(Port),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object(
            { build: Type.String(), release: Type.Integer(), image: Type.String(), digest: Type.String(), port: Type.Integer(), url: Type.String() },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req, reply) => {
      const user = signedIn(req)
      const { app } = req.params
      const { image: source, procfile, port } = req.body
      // Access first (the same level as config:set), so a caller who may not deploy appends nothing.
      await runAppCommand(deps, req, app, { type: 'CheckAccess', level: 'use' }, [])
      // Never an image id, never another app's repository in the platform's registry (nothing recorded).
      const mayUse = (other: string) =>
        visibleApp(deps.pool, user, other, 'use').then(
          () => true,
          () => false,
        )
      await checkImageRef(source, mayUse)
      const docker = engine()
      const id = newEventId()
      const stream = streamId('build', id)
      const ctx = contextOf(user, req.id)
      // The answer waits for the release below, not for the read models of these appends.
      const run = (command: BuildCommand) => runCommand(deps, { stream, decider: buildDecider, command, ctx, waitFor: [] })
      const lines: string[] = []
      const onLine = (l: string) => void lines.push(l)
      const log = deps.log.child({ app, build: id })
      const saveLog = () =>
        mkdir(join(deps.cfg.home, 'builds'), { recursive: true })
          .then(() => writeFile(buildLogPath(deps.cfg.home, id), lines.map((l) => `${l}\n`).join('')))
          .catch((err) => log.warn({ err }, 'cannot write the build log'))

      // One build of an app at a time, pushes included (and the builder's orphan sweep skips it).
      const lock = await acquirePushLock(deps.pool, deps.cfg.namespace, app, { timeoutMs: 60_000 })
      let data: DataOf<'BuildSucceeded'> & { digest: string }
      try {
        await run({ type: 'StartBuild', app, user: user.username, source, builder: 'controller' })
        let imported
        try {
          onLine(`importing ${source}...`)
          imported = await importImage(docker, { source, app, registry: `127.0.0.1:${deps.cfg.ports.registry}`, onLine, mayUseRepo: mayUse })
        } catch (err) {
          const reason = (err instanceof Error ? err.message : String(err)).slice(0, 2048) || 'the import failed'
          onLine(`failed: ${reason}`)
          await saveLog()
          await run({ type: 'FailBuild', app, reason, lastLines: tail(lines) }).catch((appendErr) =>
            log.error({ err: appendErr }, 'cannot record that a build failed'),
          )
          if (err instanceof WharfError) throw err
          throw new WharfError('WHARF_UNAVAILABLE', `cannot import ${source}: ${reason}`, { cause: err })
        }
        data = { app, image: imported.image, digest: imported.digest, procfile: procfile ?? {}, port: port ?? imported.port }
        onLine(`pushed ${imported.image} (${imported.digest})`)
        await saveLog()
        await run({ type: 'SucceedBuild', ...data })
      } finally {
        await lock.release()
      }
      const release = await releaseOf(deps.pool, id, RELEASE_WAIT_MS)
      return reply.status(201).send({ build: id, release, image: data.image, digest: data.digest, port: data.port, url: appUrl(deps.cfg, app) })
    },
  )
}
