import Type from 'typebox'
import { WharfError } from '../../../core/errors.js'
import { USER_NAME_RE, UserName } from '../../../domain/index.js'
import { changePassword, getUser, login, logout, regenerateToken, register } from '../accounts/handlers.js'
import { verifyPassword } from '../accounts/secrets.js'
import { tokenAuthenticator } from '../auth.js'
import type { RoutePlugin } from '../context.js'
import { ErrorBody, Password, TokenBody, UserBody } from '../accounts/schemas.js'
import { bearerToken } from '../http.js'

const Email = Type.String({ pattern: '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$', minLength: 3, maxLength: 254 })

/** /v1/auth: register, login, whoami, logout, passwd, tokens (regenerate). */
export const authRoutes: RoutePlugin = (api, deps) => {
  const authenticate = tokenAuthenticator(deps)

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
    async (req) => {
      // A name that cannot be a user cannot sign in; answer as for any unknown user.
      if (!USER_NAME_RE.test(req.body.username)) {
        await verifyPassword(req.body.password, undefined)
        throw new WharfError('WHARF_UNAUTHORIZED', 'wrong username or password')
      }
      return login(deps, req.body, req.id)
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
}
