import t from 'tap'
import { mayHold } from './jetstream.js'
import { decodeCommit, encodeCommit } from './commit.js'
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
