import Type from 'typebox'
import { WharfError } from '../../../core/errors.js'
import { TRACE_REF, traceOf, visibleApp, waitFor } from '../../../projections/index.js'
import { signedIn } from '../apps/access.js'
import { AppParams, ErrorOut } from '../apps/schemas.js'
import type { RoutePlugin } from '../context.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 404: ErrorOut }

const StepOut = Type.Object({
  seq: Type.Integer(),
  id: Type.String(),
  type: Type.String(),
  occurredAt: Type.String(),
  offsetMs: Type.Integer(),
  stepMs: Type.Integer(),
  detail: Type.String(),
  correlationId: Type.String(),
  data: Type.Unknown(),
})

const TraceOut = Type.Object({
  app: Type.String(),
  correlationId: Type.String(),
  release: Type.Optional(Type.Integer()),
  build: Type.Optional(Type.String()),
  status: Type.Union([Type.Literal('served'), Type.Literal('failed'), Type.Literal('deploying'), Type.Literal('pending'), Type.Literal('no-deploy')]),
  reason: Type.Optional(Type.String()),
  totalMs: Type.Integer(),
  steps: Type.Array(StepOut),
  progress: Type.Array(Type.Object({ type: Type.String(), started: Type.Integer(), wanted: Type.Integer() })),
})

/** How long a trace waits for the events read model to include what is in the log, ms: a command's own events, read right after it. */
const CATCH_UP_MS = 5_000

/** `GET /v1/apps/:app/trace?ref=`: the causal trace of a release (`v12`), a build id or a correlation id, for `wharf events:trace` and the CLI's waits. */
export const traceRoutes: RoutePlugin = (api, deps) => {
  api.get(
    '/apps/:app/trace',
    {
      schema: {
        summary:
          'The chain from a push or a command to the moment the router served the new containers: each event with its offset from the start and the time of each step; data as the events API shows it.',
        params: AppParams,
        querystring: Type.Object({ ref: Type.String({ minLength: 1, maxLength: 130 }) }, { additionalProperties: false }),
        response: { 200: TraceOut, ...errors },
      },
    },
    async (req) => {
      await visibleApp(deps.pool, signedIn(req), req.params.app)
      const ref = req.query.ref
      if (!TRACE_REF.test(ref)) throw new WharfError('WHARF_INVALID', `not a release (v12), build id or correlation id: ${JSON.stringify(ref.slice(0, 40))}`)
      // Read your writes: a command's events are in the log when it answers, maybe not yet in the events read model.
      await waitFor(deps.pool, await deps.store.lastSeq(), { projections: ['eventlog'], timeoutMs: CATCH_UP_MS }).catch((err) => {
        if (!(err instanceof WharfError && err.code === 'WHARF_TIMEOUT')) throw err
      })
      const trace = await traceOf(deps.pool, req.params.app, ref)
      if (!trace) {
        throw new WharfError('WHARF_NOT_FOUND', `${req.params.app} has no release, build or correlation id ${ref}`, { details: { app: req.params.app, ref } })
      }
      return trace
    },
  )
}
