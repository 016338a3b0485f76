import Type from 'typebox'
import { checkTarget, outboundPolicy } from '../../../core/outbound.js'
import { MAX_DRAIN_URL, parseDrainUrl } from '../../../domain/app/drains.js'
import { getDrains, visibleApp } from '../../../projections/index.js'
import { runAppCommand, signedIn } from '../apps/access.js'
import { AppParams, ErrorOut } from '../apps/schemas.js'
import type { RoutePlugin } from '../context.js'
import { AppName } from '../../../domain/index.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut }
const DrainOut = Type.Object({ id: Type.String(), url: Type.String(), created: Type.String() }, { additionalProperties: false })
const DrainsOut = Type.Object({ drains: Type.Array(DrainOut) }, { additionalProperties: false })

/** `drains:add|list|remove`: where else an app's log lines go. */
export const drainsRoutes: RoutePlugin = (api, deps) => {
  const policy = outboundPolicy(deps.cfg)
  const list = async (app: string) => ({ drains: await getDrains(deps.pool, app) })

  api.get('/apps/:app/drains', { schema: { summary: "An app's log drains.", params: AppParams, response: { 200: DrainsOut, ...errors } } }, async (req) => {
    await visibleApp(deps.pool, signedIn(req), req.params.app)
    return list(req.params.app)
  })

  api.post(
    '/apps/:app/drains',
    {
      schema: {
        summary: 'Add a log drain: syslog://host:port, syslog+tls://host:port or https://host/path.',
        params: AppParams,
        body: Type.Object({ url: Type.String({ minLength: 1, maxLength: MAX_DRAIN_URL + 100 }) }, { additionalProperties: false }),
        response: { 201: DrainsOut, ...errors },
      },
    },
    async (req, reply) => {
      // Who may touch the app first (a stranger learns nothing of addresses), then where the drain points.
      await visibleApp(deps.pool, signedIn(req), req.params.app)
      const target = parseDrainUrl(req.body.url)
      await checkTarget(policy, target.host, target.port)
      await runAppCommand(deps, req, req.params.app, { type: 'AddDrain', url: req.body.url }, ['drains'])
      return reply.status(201).send(await list(req.params.app))
    },
  )

  api.delete(
    '/apps/:app/drains/:drain',
    {
      schema: {
        summary: 'Remove a log drain, by id or URL.',
        params: Type.Object({ app: AppName, drain: Type.String({ minLength: 1, maxLength: MAX_DRAIN_URL + 100 }) }, { additionalProperties: false }),
        response: { 200: DrainsOut, ...errors },
      },
    },
    async (req) => {
      await runAppCommand(deps, req, req.params.app, { type: 'RemoveDrain', drain: req.params.drain }, ['drains'])
      return list(req.params.app)
    },
  )
}
