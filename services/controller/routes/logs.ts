import Type from 'typebox'
import { WharfError } from '../../../core/errors.js'
import { ProcessType } from '../../../domain/index.js'
import { logInputToken, MAX_REQUEST_LINES, type LoggerClient, type LogLine } from '../../../logs/index.js'
import { signedIn } from '../apps/access.js'
import { AppParams, ErrorOut } from '../apps/schemas.js'
import type { ControllerDeps, RoutePlugin } from '../context.js'
import { visibleApp } from '../../../projections/index.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 503: ErrorOut }

/** One line of an app's log as the API answers it (the CLI reads the same type). */
export const LogLineOut = Type.Object(
  {
    /** Stream position `<seq>.<index>`: unique, in the order the logger received lines. */
    id: Type.String(),
    /** When it was written (RFC 3339, UTC). */
    time: Type.String(),
    app: Type.String(),
    /** `app` (a container), `wharf` (the platform), `syslog` (lines from outside). */
    source: Type.Union([Type.Literal('app'), Type.Literal('wharf'), Type.Literal('syslog')]),
    type: Type.Optional(Type.String()),
    number: Type.Optional(Type.Integer()),
    release: Type.Optional(Type.Integer()),
    stream: Type.Optional(Type.Union([Type.Literal('stdout'), Type.Literal('stderr')])),
    /** The container's short id, or the syslog sender's host. */
    origin: Type.Optional(Type.String()),
    text: Type.String(),
  },
  { additionalProperties: false },
)

const LogsQuery = Type.Object(
  {
    lines: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_REQUEST_LINES, default: 100 })),
    type: Type.Optional(ProcessType),
    /** RFC 3339: lines from then on (archives and the stream), oldest first, at most `lines`. */
    since: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
  },
  { additionalProperties: false },
)
const StreamQuery = Type.Object(
  { lines: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_REQUEST_LINES, default: 100 })), type: Type.Optional(ProcessType) },
  { additionalProperties: false },
)

/** How long a live stream may be silent before a keep-alive comment, ms. */
const KEEPALIVE_MS = 15_000
/** Bytes a slow client may have waiting before lines are skipped for it (and the skip said). */
const MAX_UNSENT_BYTES = 1024 * 1024

function loggerOf(deps: ControllerDeps): LoggerClient {
  if (!deps.logger) throw new WharfError('WHARF_UNAVAILABLE', 'no logger is connected to this controller')
  return deps.logger
}

const sse = (l: LogLine) => `id: ${l.id}\ndata: ${JSON.stringify(l)}\n\n`

/** 9999-12-31T23:59:59.999Z, the last time an ISO date spells with four digits. */
const MAX_TIME = 253_402_300_799_999

const LogTokenOut = Type.Object(
  {
    app: Type.String(),
    /** What a line for the app sent to the syslog receiver must begin with: `t.` and 32 hex digits. */
    token: Type.String(),
  },
  { additionalProperties: false },
)

/**
 * `GET /apps/:app/logs` (recent lines, or `since` a time), `GET /apps/:app/logs/stream` (the
 * recent lines, then every new one, as server-sent events) and `GET /apps/:app/logs/token` (the
 * app's log-input token for the syslog receiver), for whoever may use the app.
 */
export const logsRoutes: RoutePlugin = (api, deps) => {
  const streams = new Set<() => void>()
  api.addHook('preClose', async () => {
    for (const end of streams) end()
  })

  api.get(
    '/apps/:app/logs',
    {
      schema: {
        summary: "An app's recent log lines (or those since a time), oldest first.",
        params: AppParams,
        querystring: LogsQuery,
        response: { 200: Type.Object({ lines: Type.Array(LogLineOut) }, { additionalProperties: false }), ...errors },
      },
    },
    async (req) => {
      await visibleApp(deps.pool, signedIn(req), req.params.app)
      const { lines = 100, type, since } = req.query
      const logger = loggerOf(deps)
      if (since !== undefined) {
        const at = Date.parse(since)
        // Year 0 to 9999 only: `since=12345` parses (as the year 12345) but no store reads from there.
        if (Number.isNaN(at) || at < 0 || at > MAX_TIME) throw new WharfError('WHARF_INVALID', `since is not a time: ${since.slice(0, 64)}`)
        if (at > Date.now()) return { lines: [] }
        return { lines: await logger.history({ app: req.params.app, since, limit: lines, ...(type ? { type } : {}) }) }
      }
      return { lines: (await logger.recent({ app: req.params.app, lines, ...(type ? { type } : {}) })).lines }
    },
  )

  api.get(
    '/apps/:app/logs/token',
    {
      schema: {
        summary: "The app's log-input token: a line sent to the syslog receiver is filed under the app only when it begins with it.",
        params: AppParams,
        response: { 200: LogTokenOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 503: ErrorOut },
      },
    },
    async (req) => {
      const app = await visibleApp(deps.pool, signedIn(req), req.params.app)
      const secret = deps.cfg.logs.inputSecret
      if (!secret) throw new WharfError('WHARF_UNAVAILABLE', 'this controller has no WHARF_LOG_INPUT_SECRET: no log-input tokens')
      // Of this incarnation: the name created again after apps:destroy has another token.
      return { app: app.name, token: logInputToken(secret, app.name, app.created) }
    },
  )

  api.get(
    '/apps/:app/logs/stream',
    {
      schema: {
        summary: "An app's recent log lines, then each new one as it is written (server-sent events, id = line id).",
        params: AppParams,
        querystring: StreamQuery,
        response: errors,
      },
    },
    async (req, reply) => {
      const app = req.params.app
      await visibleApp(deps.pool, signedIn(req), app)
      const { lines = 100, type } = req.query
      const filter = type ? { type } : {}
      const logger = loggerOf(deps)
      const recent = await logger.recent({ app, lines: Math.max(lines, 1), ...filter })
      const tail = await logger.tail(app, recent.seq, filter)
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-request-id': req.id })
      res.write(': connected\n\n')
      for (const l of lines === 0 ? [] : recent.lines) res.write(sse(l))
      let closed = false
      const end = () => {
        closed = true
        void tail.close()
        res.end()
      }
      streams.add(end)
      req.raw.on('close', () => {
        closed = true
        void tail.close()
        streams.delete(end)
      })
      const keepalive = setInterval(() => res.write(': keep-alive\n\n'), KEEPALIVE_MS)
      let skipped = 0
      try {
        for await (const batch of tail.lines) {
          if (closed) break
          if (res.writableLength > MAX_UNSENT_BYTES) {
            skipped += batch.length
            continue
          }
          if (skipped > 0) {
            const first = batch[0]!
            res.write(
              sse({ id: first.id, time: first.time, app, source: 'wharf', text: `${skipped} lines skipped: this client did not read them fast enough` }),
            )
            skipped = 0
          }
          res.write(batch.map(sse).join(''))
        }
      } catch (err) {
        req.log.warn({ err }, 'log stream ended')
      } finally {
        clearInterval(keepalive)
        streams.delete(end)
        await tail.close()
        if (!res.writableEnded) res.end()
      }
    },
  )
}
