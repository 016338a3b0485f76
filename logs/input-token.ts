/**
 * Log-input tokens (Heroku's logplex tokens): the syslog receiver files a line under app X only when
 * the line carries X's token. A token is derived, never stored: an HMAC of the platform's log-input
 * secret over the app's name and the time its incarnation was created, so each app has its own, the
 * controller and the logger compute the same one without sharing state, no event carries it, and an
 * app name reused after `apps:destroy` gets a new one. Pure: no I/O.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

/** `t.` and 32 hex digits (128 bits of HMAC-SHA256). */
export const INPUT_TOKEN = /^t\.[0-9a-f]{32}$/

/**
 * The log-input token of the app `app` whose incarnation was created at `created` (its `AppCreated`'s
 * `occurredAt`, any form `Date` reads; the same instant gives the same token).
 */
export function logInputToken(secret: string, app: string, created: string | Date): string {
  const at = new Date(created).toISOString()
  return `t.${createHmac('sha256', secret).update(`wharf-log-input\n${app}\n${at}`).digest('hex').slice(0, 32)}`
}

/**
 * Splits a syslog message into the token it begins with (its first word, as a sender writes it:
 * `<14>1 ... shop web.1 - - t.0123... the line`) and the rest; `token` is undefined when the first
 * word is not shaped like one.
 */
export function splitInputToken(message: string): { token: string | undefined; text: string } {
  const sp = message.indexOf(' ')
  const first = sp < 0 ? message : message.slice(0, sp)
  if (!INPUT_TOKEN.test(first)) return { token: undefined, text: message }
  return { token: first, text: sp < 0 ? '' : message.slice(sp + 1) }
}

/** Whether `given` is `expected`, in time that does not depend on where they differ. */
export function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}
