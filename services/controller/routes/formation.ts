import Type from 'typebox'
import { runAppCommand, signedIn, visibleApp } from '../apps/access.js'
import { getFormation, getProcesses } from '../apps/queries.js'
import { AppParams, ErrorOut, FormationIn, FormationOut } from '../apps/schemas.js'
import type { RoutePlugin } from '../context.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut }

const ProcessOut = Type.Object(
  { container: Type.String(), type: Type.String(), release: Type.Integer(), host: Type.String(), port: Type.Integer(), started: Type.String() },
  { additionalProperties: false },
)

/** `ps:scale` and `ps:list`. */
export const formationRoutes: RoutePlugin = (api, deps) => {
  api.get('/apps/:app/formation', { schema: { summary: 'How many processes of each type should run.', params: AppParams, response: { 200: FormationOut, ...errors } } }, async (req) => {
    await visibleApp(deps.pool, signedIn(req), req.params.app)
    return { formation: await getFormation(deps.pool, req.params.app) }
  })

  api.post(
    '/apps/:app/formation',
    {
      schema: {
        summary: 'Scale process types (`{"web": 2}`; 0..100 each; types of the Procfile once the app is built).',
        params: AppParams,
        body: FormationIn,
        response: { 200: FormationOut, ...errors },
      },
    },
    async (req) => {
      await runAppCommand(deps, req, req.params.app, { type: 'Scale', formation: req.body as Record<string, number> }, ['formation'])
      return { formation: await getFormation(deps.pool, req.params.app) }
    },
  )

  api.get(
    '/apps/:app/processes',
    {
      schema: {
        summary: 'The running containers of an app (empty until containers run).',
        params: AppParams,
        response: { 200: Type.Object({ processes: Type.Array(ProcessOut) }, { additionalProperties: false }), ...errors },
      },
    },
    async (req) => {
      await visibleApp(deps.pool, signedIn(req), req.params.app)
      return { processes: await getProcesses(deps.pool, req.params.app) }
    },
  )
}
