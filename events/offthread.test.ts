import t from 'tap'
import { forEachPacked, packMessages } from './offthread.js'

const bytes = (s: string) => new TextEncoder().encode(s)

t.test('packMessages and forEachPacked give back every message, in order, with its seq', async (t) => {
  const messages = [
    { seq: 3, data: bytes('{"a":1}') },
    { seq: 4, data: bytes('') },
    { seq: 9, data: bytes('[{"é":"ü"},{"b":2}]') },
    { seq: 2 ** 40, data: bytes('x') },
  ]
  const p = packMessages(messages)
  const back: { seq: number; text: string }[] = []
  forEachPacked(p, (data, seq) => back.push({ seq, text: new TextDecoder().decode(data) }))
  t.same(
    back,
    messages.map((m) => ({ seq: m.seq, text: new TextDecoder().decode(m.data) })),
  )
  t.equal(
    p.payload.byteLength,
    messages.reduce((n, m) => n + m.data.length, 0),
    'one buffer of exactly their bytes',
  )
})

t.test('packed buffers are their own: changing the source afterwards changes nothing', async (t) => {
  const data = bytes('{"n":1}')
  const p = packMessages([{ seq: 1, data }])
  data[2] = 0x6d
  forEachPacked(p, (d) => t.equal(new TextDecoder().decode(d), '{"n":1}'))
})

t.test('no messages: empty buffers, nothing called', async (t) => {
  const p = packMessages([])
  t.equal(p.seqs.length, 0)
  forEachPacked(p, () => t.fail('called'))
})
