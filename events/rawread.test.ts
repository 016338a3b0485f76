import t from 'tap'
import { ackInfoOf } from './rawread.js'

const at = (reply: string) => {
  const buf = Buffer.from(`xx ${reply} yy`)
  const out = { seq: 0, delivered: 0 }
  const found = ackInfoOf(buf, 3, 3 + reply.length, new Int32Array(12), out)
  return found === 0 ? out : undefined
}

t.test('ackInfoOf reads the stream and delivery seqs of both reply formats, as nats.js does', async (t) => {
  // $JS.ACK.<stream>.<consumer>.<count>.<stream seq>.<delivery seq>.<time>.<pending>
  t.same(at('$JS.ACK.WHARF_EVENTS.c1.1.704191.17.1765130000000000000.3'), { seq: 704191, delivered: 17 })
  // with domain and account hash, and a token at the end
  t.same(at('$JS.ACK.dom.ACCHASH.WHARF_EVENTS.c1.1.12.3.1765130000000000000.0.xyz'), { seq: 12, delivered: 3 })
  t.same(at('$JS.ACK._.ACCHASH.WHARF_EVENTS.c1.2.9007199254740991.1.1765130000000000000.0'), { seq: 9007199254740991, delivered: 1 })
})

t.test('ackInfoOf refuses other subjects', async (t) => {
  t.equal(at('_INBOX.abc.def'), undefined)
  t.equal(at('$JS.ACK.S.c.1.2'), undefined, 'too few tokens')
  t.equal(at('$JS.ACK.S.c.1.x2.3.4.5'), undefined, 'not a number')
})
