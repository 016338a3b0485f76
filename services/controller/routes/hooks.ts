import { randomBytes } from 'node:crypto'
import Type from 'typebox'
import { WharfError } from '../../../core/errors.js'
import { checkTarget, outboundPolicy, urlPort } from '../../../core/outbound.js'
import { runCommand } from '../../../domain/command.js'
import { hookDecider, type HookCommand } from '../../../domain/hook/decider.js'
import { AppName, HookId, MAX_HOOK_PATTERNS, MAX_HOOK_URL, parseEventPatterns, parseHookUrl } from '../../../domain/index.js'
import { streamId } from '../../../events/index.js'
import { getHook, hookAttempts, listHooks, visibleApp, waitUntil, type HookView } from '../../../projections/index.js'
import { contextOf, signedIn } from '../apps/access.js'
import { ErrorOut } from '../apps/schemas.js'
import type { AuthUser, ControllerDeps, RoutePlugin } from '../context.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut }
const HookOut = Type.Object(
  {
    id: Type.String(),
    url: Type.String(),
    app: Type.Union([Type.String(), Type.Null()]),
    events: Type.Array(Type.String()),
    owner: Type.String(),
    status: Type.String(),
    created: Type.String(),
    failingSince: Type.Union([Type.String(), Type.Null()]),
    lastError: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
)
const AttemptOut = Type.Object(
  {
    delivery: Type.String(),
    seq: Type.Integer(),
    type: Type.String(),
    at: Type.String(),
    status: Type.Integer(),
    durationMs: Type.Integer(),
    error: Type.Optional(Type.String()),
    request: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
)
const HookParams = Type.Object({ id: HookId }, { additionalProperties: false })
/** How long `redeliver` waits for the attempt's outcome before answering 202, ms. */
const REDELIVER_WAIT_MS = 20_000

/** The hook if the user may see it (the owner, or an admin); otherwise `WHARF_NOT_FOUND`, as for a hook that does not exist. */
async function ownHook(deps: ControllerDeps, user: AuthUser, id: string): Promise<HookView> {
  const hook = await getHook(deps.pool, id)
  if (!hook || (!user.admin && hook.owner !== user.username)) throw new WharfError('WHARF_NOT_FOUND', `no hook ${id}`, { details: { hook: id } })
  return hook
}

/** `hooks:add|list|remove|deliveries|redeliver`: webhook subscriptions to the event log. */
export const hooksRoutes: RoutePlugin = (api, deps) => {
  const policy = outboundPolicy(deps.cfg)
  const run = (req: { user?: AuthUser | undefined; id: string }, id: string, command: HookCommand, waitFor = ['hooks']) =>
    runCommand(deps, { stream: streamId('hook', id), decider: hookDecider, command, ctx: contextOf(signedIn(req), req.id), waitFor })

  api.get(
    '/hooks',
    {
      schema: {
        summary: "The caller's webhooks (an admin: every one); never their secrets.",
        querystring: Type.Object({ app: Type.Optional(AppName) }, { additionalProperties: false }),
        response: { 200: Type.Object({ hooks: Type.Array(HookOut) }), ...errors },
      },
    },
    async (req) => ({ hooks: await listHooks(deps.pool, signedIn(req), req.query.app) }),
  )

  api.post(
    '/hooks',
    {
      schema: {
        summary: "Add a webhook: an app's events (access to the app needed) or, without app, the whole platform's (admins). Answers the signing secret, once.",
        body: Type.Object(
          {
            url: Type.String({ minLength: 1, maxLength: MAX_HOOK_URL + 100 }),
            app: Type.Optional(AppName),
            events: Type.Optional(Type.Array(Type.String({ maxLength: 100 }), { maxItems: MAX_HOOK_PATTERNS + 1 })),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            id: Type.String(),
            url: Type.String(),
            app: Type.Union([Type.String(), Type.Null()]),
            events: Type.Array(Type.String()),
            secret: Type.String(),
          }),
          ...errors,
        },
      },
    },
    async (req, reply) => {
      const user = signedIn(req)
      const url = parseHookUrl(req.body.url)
      const events = parseEventPatterns(req.body.events)
      const app = req.body.app ?? null
      if (app === null && !user.admin) throw new WharfError('WHARF_FORBIDDEN', 'a hook on the whole platform is for admins: name an app (-a)')
      if (app !== null) await visibleApp(deps.pool, user, app)
      await checkTarget(policy, url.hostname, urlPort(url))
      const id = `hk_${randomBytes(8).toString('hex')}`
      const secret = `whsec_${randomBytes(24).toString('base64')}`
      await run(req, id, { type: 'AddHook', id, url: url.href, scope: app, events, owner: user.username, secret })
      return reply.status(201).send({ id, url: url.href, app, events, secret })
    },
  )

  api.delete(
    '/hooks/:id',
    { schema: { summary: 'Remove a webhook (its owner or an admin).', params: HookParams, response: { 200: Type.Object({ id: Type.String() }), ...errors } } },
    async (req) => {
      const user = signedIn(req)
      await ownHook(deps, user, req.params.id)
      await run(req, req.params.id, { type: 'RemoveHook', id: req.params.id, by: user.username })
      return { id: req.params.id }
    },
  )

  api.get(
    '/hooks/:id/deliveries',
    {
      schema: {
        summary: "A webhook's newest delivery attempts, oldest first: time, HTTP status, duration, error.",
        params: HookParams,
        querystring: Type.Object(
          { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })), delivery: Type.Optional(Type.String({ maxLength: 64 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ hook: HookOut, attempts: Type.Array(AttemptOut) }), ...errors },
      },
    },
    async (req) => {
      const hook = await ownHook(deps, signedIn(req), req.params.id)
      const attempts = await hookAttempts(deps.pool, hook.id, { limit: req.query.limit ?? 50, ...(req.query.delivery ? { delivery: req.query.delivery } : {}) })
      return { hook, attempts }
    },
  )

  api.post(
    '/hooks/:id/redeliver',
    {
      schema: {
        summary: 'Send one past delivery (an event id from hooks:deliveries) again; answers the attempt, or 202 while it is still under way.',
        params: HookParams,
        body: Type.Object({ delivery: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ request: Type.String(), attempt: AttemptOut }), 202: Type.Object({ request: Type.String() }), ...errors },
      },
    },
    async (req, reply) => {
      const user = signedIn(req)
      const hook = await ownHook(deps, user, req.params.id)
      const [past] = await hookAttempts(deps.pool, hook.id, { limit: 1, delivery: req.body.delivery })
      if (!past) throw new WharfError('WHARF_NOT_FOUND', `no delivery ${req.body.delivery} of hook ${hook.id}`, { details: { delivery: req.body.delivery } })
      const request = `rd_${randomBytes(8).toString('hex')}`
      await run(req, hook.id, { type: 'RequestRedelivery', id: hook.id, delivery: past.delivery, seq: past.seq, request, by: user.username }, [])
      const attempt = await waitUntil(deps.pool, async () => (await hookAttempts(deps.pool, hook.id, { limit: 1, request }))[0], {
        projections: ['hooks'],
        timeoutMs: REDELIVER_WAIT_MS,
      })
      return attempt ? { request, attempt } : reply.status(202).send({ request })
    },
  )
}
