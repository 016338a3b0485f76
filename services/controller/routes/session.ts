import Type from 'typebox'
import { WharfError } from '../../../core/errors.js'
import { USER_NAME_RE } from '../../../domain/index.js'
import { getUser, login, logout } from '../accounts/handlers.js'
import { ErrorBody } from '../accounts/schemas.js'
import { verifyPassword } from '../accounts/secrets.js'
import type { RoutePlugin } from '../context.js'
import { clearedCookie, csrfOf, sessionCookie, sessionToken } from '../session.js'

const SessionOut = Type.Object({ username: Type.String(), admin: Type.Boolean(), csrf: Type.String() }, { additionalProperties: false })

/** Whether the browser reached the controller over HTTPS (directly, or through a proxy that says so). */
function overHttps(req: { protocol: string; headers: Record<string, string | string[] | undefined> }): boolean {
  return req.protocol === 'https' || req.headers['x-forwarded-proto'] === 'https'
}

/**
 * The dashboard's session (`/v1/auth/session`): sign in with a password into an HttpOnly,
 * SameSite=Strict cookie holding a new API token; read who is signed in and the CSRF token that
 * changes need; sign out (the token is revoked). See ../session.ts for why both cookie and header.
 */
export const sessionRoutes: RoutePlugin = (api, deps) => {
  api.post(
    '/auth/session',
    {
      config: { public: true },
      schema: {
        summary: "Sign in to the dashboard: a new API token in the session cookie (HttpOnly, SameSite=Strict); answers the session's CSRF token",
        tags: ['auth'],
        body: Type.Object({ username: Type.String({ maxLength: 64 }), password: Type.String({ maxLength: 1024 }) }, { additionalProperties: false }),
        response: { 200: SessionOut, '4xx': ErrorBody },
      },
    },
    async (req, reply) => {
      if (!USER_NAME_RE.test(req.body.username)) {
        await verifyPassword(req.body.password, undefined)
        throw new WharfError('WHARF_UNAUTHORIZED', 'wrong username or password')
      }
      const { token, username } = await login(deps, req.body, req.id)
      const user = await getUser(deps.pool, username)
      reply.header('set-cookie', sessionCookie(token, overHttps(req)))
      reply.header('cache-control', 'no-store')
      return { username, admin: user?.admin ?? false, csrf: csrfOf(token) }
    },
  )

  api.get(
    '/auth/session',
    { schema: { summary: 'Who is signed in, and the CSRF token of this session', tags: ['auth'], response: { 200: SessionOut, '4xx': ErrorBody } } },
    async (req, reply) => {
      const token = sessionToken(req.headers.cookie)
      if (!token) throw new WharfError('WHARF_UNAUTHORIZED', 'no dashboard session: sign in')
      reply.header('cache-control', 'no-store')
      return { username: req.user!.username, admin: req.user!.admin, csrf: csrfOf(token) }
    },
  )

  api.delete(
    '/auth/session',
    {
      schema: {
        summary: "Sign out of the dashboard: revokes the session's token and clears the cookie",
        tags: ['auth'],
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (req, reply) => {
      const token = sessionToken(req.headers.cookie)
      if (token) await logout(deps, req.user!.username, token, req.id)
      reply.header('set-cookie', clearedCookie())
      return reply.status(204).send(null)
    },
  )
}
