import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { ERRORS, isWharfError } from '../../core/errors.js'
import type { Logger } from '../../core/log.js'
import { newEventId } from '../../events/index.js'
import type { HealthReport } from '../runtime.js'

export interface HttpOptions {
  log: Logger
  /** Checks behind `/healthz`, by name; all must be ok for a 200. */
  checks: Record<string, () => Promise<HealthReport>>
  version: string
}

/**
 * The controller's HTTP server: errors as `{ code, message }` with the status from the catalogue,
 * a correlation id per request (from `X-Request-Id`, else a fresh one) on every log line and answer.
 */
export function buildHttp(opts: HttpOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.log as FastifyBaseLogger,
    requestIdHeader: 'x-request-id',
    requestIdLogLabel: 'correlationId',
    genReqId: () => newEventId(),
    disableRequestLogging: false,
  })
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id)
  })

  app.setErrorHandler((err, req, reply) => {
    if (isWharfError(err)) return reply.status(err.status).send(err.toJSON())
    const e = err as { validation?: unknown; statusCode?: number; message: string }
    if (e.validation) return reply.status(400).send({ code: 'WHARF_INVALID', message: e.message })
    if (e.statusCode && e.statusCode < 500) return reply.status(e.statusCode).send({ code: 'WHARF_INVALID', message: e.message })
    req.log.error({ err }, 'request failed')
    return reply.status(ERRORS.WHARF_INTERNAL.status).send({ code: 'WHARF_INTERNAL', message: 'internal error; see the controller log' })
  })
  app.setNotFoundHandler((req, reply) => reply.status(404).send({ code: 'WHARF_NOT_FOUND', message: `no route ${req.method} ${req.url}` }))

  app.get('/healthz', { logLevel: 'warn' }, async (_req, reply) => {
    const started = Date.now()
    const entries = await Promise.all(
      Object.entries(opts.checks).map(async ([name, check]) => {
        try {
          return [name, await withTimeout(check(), 2000)] as const
        } catch (err) {
          return [name, { ok: false, detail: { error: (err as Error).message } }] as const
        }
      }),
    )
    const checks = Object.fromEntries(entries)
    const ok = entries.every(([, r]) => r.ok)
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', version: opts.version, tookMs: Date.now() - started, checks })
  })
  return app
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  )
}
