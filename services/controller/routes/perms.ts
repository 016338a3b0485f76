import Type from 'typebox'
import { requireUser, runAppCommand, signedIn } from '../apps/access.js'
import { AppName, AppParams, ErrorOut, UserName } from '../apps/schemas.js'
import { answerAt, At } from '../apps/at.js'
import type { RoutePlugin } from '../context.js'
import { visibleApp, getCollaborators } from '../../../projections/index.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut }
const PermsOut = Type.Object({ owner: Type.String(), collaborators: Type.Array(Type.String()) }, { additionalProperties: false })

/**
 * `perms:list|create|delete`: collaborators may use an app (config, releases, scale, domains,
 * limits, maintenance, push) and see its perms; only the owner and admins may share, unshare,
 * transfer or destroy it.
 */
export const permsRoutes: RoutePlugin = (api, deps) => {
  api.get(
    '/apps/:app/perms',
    {
      schema: {
        summary: "An app's owner and collaborators (as of a point of the event log with `at`).",
        params: AppParams,
        querystring: Type.Object({ at: Type.Optional(At) }, { additionalProperties: false }),
        response: { 200: PermsOut, ...errors },
      },
    },
    async (req, reply) => {
      const { app } = req.params
      const row = await visibleApp(deps.pool, signedIn(req), app)
      if (req.query.at === undefined) return { owner: row.owner, collaborators: await getCollaborators(deps.pool, app) }
      // The owner then: the app's row as the apps read model had it (access was checked above, now).
      return answerAt(deps, reply, app, req.query.at, ['apps', 'access'], async (db) => {
        const then = await visibleApp(db, { username: row.owner, admin: true }, app)
        return { owner: then.owner, collaborators: await getCollaborators(db, app) }
      })
    },
  )

  api.post(
    '/apps/:app/perms',
    {
      schema: {
        summary: 'Share an app with a user (owner or admin).',
        params: AppParams,
        body: Type.Object({ username: UserName }, { additionalProperties: false }),
        response: { 201: PermsOut, ...errors },
      },
    },
    async (req, reply) => {
      const row = await visibleApp(deps.pool, signedIn(req), req.params.app, 'manage')
      await requireUser(deps.pool, req.body.username)
      await runAppCommand(deps, req, req.params.app, { type: 'AddCollaborator', username: req.body.username }, ['access'])
      return reply.status(201).send({ owner: row.owner, collaborators: await getCollaborators(deps.pool, req.params.app) })
    },
  )

  api.delete(
    '/apps/:app/perms/:username',
    {
      schema: {
        summary: 'Stop sharing an app with a user (owner or admin).',
        params: Type.Object({ app: AppName, username: UserName }, { additionalProperties: false }),
        response: { 200: PermsOut, ...errors },
      },
    },
    async (req) => {
      const row = await visibleApp(deps.pool, signedIn(req), req.params.app, 'manage')
      await runAppCommand(deps, req, req.params.app, { type: 'RemoveCollaborator', username: req.params.username }, ['access'])
      return { owner: row.owner, collaborators: await getCollaborators(deps.pool, req.params.app) }
    },
  )
}
