import Type from 'typebox'
import { runAppCommand, signedIn } from '../apps/access.js'
import { AppParams, ConfigKey, ConfigOut, ConfigValues, ErrorOut, MAX_KEYS_PER_CALL } from '../apps/schemas.js'
import { answerAt, At } from '../apps/at.js'
import type { RoutePlugin } from '../context.js'
import type { Steps } from '../timing.js'
import { visibleApp, getConfig } from '../../../projections/index.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 413: ErrorOut, 422: ErrorOut }
/** A config change touches the config and makes a release. */
const TOUCHES = ['config', 'releases']

/**
 * A config as the command left it (the app's stream, folded), keys in order as `config:list` answers
 * them: no read of the read model, whose rows may already hold later changes.
 */
function byKey(config: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.keys(config)
      .sort()
      .map((k) => [k, config[k]!]),
  )
}

/**
 * `config:list|set|unset`. Each change makes a new release. Unsetting keys that are not set is a
 * no-op (as on Heroku): no event, no release, 200 with the config as it is.
 */
export const configRoutes: RoutePlugin = (api, deps) => {
  api.get(
    '/apps/:app/config',
    {
      schema: {
        summary: "An app's config (as of a point of the event log with `at`).",
        params: AppParams,
        querystring: Type.Object({ at: Type.Optional(At) }, { additionalProperties: false }),
        response: { 200: ConfigOut, ...errors },
      },
    },
    async (req, reply) => {
      const { app } = req.params
      await visibleApp(deps.pool, signedIn(req), app)
      return { values: await answerAt(deps, reply, app, req.query.at, ['config'], (db) => getConfig(db, app)) }
    },
  )

  api.post(
    '/apps/:app/config',
    {
      schema: {
        summary: 'Set config values (keys [A-Z_][A-Z0-9_]*, values up to 32 KiB, up to 100 per call); makes a release.',
        params: AppParams,
        body: Type.Object({ values: ConfigValues }, { additionalProperties: false }),
        response: { 200: ConfigOut, ...errors },
      },
    },
    async (req) => ({ values: byKey((await runAppCommand(deps, req, req.params.app, { type: 'SetConfig', values: req.body.values }, TOUCHES)).after.config) }),
  )

  const unset = {
    schema: {
      summary: 'Remove config keys (keys not set are ignored); makes a release when something was removed.',
      params: AppParams,
      body: Type.Object({ keys: Type.Array(ConfigKey, { minItems: 1, maxItems: MAX_KEYS_PER_CALL }) }, { additionalProperties: false }),
      response: { 200: ConfigOut, ...errors },
    },
  }
  const unsetHandler = async (req: {
    params: { app: string }
    body: { keys: string[] }
    user?: { username: string; admin: boolean }
    id: string
    steps?: Steps
  }) => {
    return { values: byKey((await runAppCommand(deps, req, req.params.app, { type: 'UnsetConfig', keys: req.body.keys }, TOUCHES)).after.config) }
  }
  api.post('/apps/:app/config/unset', unset, unsetHandler)
  api.delete('/apps/:app/config', unset, unsetHandler)
}
