import type { AuthUser, ControllerDeps } from './context.js'

/**
 * Resolves a bearer token to its user from the tokens read model (tokens are stored hashed).
 * Undefined: no such token, or revoked.
 */
export function tokenAuthenticator(_deps: ControllerDeps): (token: string) => Promise<AuthUser | undefined> {
  return async () => undefined
}
