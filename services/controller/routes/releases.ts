import Type from 'typebox'
import { WharfError } from '../../../core/errors.js'
import { runAppCommand, signedIn } from '../apps/access.js'
import { getRelease, listReleases, releaseSummary } from '../apps/queries.js'
import { AppName, AppParams, ErrorOut, ReleaseInfoOut, ReleaseOut } from '../apps/schemas.js'
import { answerAt, At } from '../apps/at.js'
import type { RoutePlugin } from '../context.js'
import { visibleApp } from '../../../projections/index.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut }
const Version = Type.String({ pattern: '^[vV]?[1-9][0-9]{0,8}$', description: '`v3` or `3`' })

function parseVersion(v: string): number {
  return Number(v.replace(/^[vV]/, ''))
}

/** `releases:list|info|rollback`. */
export const releasesRoutes: RoutePlugin = (api, deps) => {
  api.get(
    '/apps/:app/releases',
    {
      schema: {
        summary: "An app's releases, newest first (as of a point of the event log with `at`).",
        params: AppParams,
        querystring: Type.Object(
          { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })), at: Type.Optional(At) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ releases: Type.Array(ReleaseOut) }, { additionalProperties: false }), ...errors },
      },
    },
    async (req, reply) => {
      const { app } = req.params
      await visibleApp(deps.pool, signedIn(req), app)
      const releases = await answerAt(deps, reply, app, req.query.at, ['releases'], (db) => listReleases(db, app, req.query.limit ?? 100))
      return { releases: releases.map(releaseSummary) }
    },
  )

  api.get(
    '/apps/:app/releases/:version',
    {
      schema: {
        summary: 'One release, with its config.',
        params: Type.Object({ app: AppName, version: Version }, { additionalProperties: false }),
        response: { 200: ReleaseInfoOut, ...errors },
      },
    },
    async (req) => {
      await visibleApp(deps.pool, signedIn(req), req.params.app)
      const version = parseVersion(req.params.version)
      const release = await getRelease(deps.pool, req.params.app, version)
      if (!release) throw new WharfError('WHARF_NOT_FOUND', `${req.params.app} has no release v${version}`, { details: { app: req.params.app, version } })
      return release
    },
  )

  api.post(
    '/apps/:app/releases/rollback',
    {
      schema: {
        summary: "Roll back: a new release with vN's image and config (default: the release before the current one).",
        params: AppParams,
        body: Type.Object({ version: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Version])) }, { additionalProperties: false }),
        response: { 201: ReleaseInfoOut, ...errors },
      },
    },
    async (req, reply) => {
      const v = req.body.version
      const version = v === undefined ? undefined : typeof v === 'number' ? v : parseVersion(v)
      await runAppCommand(deps, req, req.params.app, version === undefined ? { type: 'Rollback' } : { type: 'Rollback', version }, ['config', 'releases'])
      const release = await getRelease(deps.pool, req.params.app)
      return reply.status(201).send(release!)
    },
  )
}
