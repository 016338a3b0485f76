import Type from 'typebox'
import { runAppCommand, signedIn } from '../apps/access.js'
import { AppParams, ErrorOut, FormationIn, FormationOut, ProcessType } from '../apps/schemas.js'
import type { RoutePlugin } from '../context.js'
import { withinReplicaQuota } from '../apps/quotas.js'
import { visibleApp, getFormation, getProcesses } from '../../../projections/index.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut }

const ProcessOut = Type.Object(
  { container: Type.String(), type: Type.String(), release: Type.Integer(), host: Type.String(), port: Type.Integer(), started: Type.String() },
  { additionalProperties: false },
)

/** `ps:scale`, `ps:list` and `ps:restart`. */
export const formationRoutes: RoutePlugin = (api, deps) => {
  api.get(
    '/apps/:app/formation',
    { schema: { summary: 'How many processes of each type should run.', params: AppParams, response: { 200: FormationOut, ...errors } } },
    async (req) => {
      await visibleApp(deps.pool, signedIn(req), req.params.app)
      return { formation: await getFormation(deps.pool, req.params.app) }
    },
  )

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
      const formation = req.body as Record<string, number>
      await withinReplicaQuota(deps, signedIn(req), req.params.app, formation, () =>
        runAppCommand(deps, req, req.params.app, { type: 'Scale', formation }, ['formation']),
      )
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

  api.post(
    '/apps/:app/restart',
    {
      schema: {
        summary: "Restart an app's processes, of one type or all; the scheduler starts new ones together, then drains and stops the old ones.",
        params: AppParams,
        body: Type.Object({ type: Type.Optional(ProcessType) }, { additionalProperties: false }),
        response: { 202: Type.Object({ restarting: Type.Array(Type.String()) }, { additionalProperties: false }), ...errors },
      },
    },
    async (req, reply) => {
      await runAppCommand(deps, req, req.params.app, { type: 'RequestRestart', ...(req.body.type ? { processType: req.body.type } : {}) }, ['eventlog'])
      const types = req.body.type ? [req.body.type] : Object.keys(await getFormation(deps.pool, req.params.app))
      return reply.status(202).send({ restarting: types })
    },
  )
}
