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
  /** From when a request that finds it starts a look-up in the background (half way to `until`), so busy tokens never wait for one. */
  refreshAt: number
}

interface TokenCache {
  known: Map<string, Known>
  /** Look-ups under way, by hash: requests that need the same one share it. */
  asking: Map<string, Promise<AuthUser | undefined>>
  /** When (performance.now()) {@link forgetTokens} last ran: a look-up asked before it is not kept. */
  forgotAt: number
}

/**
 * Tokens found valid lately, by hash, per pool (so every authenticator of one controller shares it).
 * Only valid tokens are kept: an unknown token is looked up every time. A revocation or a change of
 * admin made in this process forgets them all at once ({@link forgetTokens}); one made by another
 * controller process takes effect here within {@link TOKEN_CACHE_MS}.
 */
const caches = new WeakMap<pg.Pool, TokenCache>()

function cacheOf(pool: pg.Pool): TokenCache {
  let c = caches.get(pool)
  if (!c) caches.set(pool, (c = { known: new Map(), asking: new Map(), forgotAt: -Infinity }))
  return c
}

/**
 * Forgets every token this process believed valid: called after a command that revokes tokens or
 * changes who is admin has reached the users read model, so the next request asks the read model.
 */
export function forgetTokens(pool: pg.Pool): void {
  const c = cacheOf(pool)
  c.forgotAt = performance.now()
  c.known.clear()
  // Look-ups under way may have read the token before: later requests do not share them.
  c.asking.clear()
}

/**
 * Resolves a bearer token to its user from the tokens read model (tokens are stored hashed), through
 * a small cache (see {@link caches}). Undefined: no such token, revoked, or older than
 * `WHARF_TOKEN_TTL` (expired).
 */
export function tokenAuthenticator(deps: ControllerDeps): (token: string) => Promise<AuthUser | undefined> {
  const cache = cacheOf(deps.pool)
  const ttlMs = deps.cfg.auth.tokenTtlMs
  const ask = async (hash: string, asked: number): Promise<AuthUser | undefined> => {
    let found: Awaited<ReturnType<typeof userByTokenHash>>
    try {
      found = await userByTokenHash(deps.pool, hash, ttlMs)
    } catch (err) {
      // 42P01: the users read model is not built yet (first start, before the projector made it).
      if ((err as { code?: string }).code === '42P01')
        throw new WharfError('WHARF_UNAVAILABLE', 'the users read model is not ready yet; try again', { cause: err })
      throw err
    }
    const user = found && { username: found.username, admin: found.admin }
    // A revocation that reached the read model while this look-up was under way: it may have read
    // the token before, so what it found is not kept.
    if (cache.forgotAt >= asked) return user
    cache.known.delete(hash)
    if (!found || !user) return undefined
    const believed = Math.min(TOKEN_CACHE_MS, found.issuedAt + ttlMs - Date.now())
    cache.known.set(hash, { user, until: asked + believed, refreshAt: asked + believed / 2 })
    if (cache.known.size > TOKEN_CACHE_SIZE) cache.known.delete(cache.known.keys().next().value!)
    return user
  }
  const lookUp = (hash: string): Promise<AuthUser | undefined> => {
    const answer = ask(hash, performance.now())
    cache.asking.set(hash, answer)
    const done = () => {
      if (cache.asking.get(hash) === answer) cache.asking.delete(hash)
    }
    answer.then(done, done)
    return answer
  }
  return async (token) => {
    if (!token || token.length > MAX_TOKEN) return undefined
    const hash = hashToken(token)
    const known = cache.known.get(hash)
    const now = performance.now()
    if (known && known.until > now) {
      cache.known.delete(hash)
      cache.known.set(hash, known)
      // A failed background look-up changes nothing: the next request past `until` asks again.
      if (known.refreshAt <= now && !cache.asking.has(hash)) lookUp(hash).catch(() => {})
      return { ...known.user }
    }
    const user = await (cache.asking.get(hash) ?? lookUp(hash))
    return user && { ...user }
  }
}
