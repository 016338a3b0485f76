import Type from 'typebox'
import { listProcesses, visibleApp, getFormation } from '../../../projections/index.js'
import { signedIn } from '../apps/access.js'
import { AppParams, ErrorOut } from '../apps/schemas.js'
import { answerAt, At } from '../apps/at.js'
import type { RoutePlugin } from '../context.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut }
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()])

const PsProcess = Type.Object(
  {
    /** The process type: `web`, `worker`, ... */
    type: Type.String(),
    /** The slot of the process among those of its type (web.1, web.2, ...); null outside a Swarm service. */
    number: Nullable(Type.Integer()),
    release: Type.Integer(),
    /** `up` (serving), `stopping` (draining before a stop), `crashed` (until its slot runs again). */
    state: Type.Union([Type.Literal('up'), Type.Literal('stopping'), Type.Literal('crashed')]),
    /** When it got that state (ISO 8601). */
    since: Type.String(),
    /** The host its port is published on. */
    host: Type.String(),
    /** The published port (web); null for a process without one. */
    port: Nullable(Type.Integer()),
    /** The container's short id (12 hex digits). */
    container: Type.String(),
    /** A crash's exit code and reason; null otherwise. */
    exitCode: Nullable(Type.Integer()),
    reason: Nullable(Type.String()),
  },
  { additionalProperties: false },
)

export const PsOut = Type.Object({ formation: Type.Record(Type.String(), Type.Integer()), processes: Type.Array(PsProcess) }, { additionalProperties: false })

/** One process as `GET /apps/:app/ps` answers it (the CLI reads the same type). */
export type { PsView } from '../../../projections/index.js'

/** `ps:list`: the formation and the processes the publishers announced. */
export const psRoutes: RoutePlugin = (api, deps) => {
  api.get(
    '/apps/:app/ps',
    {
      schema: {
        summary:
          "An app's formation and its processes (type, number, release, state, since, port), as the publishers announced them (as of a point of the event log with `at`).",
        params: AppParams,
        querystring: Type.Object({ at: Type.Optional(At) }, { additionalProperties: false }),
        response: { 200: PsOut, ...errors },
      },
    },
    async (req, reply) => {
      const { app } = req.params
      await visibleApp(deps.pool, signedIn(req), app)
      return answerAt(deps, reply, app, req.query.at, ['formation', 'containers'], async (db) => {
        const [formation, processes] = await Promise.all([getFormation(db, app), listProcesses(db, app)])
        return { formation, processes }
      })
    },
  )
}
