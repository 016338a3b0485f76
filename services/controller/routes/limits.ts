import { runAppCommand, signedIn } from '../apps/access.js'
import { getRelease } from '../apps/queries.js'
import { AppParams, ErrorOut, LimitsIn, LimitsOut, LimitsUnsetIn } from '../apps/schemas.js'
import type { ControllerDeps, RoutePlugin } from '../context.js'
import { visibleApp } from '../../../projections/index.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut }

/** An app's limits are those of its current release. */
async function limitsOf(deps: ControllerDeps, app: string) {
  return (await getRelease(deps.pool, app))?.limits ?? { memory: {}, cpu: {} }
}

/** `limits:list|set|unset`: memory (`512M`) and CPU (`0.5`) per process type; each change is a release. */
export const limitsRoutes: RoutePlugin = (api, deps) => {
  api.get(
    '/apps/:app/limits',
    { schema: { summary: "An app's memory and CPU limits per process type.", params: AppParams, response: { 200: LimitsOut, ...errors } } },
    async (req) => {
      await visibleApp(deps.pool, signedIn(req), req.params.app)
      return limitsOf(deps, req.params.app)
    },
  )

  api.post(
    '/apps/:app/limits',
    {
      schema: {
        summary: 'Set limits (`{"memory": {"web": "512M"}, "cpu": {"web": 0.5}}`); makes a release.',
        params: AppParams,
        body: LimitsIn,
        response: { 200: LimitsOut, ...errors },
      },
    },
    async (req) => {
      await runAppCommand(deps, req, req.params.app, { type: 'SetLimits', memory: req.body.memory ?? {}, cpu: req.body.cpu ?? {} }, ['releases'])
      return limitsOf(deps, req.params.app)
    },
  )

  api.post(
    '/apps/:app/limits/unset',
    {
      schema: {
        summary: 'Remove limits (`{"memory": ["web"], "cpu": ["web"]}`); makes a release.',
        params: AppParams,
        body: LimitsUnsetIn,
        response: { 200: LimitsOut, ...errors },
      },
    },
    async (req) => {
      await runAppCommand(deps, req, req.params.app, { type: 'UnsetLimits', memory: req.body.memory ?? [], cpu: req.body.cpu ?? [] }, ['releases'])
      return limitsOf(deps, req.params.app)
    },
  )
}
