import t from 'tap'
import Type from 'typebox'
import { mayHold } from './jetstream.js'
import { Catalogue } from './catalogue.js'
import { dataText, decodeCommit, decodeCommitText, encodeCommit } from './commit.js'
import { endsCommit, type EventEnvelope } from './envelope.js'

const env = (id: string, n: number): EventEnvelope => ({
  id,
  type: 'ThingAdded',
  version: 1,
  stream: 'app.a',
  occurredAt: '2026-01-01T00:00:00.000Z',
  actor: 'user:a',
  causationId: null,
  correlationId: 'c',
  data: { n },
})

t.test('a commit of one event is its envelope, as messages always were', async (t) => {
  const body = encodeCommit([env('a', 1)])
  t.same(JSON.parse(new TextDecoder().decode(body)), env('a', 1))
  const [e, ...rest] = decodeCommit(body, 7)
  t.same(rest, [])
  t.same(e, { ...env('a', 1), seq: 7 })
  t.notOk('index' in e! || 'commitSize' in e!, 'no place in a commit')
  t.ok(endsCommit(e!))
})

t.test('a commit of several is one message: every event gets its seq, index and the commit size', async (t) => {
  const events = decodeCommit(encodeCommit([env('a', 1), env('b', 2), env('c', 3)]), 12)
  t.same(
    events.map((e) => [e.id, e.seq, e.index, e.commitSize, endsCommit(e)]),
    [
      ['a', 12, 0, 3, false],
      ['b', 12, 1, 3, false],
      ['c', 12, 2, 3, true],
    ],
  )
})

t.test('mayHold tells from the bytes whether a commit may hold an event of the types read', async (t) => {
  const env = (type: string, data: unknown) => ({
    id: 'x',
    type,
    version: 1,
    stream: 'app.shop',
    occurredAt: '',
    actor: 'a',
    causationId: null,
    correlationId: 'c',
    data,
  })
  const reads = mayHold(['ReleaseCreated', 'FormationScaled'])
  t.ok(reads(encodeCommit([env('ConfigSet', {}), env('ReleaseCreated', {})])), 'one of a commit of several')
  t.ok(reads(encodeCommit([env('FormationScaled', {})])), 'a commit of one')
  t.notOk(reads(encodeCommit([env('ConfigSet', { values: { A: '"type":"ReleaseCreated"' } })])), 'the type named inside a value (escaped) does not count')
  t.notOk(reads(encodeCommit([env('ReleaseCreatedX', {})])), 'a longer type name does not count')
  const bytes = encodeCommit([env('ReleaseCreated', {})])
  const inside = new Uint8Array(bytes.length + 8)
  inside.set(bytes, 8)
  t.ok(reads(inside.subarray(8)), 'a view into a larger buffer')
})

t.test("decodeCommitText keeps the text of a single event's data: JSON.stringify(data), not enumerable", async (t) => {
  const datas: unknown[] = [
    { n: 1 },
    { app: 'shop', values: { A: 'tab\there "quoted" \\ back', B: '\u0000\u001f\u2028' }, nested: [{ data: { x: 1 } }, null, true] },
    { s: '"data":{"a":1}', big: 1e21, small: 1e-7, neg: -0, f: 0.1 + 0.2 },
    JSON.parse('{"__proto__": {"x": 1}, "2": "b", "1": "a"}'),
    { lone: '\ud800', emoji: '😀 ä €' },
    [1, 'two', { three: 3 }],
    'a string',
    42,
    null,
    {},
  ]
  for (const [i, data] of datas.entries()) {
    const text = new TextDecoder().decode(encodeCommit([{ ...env('a', 1), data }]))
    const [e] = decodeCommitText(text, 3, true)
    t.equal(dataText(e!), JSON.stringify(e!.data), `data ${i}`)
    t.same(e, { ...env('a', 1), data: JSON.parse(JSON.stringify(data)), seq: 3 }, 'the event as without it')
    t.equal(Object.keys(e!).includes('data') && JSON.stringify(e).includes('wharf.dataText'), false)
    t.equal(dataText({ ...e! }), undefined, 'a copy has none (an upcast makes one)')
    t.equal(dataText(decodeCommitText(text, 3)[0]!), undefined, 'only when asked')
  }
})

t.test('decodeCommitText keeps no data text it cannot be sure of', async (t) => {
  const e = env('a', 1)
  const cases = {
    'a commit of several': new TextDecoder().decode(encodeCommit([env('a', 1), env('b', 2)])),
    'data not last': JSON.stringify({ ...e, data: { n: 1 }, extra: 1 }),
    'an object before data': JSON.stringify({ id: 'a', meta: { data: 1 }, data: { n: 1 } }),
    'blanks inside': JSON.stringify(e, null, 1),
    'a blank after the key': JSON.stringify(e).replace('"data":', '"data": '),
  }
  for (const [name, text] of Object.entries(cases)) for (const ev of decodeCommitText(text, 1, true)) t.equal(dataText(ev), undefined, name)
})

t.test('an upcast event has no data text: its data is new', async (t) => {
  const catalogue = new Catalogue([
    { type: 'ThingAdded', version: 1, stream: 'app', schema: Type.Object({ n: Type.Integer() }) },
    {
      type: 'ThingAdded',
      version: 2,
      stream: 'app',
      schema: Type.Object({ n: Type.Integer(), m: Type.Integer() }),
      upcast: (d: { n: number }) => ({ ...d, m: d.n * 2 }),
    },
  ])
  const [e] = decodeCommitText(new TextDecoder().decode(encodeCommit([env('a', 4)])), 1, true)
  t.equal(dataText(e!), '{"n":4}')
  const up = catalogue.upcast(e!)
  t.same(up.data, { n: 4, m: 8 })
  t.equal(dataText(up), undefined)
})
