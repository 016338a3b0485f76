import Type from 'typebox'
import { WharfError } from '../../../core/errors.js'
import { USER_NAME_RE, UserName } from '../../../domain/index.js'
import { changePassword, getUser, listTokens, login, logout, regenerateToken, register, revokeTokenById } from '../accounts/handlers.js'
import { verifyPassword } from '../accounts/secrets.js'
import { tokenAuthenticator } from '../auth.js'
import type { RoutePlugin } from '../context.js'
import { ErrorBody, Password, TokenBody, UserBody } from '../accounts/schemas.js'
import { bearerToken } from '../http.js'
import { FailureThrottle } from '../accounts/throttle.js'

const Email = Type.String({ pattern: '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$', minLength: 3, maxLength: 254 })

/** /v1/auth: register, login, whoami, logout, passwd, tokens (regenerate). */
export const authRoutes: RoutePlugin = (api, deps) => {
  const authenticate = tokenAuthenticator(deps)
  // Failed sign-ins, per user name and per client address (WHARF_LOGIN_FAILURES a minute each).
  const throttle = new FailureThrottle({ limit: deps.cfg.auth.loginFailures })

  api.post(
    '/auth/register',
    {
      config: { public: true },
      schema: {
        summary: 'Register a user (the first one becomes the admin)',
        tags: ['auth'],
        body: Type.Object({ username: UserName, password: Password, email: Email }, { additionalProperties: false }),
        response: { 201: UserBody, '4xx': ErrorBody },
      },
    },
    async (req, reply) => {
      // Public, but under WHARF_REGISTRATION=admin_only an admin's token lets the request through.
      // A token that is not valid counts as none (it cannot make anyone an admin).
      const token = bearerToken(req.headers.authorization)
      const caller = token ? await authenticate(token) : undefined
      const user = await register(deps, req.body, { mode: deps.cfg.registration, caller, correlationId: req.id })
      return reply.status(201).send(user)
    },
  )

  api.post(
    '/auth/login',
    {
      config: { public: true },
      schema: {
        summary: 'Sign in: answers a new API token',
        tags: ['auth'],
        body: Type.Object({ username: Type.String({ maxLength: 64 }), password: Type.String({ maxLength: 1024 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ token: Type.String(), username: Type.String() }, { additionalProperties: false }), '4xx': ErrorBody },
      },
    },
    async (req, reply) => {
      const keys = [`user:${req.body.username}`, `addr:${req.ip}`]
      const waitMs = Math.max(...keys.map((k) => throttle.blockedFor(k)))
      if (waitMs > 0) {
        const seconds = Math.ceil(waitMs / 1000)
        reply.header('retry-after', String(seconds))
        throw new WharfError(
          'WHARF_RATE_LIMITED',
          `too many failed sign-ins for this user or from this address (WHARF_LOGIN_FAILURES=${deps.cfg.auth.loginFailures} a minute); try again in ${seconds} s`,
          { details: { retryAfter: seconds } },
        )
      }
      try {
        // A name that cannot be a user cannot sign in; answer as for any unknown user.
        if (!USER_NAME_RE.test(req.body.username)) {
          await verifyPassword(req.body.password, undefined)
          throw new WharfError('WHARF_UNAUTHORIZED', 'wrong username or password')
        }
        const res = await login(deps, req.body, req.id)
        throttle.clear(keys[0]!)
        return res
      } catch (err) {
        if (err instanceof WharfError && err.code === 'WHARF_UNAUTHORIZED') for (const k of keys) throttle.fail(k)
        throw err
      }
    },
  )

  api.get('/auth/whoami', { schema: { summary: 'The signed-in user', tags: ['auth'], response: { 200: UserBody, '4xx': ErrorBody } } }, async (req) => {
    const user = await getUser(deps.pool, req.user!.username)
    if (!user) throw new WharfError('WHARF_UNAUTHORIZED', 'the token is not valid: sign in again (wharf auth:login)')
    return { username: user.username, email: user.email, admin: user.admin }
  })

  api.post(
    '/auth/logout',
    { schema: { summary: 'Revoke the token of this request', tags: ['auth'], response: { 204: Type.Null(), '4xx': ErrorBody } } },
    async (req, reply) => {
      await logout(deps, req.user!.username, bearerToken(req.headers.authorization)!, req.id)
      return reply.status(204).send(null)
    },
  )

  api.post(
    '/auth/passwd',
    {
      schema: {
        summary: 'Change the password; revokes every other token of the user (this one stays valid)',
        tags: ['auth'],
        body: Type.Object({ password: Type.String({ maxLength: 1024 }), newPassword: Password }, { additionalProperties: false }),
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (req, reply) => {
      await changePassword(deps, req.user!.username, { ...req.body, token: bearerToken(req.headers.authorization)! }, req.id)
      return reply.status(204).send(null)
    },
  )

  api.post(
    '/auth/tokens',
    { schema: { summary: 'Regenerate: revoke every token of the user and answer a new one', tags: ['auth'], response: { 200: TokenBody, '4xx': ErrorBody } } },
    async (req) => regenerateToken(deps, req.user!.username, req.id),
  )

  const TokenView = Type.Object(
    { id: Type.String(), createdAt: Type.String(), expiresAt: Type.String(), expired: Type.Boolean(), current: Type.Boolean() },
    { additionalProperties: false },
  )

  api.get(
    '/auth/tokens',
    {
      schema: {
        summary: "The signed-in user's API tokens (by id: the start of each one's SHA-256), with when each expires",
        tags: ['auth'],
        response: { 200: Type.Object({ tokens: Type.Array(TokenView) }, { additionalProperties: false }), '4xx': ErrorBody },
      },
    },
    async (req) => ({ tokens: await listTokens(deps.pool, req.user!.username, bearerToken(req.headers.authorization)!, deps.cfg.auth.tokenTtlMs) }),
  )

  api.delete(
    '/auth/tokens/:id',
    {
      schema: {
        summary: 'Revoke one of your API tokens by its id',
        tags: ['auth'],
        params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) }, { additionalProperties: false }),
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (req, reply) => {
      await revokeTokenById(deps, req.user!.username, req.params.id, req.id)
      return reply.status(204).send(null)
    },
  )
}
