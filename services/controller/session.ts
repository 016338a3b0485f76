/**
 * The dashboard's session: the API token of a sign-in, kept by the browser in a cookie it cannot
 * read from script (`HttpOnly`), sent only to this host (no `Domain`) and only on same-site requests
 * (`SameSite=Strict`).
 *
 * SameSite alone is not enough: apps answer at `<app>.<domain>`, the dashboard at `wharf.<domain>`,
 * so a tenant's page is same-site with the dashboard and its forms would carry the cookie. So the
 * cookie authenticates a change (any method but GET and HEAD) only with the header
 * {@link CSRF_HEADER} holding {@link csrfOf} the token: a page of another origin cannot read it
 * (the session answer is not readable cross-origin: no CORS), and cannot send a custom header without
 * a preflight, which the API does not answer. `Authorization: Bearer` requests (the CLI) are as before.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { WharfError } from '../../core/errors.js'

/** The cookie's name. */
export const SESSION_COOKIE = 'wharf_session'
/** The header a cookie-authenticated change must carry. */
export const CSRF_HEADER = 'x-wharf-csrf'
/** How long a dashboard sign-in lasts, seconds: 7 days (the token is revoked by signing out). */
export const SESSION_MAX_AGE_S = 7 * 24 * 3600

/** A token looks like this (43 base64url characters as issued; a little room either way). */
const TOKEN_RE = /^[A-Za-z0-9_-]{16,256}$/

/** The session token of a `Cookie` header, if it holds one that looks like a token. */
export function sessionToken(header: string | undefined): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue
    const value = part.slice(eq + 1).trim()
    return TOKEN_RE.test(value) ? value : undefined
  }
  return undefined
}

/** The CSRF token of a session: an HMAC keyed by the session's token, so it proves knowledge of it without revealing it. */
export function csrfOf(token: string): string {
  return createHmac('sha256', token).update('wharf dashboard csrf v1').digest('base64url')
}

/** Throws unless a cookie-authenticated request of `method` carries the session's CSRF token. */
export function checkCsrf(method: string, header: string | string[] | undefined, token: string): void {
  if (method === 'GET' || method === 'HEAD') return
  const given = Buffer.from(typeof header === 'string' ? header : '')
  const want = Buffer.from(csrfOf(token))
  if (given.length !== want.length || !timingSafeEqual(given, want))
    throw new WharfError('WHARF_FORBIDDEN', `a change made with the dashboard's cookie needs the ${CSRF_HEADER} header of its session`)
}

/** The `Set-Cookie` value of a new session (`secure` when the dashboard is reached over HTTPS). */
export function sessionCookie(token: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_MAX_AGE_S}${secure ? '; Secure' : ''}`
}

/** The `Set-Cookie` value that ends a session. */
export function clearedCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`
}
