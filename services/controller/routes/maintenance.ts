import Type from 'typebox'
import { runAppCommand, signedIn } from '../apps/access.js'
import { AppParams, ErrorOut } from '../apps/schemas.js'
import type { RoutePlugin } from '../context.js'
import { visibleApp } from '../../../projections/index.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut }
const MaintenanceOut = Type.Object({ enabled: Type.Boolean() }, { additionalProperties: false })

/** `maintenance:on|off|info`: while on, the router answers 503 for the app. */
export const maintenanceRoutes: RoutePlugin = (api, deps) => {
  api.get(
    '/apps/:app/maintenance',
    { schema: { summary: 'Whether the app is in maintenance mode.', params: AppParams, response: { 200: MaintenanceOut, ...errors } } },
    async (req) => {
      const row = await visibleApp(deps.pool, signedIn(req), req.params.app)
      return { enabled: row.maintenance }
    },
  )

  api.post(
    '/apps/:app/maintenance',
    {
      schema: {
        summary: 'Turn maintenance mode on or off.',
        params: AppParams,
        body: Type.Object({ enabled: Type.Boolean() }, { additionalProperties: false }),
        response: { 200: MaintenanceOut, ...errors },
      },
    },
    async (req) => {
      await runAppCommand(deps, req, req.params.app, { type: 'SetMaintenance', enabled: req.body.enabled }, ['access'])
      const row = await visibleApp(deps.pool, signedIn(req), req.params.app)
      return { enabled: row.maintenance }
    },
  )
}
