import swagger from '@fastify/swagger'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, type FastifySchemaCompiler } from 'fastify'
import type { TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { Value } from 'typebox/value'
import { ERRORS, isWharfError, WharfError } from '../../core/errors.js'
import type { Logger } from '../../core/log.js'
import { httpDuration, httpRequests, isLoopback, metricsText } from '../../core/metrics.js'
import { newEventId } from '../../events/index.js'
import type { HealthReport } from '../runtime.js'
import { registerDashboard } from './dashboard.js'
import { CSRF_HEADER, checkCsrf, sessionToken } from './session.js'
import type { Api, AuthUser, ControllerDeps, RoutePlugin } from './context.js'
import { sendServerTiming, timing } from './timing.js'

/** Largest request body, bytes: config values are at most 32 KiB, so 1 MiB leaves room for a batch. */
export const BODY_LIMIT = 1024 * 1024

export interface HttpOptions {
  log: Logger
  /** Checks behind `/healthz`, by name; all must be ok for a 200. */
  checks: Record<string, () => Promise<HealthReport>>
  version: string
  /** Resolves a bearer token to its user; undefined = not a valid token. Without it, no route needs a token. */
  authenticate?: (token: string) => Promise<AuthUser | undefined>
  /** Route files, registered under /v1. */
  routes?: RoutePlugin[]
  deps?: ControllerDeps
  /** The built dashboard's folder, served at `/` (see dashboard.ts); omitted: no dashboard. */
  dashboard?: string | undefined
}

/**
 * Validation with TypeBox's compiler. Bodies are checked as sent: a number where a string belongs
 * is refused, never coerced (`{"password": 12345678}` is a 400). Query strings, path parameters and
 * headers arrive as text, so they are converted first ("5" -> 5) and get their defaults. Unknown
 * fields are refused wherever the schema says `additionalProperties: false`.
 */
export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const checker = Compile(schema)
  const part = httpPart ?? 'input'
  return (data: unknown) => {
    // No body at all is an empty object (`POST /v1/apps` with no name); the schema decides if that is enough.
    const value = part === 'body' ? (data ?? {}) : Value.Default(schema, Value.Convert(schema, data))
    if (checker.Check(value)) return { value }
    return { error: new Error(describeErrors(part, [...checker.Errors(value)]) || `${part} is not valid`) }
  }
}

/**
 * Schema failures as one sentence a person can act on: the first three, each as `part/path problem`.
 * A field the schema does not allow (TypeBox's `false` sub-schema of a record or a closed object)
 * is named as such rather than as "schema is false".
 */
export function describeErrors(part: string, errors: { keyword: string; instancePath: string; message: string; params?: unknown }[]): string {
  const seen = new Set<string>()
  const lines: string[] = []
  for (const e of errors) {
    let line: string
    if (e.keyword === 'boolean') line = `${part}${e.instancePath} is not an allowed field`
    else if (e.keyword === 'additionalProperties')
      continue // the field itself is reported as not allowed
    else line = `${part}${e.instancePath} ${e.message}`
    if (!seen.has(line)) lines.push(line)
    seen.add(line)
    if (lines.length === 3) break
  }
  return lines.join('; ')
}

/** What a caller's `X-Request-Id` may be to be kept: 1-128 letters, digits and `. _ : -`, starting with a letter or digit. */
export const REQUEST_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/

/** The caller's request id when it is a plain id (a UUID, a ULID, `cli-42`), else undefined. */
export function requestIdOf(header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && REQUEST_ID_RE.test(header) ? header : undefined
}

/** The token of an `Authorization: Bearer <token>` header, if any. */
export function bearerToken(header: string | undefined): string | undefined {
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() || undefined : undefined
}

/** Fastify's own error codes that are the caller's fault, mapped to Wharf's. */
const CLIENT_ERRORS: Record<string, keyof typeof ERRORS> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'WHARF_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'WHARF_INVALID',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'WHARF_INVALID',
  FST_ERR_CTP_INVALID_JSON_BODY: 'WHARF_INVALID',
  FST_ERR_VALIDATION: 'WHARF_INVALID',
}

/**
 * The controller's HTTP server: errors as `{ code, message }` with the status from the catalogue,
 * a correlation id per request (from `X-Request-Id`, else a fresh one) on every log line and answer,
 * TypeBox schemas on every route (and an OpenAPI document at /v1/openapi.json), and a bearer token
 * on every route not marked `config: { public: true }`.
 */
export async function buildHttp(opts: HttpOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.log as FastifyBaseLogger,
    // The caller's X-Request-Id becomes the correlation id of the events it causes: only when it is a
    // plain id (REQUEST_ID_RE); anything else gets a fresh one.
    requestIdHeader: false,
    // One line per request (the onResponse hook below, when it is answered) rather than fastify's two:
    // under a burst of commands the log lines were a good part of the process's CPU. With a
    // logController, fastify reads this from it (the top-level option is ignored).
    logController: new LogController({ requestIdLogLabel: 'correlationId', disableRequestLogging: true }),
    genReqId: (req) => requestIdOf(req.headers['x-request-id']) ?? newEventId(),
    bodyLimit: BODY_LIMIT,
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)

  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id)
  })
  sendServerTiming(app as unknown as FastifyInstance)
  // By route pattern (`/v1/apps/:app`), never the raw URL, so the series stay bounded; no route: `unmatched`.
  app.addHook('onResponse', async (req, reply) => {
    const labels = { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) }
    httpRequests.inc(labels)
    httpDuration.observe(labels, reply.elapsedTime / 1000)
    req.log.info({ req: { method: req.method, url: req.url }, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime }, 'request completed')
  })

  app.setErrorHandler((err, req, reply) => {
    if (isWharfError(err)) {
      if (err.status >= 500) req.log.error({ err }, 'request failed')
      return reply.status(err.status).send(err.toJSON())
    }
    const e = err as { code?: string; validation?: unknown; statusCode?: number; message: string }
    const mapped = (e.code && CLIENT_ERRORS[e.code]) || (e.validation ? 'WHARF_INVALID' : undefined)
    if (mapped) return reply.status(ERRORS[mapped].status).send({ code: mapped, message: e.message })
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return reply.status(e.statusCode).send({ code: 'WHARF_INVALID', message: e.message })
    req.log.error({ err }, 'request failed')
    return reply.status(ERRORS.WHARF_INTERNAL.status).send({ code: 'WHARF_INTERNAL', message: 'internal error; see the controller log' })
  })
  app.setNotFoundHandler((req, reply) => reply.status(404).send({ code: 'WHARF_NOT_FOUND', message: `no route ${req.method} ${req.url}` }))

  // An operation without a body (or query) schema takes none: a body or query it would ignore is
  // refused, so that malformed input never reaches a handler that acts anyway (`POST /auth/logout`
  // with a stray body, an unknown query parameter).
  app.addHook('preValidation', async (req) => {
    const schema = req.routeOptions.schema as { body?: unknown; querystring?: unknown } | undefined
    if (!req.routeOptions.url) return
    const body = req.body as unknown
    const empty = body === undefined || body === null || (typeof body === 'object' && !Array.isArray(body) && Object.keys(body as object).length === 0)
    if (!schema?.body && !empty) throw new WharfError('WHARF_INVALID', `${req.method} ${req.routeOptions.url} takes no body`)
    const query = req.query as Record<string, unknown> | undefined
    if (!schema?.querystring && query && Object.keys(query).length > 0)
      throw new WharfError('WHARF_INVALID', `${req.method} ${req.routeOptions.url} takes no query parameters (${Object.keys(query).slice(0, 3).join(', ')})`)
  })

  const authenticate = opts.authenticate
  if (authenticate) {
    app.addHook('onRequest', async (req) => {
      if (req.routeOptions.config?.public || !req.routeOptions.url) return
      // The dashboard's session cookie stands for the token, but never alone for a change (see session.ts).
      const bearer = bearerToken(req.headers.authorization)
      const token = bearer ?? sessionToken(req.headers.cookie)
      if (!bearer && token) checkCsrf(req.method, req.headers[CSRF_HEADER], token)
      if (!token) throw new WharfError('WHARF_UNAUTHORIZED', 'sign in first: no token (wharf auth:login)')
      const user = await timing(req, 'auth', () => authenticate(token))
      if (!user) throw new WharfError('WHARF_UNAUTHORIZED', 'the token is not valid (expired, revoked or regenerated): sign in again (wharf auth:login)')
      req.user = user
      req.log = req.log.child({ user: user.username })
    })
  }

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Wharf controller API', version: opts.version },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  })

  app.get('/healthz', { logLevel: 'warn', config: { public: true }, schema: { hide: true } }, async (_req, reply) => {
    const started = Date.now()
    const entries = await Promise.all(
      Object.entries(opts.checks).map(async ([name, check]) => {
        try {
          return [name, await withTimeout(check(), 2000)] as const
        } catch (err) {
          return [name, { ok: false, detail: { error: (err as Error).message } } as HealthReport] as const
        }
      }),
    )
    const checks = Object.fromEntries(entries)
    const ok = entries.every(([, r]) => r.ok)
    // Why not, in one line: each failing check with its reason (or its error).
    const reason = entries
      .filter(([, r]) => !r.ok)
      .map(([name, r]) => `${name}: ${r.reason ?? (r.detail?.error as string | undefined) ?? 'failed'}`)
      .join('; ')
    return reply
      .status(ok ? 200 : 503)
      .send({ status: ok ? 'ok' : 'degraded', ...(ok ? {} : { reason }), version: opts.version, tookMs: Date.now() - started, checks })
  })

  if ('dashboard' in opts) registerDashboard(app as unknown as FastifyInstance, opts.dashboard)

  app.get('/metrics', { logLevel: 'warn', config: { public: true }, schema: { hide: true } }, async (req, reply) => {
    await allowMetrics(req, authenticate)
    const { contentType, body } = await metricsText()
    return reply.type(contentType).send(body)
  })

  await app.register(
    async (v1) => {
      v1.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger())
      for (const routes of opts.routes ?? []) await routes(v1 as unknown as Api, opts.deps!)
    },
    { prefix: '/v1' },
  )
  return app
}

/**
 * Who may read `/metrics`: a direct connection from this host (Prometheus beside the controller: no
 * secret to keep), or an admin's token from anywhere. A request through the router (nginx on this
 * host, so also from loopback) carries `X-Forwarded-For` and needs the token: the metrics name every
 * app, which only admins may list.
 */
async function allowMetrics(req: FastifyRequest, authenticate: HttpOptions['authenticate']): Promise<void> {
  const token = bearerToken(req.headers.authorization)
  if (token && authenticate) {
    const user = await authenticate(token)
    if (user?.admin) return
    throw new WharfError(user ? 'WHARF_FORBIDDEN' : 'WHARF_UNAUTHORIZED', '/metrics is for admins, or for a direct connection from this host')
  }
  if (isLoopback(req.socket.remoteAddress) && req.headers['x-forwarded-for'] === undefined) return
  throw new WharfError('WHARF_UNAUTHORIZED', '/metrics is for admins (Authorization: Bearer <admin token>), or for a direct connection from this host')
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  )
}
