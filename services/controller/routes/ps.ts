import Type from 'typebox'
import { listProcesses, visibleApp, getFormation } from '../../../projections/index.js'
import { signedIn } from '../apps/access.js'
import { AppParams, ErrorOut } from '../apps/schemas.js'
import type { RoutePlugin } from '../context.js'

const errors = { 401: ErrorOut, 404: ErrorOut }
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
        summary: "An app's formation and its processes (type, number, release, state, since, port), as the publishers announced them.",
        params: AppParams,
        response: { 200: PsOut, ...errors },
      },
    },
    async (req) => {
      await visibleApp(deps.pool, signedIn(req), req.params.app)
      const [formation, processes] = await Promise.all([getFormation(deps.pool, req.params.app), listProcesses(deps.pool, req.params.app)])
      return { formation, processes }
    },
  )
}
