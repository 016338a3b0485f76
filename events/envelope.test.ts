import t from 'tap'
import { newEventId, toEnvelopes } from './envelope.js'

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

t.test('event ids are UUIDv7 with the time in the first 48 bits', async (t) => {
  const now = Date.UTC(2026, 10, 25, 4, 0, 0, 123)
  const id = newEventId(now)
  t.match(id, UUID_V7)
  t.equal(parseInt(id.replace(/-/g, '').slice(0, 12), 16), now)
})

t.test('event ids are unique and sort by time', async (t) => {
  const ids = Array.from({ length: 5000 }, (_, i) => newEventId(1_700_000_000_000 + i))
  t.equal(new Set(ids).size, ids.length, 'no two alike (crossing random-pool refills)')
  t.same([...ids].sort(), ids, 'later ids sort after earlier ones')
  t.ok(ids.every((id) => UUID_V7.test(id)))
})

t.test('toEnvelopes shares the correlation id and context across one append', async (t) => {
  const envs = toEnvelopes(
    'app.shop',
    [
      { type: 'A', data: 1 },
      { type: 'B', data: 2, id: 'given' },
    ],
    { actor: 'user:alice', causationId: 'c1' },
    () => 3,
  )
  t.equal(envs[0]!.correlationId, envs[1]!.correlationId)
  t.match(envs[0]!.correlationId, UUID_V7)
  t.equal(envs[1]!.id, 'given', 'a given id is kept (retries pass the same ids)')
  t.same(
    envs.map((e) => [e.stream, e.version, e.actor, e.causationId]),
    [
      ['app.shop', 3, 'user:alice', 'c1'],
      ['app.shop', 3, 'user:alice', 'c1'],
    ],
  )
})

t.test("an event's own context stands for the append's (commands of several callers in one commit)", async (t) => {
  const ctx = { actor: 'user:alice', correlationId: 'r1' }
  const envs = toEnvelopes(
    'app.shop',
    [
      { type: 'A', data: 1 },
      { type: 'B', data: 2, context: { actor: 'user:bob', correlationId: 'r2', causationId: 'c2' } },
      { type: 'C', data: 3, context: { actor: 'user:carol' } },
    ],
    ctx,
    () => 1,
  )
  t.same(
    envs.map((e) => [e.actor, e.correlationId, e.causationId]),
    [
      ['user:alice', 'r1', null],
      ['user:bob', 'r2', 'c2'],
      ['user:carol', envs[2]!.correlationId, null],
    ],
  )
  t.match(envs[2]!.correlationId, UUID_V7)
  t.notOk('context' in envs[1]!, 'the context is not a field of the envelope')
})
