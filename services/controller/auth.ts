import type pg from 'pg'
import { WharfError } from '../../core/errors.js'
import { userByTokenHash } from '../../projections/index.js'
import { hashToken } from './accounts/secrets.js'
import type { AuthUser, ControllerDeps } from './context.js'

/** A token is 43 base64url characters; anything much longer is not one (and is not hashed). */
const MAX_TOKEN = 256
/** How long a token found valid is believed without asking the read model again, ms. */
export const TOKEN_CACHE_MS = 2_000
/** Tokens remembered at most (least recently used go first). */
export const TOKEN_CACHE_SIZE = 10_000

interface Known {
  user: AuthUser
  /** Until when (performance.now()) it is believed: {@link TOKEN_CACHE_MS} after the look-up, or the token's expiry if sooner. */
  until: number
}

/**
 * Tokens found valid lately, by hash, per pool (so every authenticator of one controller shares it).
 * Only valid tokens are kept: an unknown token is looked up every time. A revocation or a change of
 * admin made in this process forgets them all at once ({@link forgetTokens}); one made by another
 * controller process takes effect here within {@link TOKEN_CACHE_MS}.
 */
const caches = new WeakMap<pg.Pool, Map<string, Known>>()
/** When (performance.now()) {@link forgetTokens} last ran, per pool: a look-up asked before it is not kept. */
const forgotAt = new WeakMap<pg.Pool, number>()

function cacheOf(pool: pg.Pool): Map<string, Known> {
  let c = caches.get(pool)
  if (!c) caches.set(pool, (c = new Map()))
  return c
}

/**
 * Forgets every token this process believed valid: called after a command that revokes tokens or
 * changes who is admin has reached the users read model, so the next request asks the read model.
 */
export function forgetTokens(pool: pg.Pool): void {
  forgotAt.set(pool, performance.now())
  caches.get(pool)?.clear()
}

/**
 * Resolves a bearer token to its user from the tokens read model (tokens are stored hashed), through
 * a small cache (see {@link caches}). Undefined: no such token, revoked, or older than
 * `WHARF_TOKEN_TTL` (expired).
 */
export function tokenAuthenticator(deps: ControllerDeps): (token: string) => Promise<AuthUser | undefined> {
  const cache = cacheOf(deps.pool)
  const ttlMs = deps.cfg.auth.tokenTtlMs
  return async (token) => {
    if (!token || token.length > MAX_TOKEN) return undefined
    const hash = hashToken(token)
    const known = cache.get(hash)
    if (known) {
      cache.delete(hash)
      if (known.until > performance.now()) {
        cache.set(hash, known)
        return { ...known.user }
      }
    }
    const asked = performance.now()
    let found: Awaited<ReturnType<typeof userByTokenHash>>
    try {
      found = await userByTokenHash(deps.pool, hash, ttlMs)
    } catch (err) {
      // 42P01: the users read model is not built yet (first start, before the projector made it).
      if ((err as { code?: string }).code === '42P01')
        throw new WharfError('WHARF_UNAVAILABLE', 'the users read model is not ready yet; try again', { cause: err })
      throw err
    }
    if (!found) return undefined
    const user = { username: found.username, admin: found.admin }
    const expiresIn = found.issuedAt + ttlMs - Date.now()
    // A revocation that reached the read model while this look-up was under way: it may have read
    // the token before, so what it found is not kept.
    if ((forgotAt.get(deps.pool) ?? -Infinity) < asked) {
      cache.set(hash, { user, until: asked + Math.min(TOKEN_CACHE_MS, expiresIn) })
      if (cache.size > TOKEN_CACHE_SIZE) cache.delete(cache.keys().next().value!)
    }
    return { ...user }
  }
}
