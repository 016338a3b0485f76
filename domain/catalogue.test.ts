import t from 'tap'
import Type from 'typebox'
import { Catalogue } from '../events/catalogue.js'
import type { RecordedEvent } from '../events/envelope.js'
import { STREAM_KINDS } from '../events/subjects.js'
import { dataOf, isEvent, typedEventTypes, wharfCatalogue } from './catalogue.js'
import * as domain from './index.js'

/** Per stream kind, the catalogue's types that its typed union lacks and the union's types the catalogue lacks. */
function mismatches(catalogue: Catalogue): string[] {
  const out: string[] = []
  for (const kind of STREAM_KINDS) {
    const inCatalogue = new Set(
      catalogue
        .definitions()
        .filter((d) => d.stream === kind)
        .map((d) => d.type),
    )
    const typed = new Set(Object.keys(typedEventTypes[kind]))
    for (const type of inCatalogue) if (!typed.has(type)) out.push(`${kind}: ${type} has no typed event`)
    for (const type of typed) if (!inCatalogue.has(type)) out.push(`${kind}: ${type} is typed but not in the catalogue`)
  }
  return out
}

t.test("each stream kind's typed union covers exactly the catalogue's types of that kind", async (t) => {
  t.same(mismatches(wharfCatalogue()), [])
})

t.test('a type added to the catalogue without a typed union is found', async (t) => {
  const c = wharfCatalogue().define({ type: 'AppRenamed', version: 1, stream: 'app', schema: Type.Object({ app: Type.String() }) })
  t.same(mismatches(c), ['app: AppRenamed has no typed event'])
  const fewer = new Catalogue(
    wharfCatalogue()
      .definitions()
      .filter((d) => d.type !== 'KeyReleased'),
  )
  t.same(mismatches(fewer), ['key: KeyReleased is typed but not in the catalogue'])
})

t.test("each type's named schema is the one the catalogue checks, newest version", async (t) => {
  const c = wharfCatalogue()
  const schemas: Record<string, unknown> = domain
  for (const type of c.types()) {
    const newest = c
      .definitions()
      .filter((d) => d.type === type)
      .at(-1)!
    t.equal(schemas[`${type}Schema`], newest.schema, `${type}Schema`)
  }
})

const event = (type: string, data: unknown): RecordedEvent => ({
  id: 'e1',
  type,
  version: 1,
  stream: 'build.0190a8c2-0000-7000-8000-000000000000',
  occurredAt: '2026-01-01T00:00:00.000Z',
  actor: 'user:alice',
  causationId: null,
  correlationId: 'c1',
  seq: 1,
  data,
})

t.test('isEvent and dataOf check the type', async (t) => {
  const started = event('BuildStarted', { app: 'shop', user: 'alice', kind: 'image', source: 'nginx', stack: 'image', builder: 'h:1' })
  t.ok(isEvent(started, 'BuildStarted'))
  t.notOk(isEvent(started, 'BuildFailed'))
  t.equal(dataOf(started, 'BuildStarted')?.builder, 'h:1')
  t.equal(dataOf(started, 'BuildFailed'), undefined)
  t.equal(dataOf(undefined, 'BuildStarted'), undefined)
})
