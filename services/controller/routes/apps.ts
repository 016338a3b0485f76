import Type from 'typebox'
import { WharfError } from '../../../core/errors.js'
import { actorOf, appStream, contextOf, requireUser, runAppCommand, signedIn } from '../apps/access.js'
import { releaseClaim } from '../apps/domains.js'
import { generateAppName } from '../apps/names.js'
import { startReleaseManager } from '../apps/release-manager.js'
import { appInfo } from '../apps/queries.js'
import { AppInfoOut, AppName, AppOut, AppParams, ErrorOut, UserName } from '../apps/schemas.js'
import { answerAt, At } from '../apps/at.js'
import type { RoutePlugin } from '../context.js'
import { withinAppQuota } from '../apps/quotas.js'
import { runCommand } from '../../../domain/command.js'
import { appDecider } from '../../../domain/app/decider.js'
import { appUrl } from '../../../core/config.js'
import { visibleApp, listApps } from '../../../projections/index.js'

/** Read models an app's creation or destruction touches. */
const LIFECYCLE = ['apps', 'access', 'releases', 'formation', 'domains', 'config']

const errors = { 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut }

/**
 * `apps:create|list|info|destroy|transfer`, and the release manager (it turns each BuildSucceeded
 * into a release on the app's stream), which runs while the server does.
 */
export const appsRoutes: RoutePlugin = (api, deps) => {
  let releaseManager: { stop(): Promise<void> } | undefined
  api.addHook('onReady', async () => {
    releaseManager = await startReleaseManager({ store: deps.store, pool: deps.pool, log: deps.log.child({ component: 'release-manager' }) })
  })
  api.addHook('onClose', async () => {
    await releaseManager?.stop()
  })

  api.post(
    '/apps',
    {
      schema: {
        summary: 'Create an app (a name is generated when none is given); makes release v1.',
        body: Type.Object({ name: Type.Optional(AppName) }, { additionalProperties: false }),
        response: { 201: AppInfoOut, ...errors },
      },
    },
    async (req, reply) => {
      const user = signedIn(req)
      const given = req.body.name
      // A generated name that is taken already is drawn again (a few times), a given one is refused.
      const name = await withinAppQuota(deps, user, async () => {
        for (let attempt = 0; ; attempt++) {
          const name = given ?? generateAppName()
          try {
            await runCommand(deps, {
              stream: appStream(name),
              decider: appDecider,
              command: { type: 'CreateApp', by: actorOf(user), name },
              ctx: contextOf(user, req.id),
              waitFor: LIFECYCLE,
            })
            return name
          } catch (err) {
            if (given === undefined && attempt < 5 && err instanceof WharfError && err.code === 'WHARF_EXISTS') continue
            throw err
          }
        }
      })
      const row = await visibleApp(deps.pool, user, name)
      return reply.status(201).send(await appInfo(deps.pool, deps.cfg, row))
    },
  )

  api.get(
    '/apps',
    {
      schema: {
        summary: 'Apps the caller may see: owned, shared with them, or all for admins.',
        response: { 200: Type.Object({ apps: Type.Array(AppOut) }, { additionalProperties: false }), ...errors },
      },
    },
    async (req) => {
      const apps = await listApps(deps.pool, signedIn(req))
      return { apps: apps.map((a) => ({ ...a, url: appUrl(deps.cfg, a.name) })) }
    },
  )

  api.get(
    '/apps/:app',
    {
      schema: {
        summary: 'An app: owner, URL, current release, domains, formation (as of a point of the event log with `at`).',
        params: AppParams,
        querystring: Type.Object({ at: Type.Optional(At) }, { additionalProperties: false }),
        response: { 200: AppInfoOut, ...errors },
      },
    },
    async (req, reply) => {
      const { app } = req.params
      const row = await visibleApp(deps.pool, signedIn(req), app)
      if (req.query.at === undefined) return appInfo(deps.pool, deps.cfg, row)
      // Owner and maintenance then: the app's row as the read models had it (access was checked above, now).
      return answerAt(deps, reply, app, req.query.at, ['apps', 'access', 'releases', 'domains', 'formation'], async (db) =>
        appInfo(db, deps.cfg, await visibleApp(db, { username: row.owner, admin: true }, app)),
      )
    },
  )

  api.delete(
    '/apps/:app',
    {
      schema: {
        summary: "Destroy an app (owner or admin); confirm with the app's name.",
        params: AppParams,
        body: Type.Object({ confirm: Type.String({ maxLength: 64 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ name: Type.String(), destroyed: Type.Boolean() }, { additionalProperties: false }), ...errors },
      },
    },
    async (req) => {
      const user = signedIn(req)
      const { app } = req.params
      const { state } = await runAppCommand(deps, req, app, { type: 'DestroyApp', confirm: req.body.confirm }, LIFECYCLE)
      // The app's domains are free again.
      for (const domain of state.domains) await releaseClaim(deps, user, req.id, app, domain)
      return { name: app, destroyed: true }
    },
  )

  api.post(
    '/apps/:app/transfer',
    {
      schema: {
        summary: 'Give an app to another user (owner or admin).',
        params: AppParams,
        body: Type.Object({ owner: UserName }, { additionalProperties: false }),
        response: { 200: AppInfoOut, ...errors },
      },
    },
    async (req) => {
      const user = signedIn(req)
      const { app } = req.params
      await visibleApp(deps.pool, user, app, 'manage')
      await requireUser(deps.pool, req.body.owner)
      await runAppCommand(deps, req, app, { type: 'TransferApp', to: req.body.owner }, ['apps', 'access'])
      // The caller may no longer see the app (an owner who gave it away): answer from the admin's view.
      return appInfo(deps.pool, deps.cfg, await visibleApp(deps.pool, { username: req.body.owner, admin: true }, app))
    },
  )
}
