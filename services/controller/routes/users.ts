import Type from 'typebox'
import { WharfError } from '../../../core/errors.js'
import { UserName } from '../../../domain/index.js'
import { grantAdmin, listAdmins, listUsers, revokeAdmin } from '../accounts/handlers.js'
import { ErrorBody, UserBody, UserRow } from '../accounts/schemas.js'
import type { AuthUser, RoutePlugin } from '../context.js'

function requireAdmin(user: AuthUser | undefined): AuthUser {
  if (!user?.admin) throw new WharfError('WHARF_FORBIDDEN', 'only an admin may do this')
  return user
}

const Params = Type.Object({ username: UserName }, { additionalProperties: false })

/** /v1/users (list, admin only) and /v1/admins (list, grant, revoke; admin only). */
export const userRoutes: RoutePlugin = (api, deps) => {
  api.get(
    '/users',
    { schema: { summary: 'Every user (admin only)', tags: ['users'], response: { 200: Type.Array(UserRow), '4xx': ErrorBody } } },
    async (req) => {
      requireAdmin(req.user)
      return listUsers(deps.pool)
    },
  )

  api.get(
    '/admins',
    { schema: { summary: 'Every admin (admin only)', tags: ['users'], response: { 200: Type.Array(UserBody), '4xx': ErrorBody } } },
    async (req) => {
      requireAdmin(req.user)
      return listAdmins(deps.pool)
    },
  )

  api.put(
    '/admins/:username',
    { schema: { summary: 'Make a user an admin (admin only)', tags: ['users'], params: Params, response: { 200: UserBody, '4xx': ErrorBody } } },
    async (req) => grantAdmin(deps, requireAdmin(req.user).username, req.params.username, req.id),
  )

  api.delete(
    '/admins/:username',
    {
      schema: {
        summary: 'Take admin from a user (admin only; never the last admin)',
        tags: ['users'],
        params: Params,
        response: { 200: UserBody, '4xx': ErrorBody },
      },
    },
    async (req) => revokeAdmin(deps, requireAdmin(req.user).username, req.params.username, req.id),
  )
}
