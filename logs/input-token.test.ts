import t from 'tap'
import { INPUT_TOKEN, logInputToken, sameToken, splitInputToken } from './input-token.js'

t.test('a token per app and incarnation, the same from any form of the instant', async (t) => {
  const created = '2026-12-07T14:00:00.123Z'
  const shop = logInputToken('s3cret', 'shop', created)
  t.match(shop, INPUT_TOKEN)
  t.equal(logInputToken('s3cret', 'shop', new Date(created)), shop, 'a Date of the same instant (the read model) gives the same token')
  t.not(logInputToken('s3cret', 'blog', created), shop, 'another app')
  t.not(logInputToken('s3cret', 'shop', '2026-12-07T14:00:00.124Z'), shop, 'the name created again: another token')
  t.not(logInputToken('other', 'shop', created), shop, 'another platform secret')
})

t.test('the token is the first word of the message', async (t) => {
  const tok = `t.${'a'.repeat(32)}`
  t.same(splitInputToken(`${tok} hello  world`), { token: tok, text: 'hello  world' })
  t.same(splitInputToken(tok), { token: tok, text: '' })
  t.same(splitInputToken('hello world'), { token: undefined, text: 'hello world' })
  t.same(splitInputToken(`t.${'a'.repeat(31)} x`), { token: undefined, text: `t.${'a'.repeat(31)} x` }, 'too short: not a token')
  t.same(splitInputToken(''), { token: undefined, text: '' })
  t.ok(sameToken(tok, tok))
  t.notOk(sameToken(tok, `t.${'b'.repeat(32)}`))
  t.notOk(sameToken('t.a', tok), 'of another length')
})
