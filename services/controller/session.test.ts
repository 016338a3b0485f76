import t from 'tap'
import { isWharfError } from '../../core/errors.js'
import { checkCsrf, clearedCookie, csrfOf, SESSION_COOKIE, sessionCookie, sessionToken } from './session.js'

const token = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123'

t.test('sessionToken: the cookie among others; anything not shaped like a token is none', async (t) => {
  t.equal(sessionToken(`a=1; ${SESSION_COOKIE}=${token}; b=2`), token)
  t.equal(sessionToken(`${SESSION_COOKIE}=${token}`), token)
  t.equal(sessionToken(undefined), undefined)
  t.equal(sessionToken('other=1'), undefined)
  t.equal(sessionToken(`${SESSION_COOKIE}=short`), undefined)
  t.equal(sessionToken(`${SESSION_COOKIE}=${token}%00; x=1`), undefined, 'not a token character')
  t.equal(sessionToken(`x${SESSION_COOKIE}=${token}`), undefined, 'another cookie whose name ends the same')
})

t.test('csrfOf: stable per token, different across tokens, and not the token', async (t) => {
  t.equal(csrfOf(token), csrfOf(token))
  t.not(csrfOf(token), csrfOf(`${token}x`))
  t.notMatch(csrfOf(token), token)
})

t.test('checkCsrf: reads pass; a change needs the header of its own session', async (t) => {
  t.doesNotThrow(() => checkCsrf('GET', undefined, token))
  t.doesNotThrow(() => checkCsrf('HEAD', undefined, token))
  t.doesNotThrow(() => checkCsrf('POST', csrfOf(token), token))
  for (const [method, header] of [
    ['POST', undefined],
    ['DELETE', ''],
    ['POST', csrfOf(`${token}x`)],
    ['POST', [csrfOf(token), csrfOf(token)]],
  ] as const) {
    try {
      checkCsrf(method, header as string | string[] | undefined, token)
      t.fail(`${method} ${String(header)} should be refused`)
    } catch (err) {
      t.ok(isWharfError(err) && err.code === 'WHARF_FORBIDDEN', `${method} with ${JSON.stringify(header)}: WHARF_FORBIDDEN`)
    }
  }
})

t.test('cookies: HttpOnly, SameSite=Strict, host-only; Secure over HTTPS; cleared with Max-Age=0', async (t) => {
  const c = sessionCookie(token, false)
  t.match(c, /HttpOnly/)
  t.match(c, /SameSite=Strict/)
  t.notMatch(c, /Domain=/i)
  t.notMatch(c, /Secure/)
  t.match(sessionCookie(token, true), /; Secure$/)
  t.match(clearedCookie(), /Max-Age=0/)
})
