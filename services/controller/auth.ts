import { WharfError } from '../../core/errors.js'
import { userByTokenHash } from '../../projections/index.js'
import { hashToken } from './accounts/secrets.js'
import type { AuthUser, ControllerDeps } from './context.js'

/** A token is 43 base64url characters; anything much longer is not one (and is not hashed). */
const MAX_TOKEN = 256

/**
 * Resolves a bearer token to its user from the tokens read model (tokens are stored hashed).
 * Undefined: no such token, revoked, or older than `WHARF_TOKEN_TTL` (expired).
 */
export function tokenAuthenticator(deps: ControllerDeps): (token: string) => Promise<AuthUser | undefined> {
  return async (token) => {
    if (!token || token.length > MAX_TOKEN) return undefined
    try {
      return await userByTokenHash(deps.pool, hashToken(token), deps.cfg.auth.tokenTtlMs)
    } catch (err) {
      // 42P01: the users read model is not built yet (first start, before the projector made it).
      if ((err as { code?: string }).code === '42P01')
        throw new WharfError('WHARF_UNAVAILABLE', 'the users read model is not ready yet; try again', { cause: err })
      throw err
    }
  }
}
