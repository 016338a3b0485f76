import Type from 'typebox'
import { WharfError } from '../../../core/errors.js'
import { canSeeApp, readCheckpoints, visibleEvents, waitFor } from '../../../projections/index.js'
import type { AuthUser, ControllerDeps, RoutePlugin } from '../context.js'

const EventOut = Type.Object({
  seq: Type.Integer(),
  id: Type.String(),
  type: Type.String(),
  stream: Type.String(),
  app: Type.Union([Type.String(), Type.Null()]),
  actor: Type.String(),
  occurredAt: Type.String(),
  correlationId: Type.String(),
  data: Type.Unknown(),
})

const Query = Type.Object(
  {
    app: Type.Optional(Type.String({ maxLength: 64 })),
    type: Type.Optional(Type.String({ pattern: '^[A-Za-z]{1,64}$' })),
    after: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
)

/** How long one wait for new events lasts before a keep-alive comment goes out, ms. */
const KEEPALIVE_MS = 15_000

/** An app filter the user may not see answers 404, as every app route does. */
async function checkApp(deps: ControllerDeps, user: AuthUser, app: string | undefined): Promise<void> {
  if (!app || user.admin) return
  if (!(await canSeeApp(deps.pool, user.username, app))) throw new WharfError('WHARF_NOT_FOUND', `no app ${app}`)
}

/** `GET /v1/events` (a page) and `GET /v1/events/stream` (server-sent events, live). */
export const eventsRoutes: RoutePlugin = (api, deps) => {
  // Live streams end when the server closes, so a stop never waits on a client that never leaves.
  const streams = new Set<() => void>()
  api.addHook('preClose', async () => {
    for (const end of streams) end()
  })

  api.get(
    '/events',
    {
      schema: {
        summary: 'Events the caller may see, oldest first, after a sequence; a page never splits a commit (events sharing a seq)',
        querystring: Query,
        response: { 200: Type.Object({ events: Type.Array(EventOut), last: Type.Integer() }) },
      },
    },
    async (req) => {
      const user = req.user!
      await checkApp(deps, user, req.query.app)
      const events = await visibleEvents(deps.pool, user, {
        app: req.query.app,
        type: req.query.type,
        after: req.query.after ?? 0,
        limit: req.query.limit ?? 100,
      })
      return { events, last: events.at(-1)?.seq ?? req.query.after ?? 0 }
    },
  )

  api.get(
    '/events/stream',
    { schema: { summary: 'Live events the caller may see, as server-sent events (id = seq, on the last event of each commit)', querystring: Query } },
    async (req, reply) => {
      const user = req.user!
      await checkApp(deps, user, req.query.app)
      const checkpoint = async () => (await readCheckpoints(deps.pool, ['eventlog']))[0]?.seq ?? 0
      const lastEventId = Number(req.headers['last-event-id'])
      // Resume after Last-Event-ID (a reconnect), else after `after`, else from now.
      let after = Number.isInteger(lastEventId) && lastEventId >= 0 ? lastEventId : (req.query.after ?? (await checkpoint()))
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-request-id': req.id })
      res.write(': connected\n\n')
      let closed = false
      const left = new AbortController()
      const end = () => {
        closed = true
        left.abort()
        res.end()
      }
      streams.add(end)
      req.raw.on('close', () => {
        closed = true
        left.abort()
        streams.delete(end)
      })
      try {
        while (!closed) {
          // Every row at or below the checkpoint is committed (they commit together): send those, then wait for more.
          const upTo = await checkpoint()
          for (;;) {
            const events = await visibleEvents(deps.pool, user, { app: req.query.app, type: req.query.type, after, upTo, limit: 500 })
            if (closed) break
            // The events of one commit share a seq: only the last one carries the id, so a client that
            // reconnects in the middle of a commit (Last-Event-ID = the commit before) gets all of it again.
            events.forEach((e, i) => {
              const id = events[i + 1]?.seq === e.seq ? '' : `id: ${e.seq}\n`
              res.write(`${id}event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`)
            })
            if (events.length < 500) break
            after = events.at(-1)!.seq
          }
          after = Math.max(after, upTo)
          try {
            await waitFor(deps.pool, after + 1, { projections: ['eventlog'], timeoutMs: KEEPALIVE_MS, signal: left.signal })
          } catch (err) {
            if (closed) break
            if (!(err instanceof WharfError && err.code === 'WHARF_TIMEOUT')) {
              req.log.warn({ err }, 'event stream ended')
              break
            }
            if (!closed) res.write(': keep-alive\n\n')
          }
        }
      } catch (err) {
        // The client or the database went away mid-stream: end it; the client reconnects with Last-Event-ID.
        req.log.warn({ err }, 'event stream failed')
      } finally {
        streams.delete(end)
        if (!res.writableEnded) res.end()
      }
    },
  )
}
