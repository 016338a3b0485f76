import Type from 'typebox'
import type { FastifyReply } from 'fastify'
import { AT_PATTERN, asOf, parseAt, type AtPoint, type PastModel, type Queryable } from '../../../projections/index.js'
import type { ControllerDeps } from '../context.js'

/** The `at` query parameter of the read routes that can answer as of a point of the log (`--at`). */
export const At = Type.String({
  pattern: AT_PATTERN,
  maxLength: 40,
  description: 'Answer as of this point of the event log: a seq (`42`) or an ISO 8601 time with a zone (`2026-12-07T05:00:00Z`).',
})

/** Response headers that say which point an `at` answer is as of (the body keeps the shape of the live answer). */
export const AT_SEQ_HEADER = 'wharf-at-seq'
export const AT_TIME_HEADER = 'wharf-at-time'

/**
 * The answer of a read route: `now` when `at` is undefined, else `past` run on `models` as they were
 * at `at` for `app` (see projections/timetravel.ts), with the point in the reply's headers. The
 * route checks access first, on the live read models: who may read the app now may read its past.
 */
export async function answerAt<T>(
  deps: Pick<ControllerDeps, 'store' | 'pool'>,
  reply: FastifyReply,
  app: string,
  at: string | undefined,
  models: readonly PastModel[],
  read: (db: Queryable) => Promise<T>,
): Promise<T> {
  if (at === undefined) return read(deps.pool)
  const past = await asOf(deps, app, parseAt(at), models, read)
  setPoint(reply, past.at)
  return past.value
}

function setPoint(reply: FastifyReply, point: AtPoint): void {
  reply.header(AT_SEQ_HEADER, String(point.seq))
  reply.header(AT_TIME_HEADER, point.time)
}
