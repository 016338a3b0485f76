import t from 'tap'
import Type from 'typebox'
import { Catalogue, type EventDefinition } from './catalogue.js'

t.test('validate refuses data that fails the schema', async (t) => {
  const c = new Catalogue([{ type: 'X', version: 1, stream: 'app', schema: Type.Object({ a: Type.Integer() }) }])
  t.throws(() => c.validate({ type: 'X', version: 1, stream: 'app.a', data: { a: 'no' } }), { code: 'WHARF_INVALID_EVENT' })
  c.validate({ type: 'X', version: 1, stream: 'app.a', data: { a: 1 } })
})

// A release's image: v1 a single string, v2 split into repository and tag, v3 adds the digest.
const releaseV1: EventDefinition = { type: 'ReleaseCreated', version: 1, stream: 'app', schema: Type.Object({ image: Type.String() }) }
const releaseV2: EventDefinition = {
  type: 'ReleaseCreated',
  version: 2,
  stream: 'app',
  schema: Type.Object({ repository: Type.String(), tag: Type.String() }),
  upcast: (old: { image: string }) => {
    const colon = old.image.lastIndexOf(':')
    return colon < 0 ? { repository: old.image, tag: 'latest' } : { repository: old.image.slice(0, colon), tag: old.image.slice(colon + 1) }
  },
}
const releaseV3: EventDefinition = {
  type: 'ReleaseCreated',
  version: 3,
  stream: 'app',
  schema: Type.Object({ repository: Type.String(), tag: Type.String(), digest: Type.Union([Type.String(), Type.Null()]) }),
  upcast: (old: { repository: string; tag: string }) => ({ ...old, digest: null }),
}
const envelope = (version: number, data: unknown) => ({
  id: 'e1',
  type: 'ReleaseCreated',
  version,
  stream: 'app.shop',
  occurredAt: '2025-01-01T00:00:00.000Z',
  actor: 'user:alice',
  causationId: null,
  correlationId: 'c1',
  data,
})

t.test('upcast runs the chain v1 -> v2 -> v3', async (t) => {
  const c = new Catalogue([releaseV1, releaseV2, releaseV3])
  const old = envelope(1, { image: 'registry.local/shop:v7' })
  const up = c.upcast(old)
  t.same(up, { ...old, version: 3, data: { repository: 'registry.local/shop', tag: 'v7', digest: null } })
  t.same(old.data, { image: 'registry.local/shop:v7' }, 'the original is not changed')
  t.same(c.upcast(envelope(2, { repository: 'r', tag: 't' })).data, { repository: 'r', tag: 't', digest: null }, 'from v2 only the last step runs')
  const latest = envelope(3, { repository: 'r', tag: 't', digest: 'sha256:x' })
  t.equal(c.upcast(latest), latest, 'the newest version passes through')
  const unknown = { ...latest, type: 'FromTheFuture' }
  t.equal(c.upcast(unknown), unknown, 'an unknown type passes through')
  c.validate({ ...up, stream: 'app.shop' })
})

t.test('validate refuses a wrong version, an unknown type and the wrong stream kind', async (t) => {
  const c = new Catalogue([releaseV1, releaseV2, releaseV3])
  const data = { repository: 'r', tag: 't', digest: null }
  c.validate({ type: 'ReleaseCreated', version: 3, stream: 'app.shop', data })
  t.throws(() => c.validate({ type: 'ReleaseCreated', version: 2, stream: 'app.shop', data: { repository: 'r', tag: 't' } }), {
    code: 'WHARF_INVALID_EVENT',
    message: /must be written as v3/,
  })
  t.throws(() => c.validate({ type: 'ReleaseCreated', version: 4, stream: 'app.shop', data }), { code: 'WHARF_INVALID_EVENT' })
  t.throws(() => c.validate({ type: 'ReleaseDeleted', version: 1, stream: 'app.shop', data: {} }), {
    code: 'WHARF_INVALID_EVENT',
    message: /unknown event type/,
  })
  t.throws(() => c.validate({ type: 'ReleaseCreated', version: 3, stream: 'user.alice', data }), {
    code: 'WHARF_INVALID_EVENT',
    message: /belongs on a app stream/,
  })
  t.throws(() => c.latest('ReleaseDeleted'), { code: 'WHARF_INVALID_EVENT' })
  t.equal(c.latest('ReleaseCreated'), 3)
})

t.test('define refuses versions out of order, a missing upcaster and a change of stream kind', async (t) => {
  t.throws(() => new Catalogue([releaseV2]), /in order/, 'v2 without v1')
  t.throws(() => new Catalogue([releaseV1, releaseV3]), /in order/, 'v3 after v1')
  t.throws(() => new Catalogue([releaseV1, releaseV1]), /in order/, 'v1 twice')
  const { upcast: _, ...noUpcast } = releaseV2
  t.throws(() => new Catalogue([releaseV1, noUpcast]), /needs an upcaster/)
  t.throws(() => new Catalogue([releaseV1, { ...releaseV2, stream: 'user' }]), /same stream kind/)
  t.same(new Catalogue([releaseV1, releaseV2, releaseV3]).types(), ['ReleaseCreated'])
})
