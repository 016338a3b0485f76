import t from 'tap'
import Type from 'typebox'
import { describeErrors, requestIdOf, validatorCompiler } from './http.js'

const Body = Type.Object(
  { values: Type.Record(Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$' }), Type.String(), { additionalProperties: false }) },
  { additionalProperties: false },
)
const Query = Type.Object({ after: Type.Optional(Type.Integer({ minimum: 0 })), limit: Type.Integer({ default: 100 }) }, { additionalProperties: false })

const validate = (schema: object, httpPart: string) =>
  validatorCompiler({ schema, httpPart, method: 'POST', url: '/x' } as never) as (d: unknown) => { value?: unknown; error?: Error }

t.test('bodies are checked as sent: no coercion, unknown fields named', async (t) => {
  const v = validate(Body, 'body')
  t.same(v({ values: { FOO: 'bar' } }), { value: { values: { FOO: 'bar' } } })
  t.match(v({ values: { FOO: 1 } }).error?.message, /body\/values\/FOO must be string/, 'a number is not turned into a string')
  t.equal(v({ values: { lower: 'x' } }).error?.message, 'body/values/lower is not an allowed field')
  t.equal(v({ values: {}, extra: true }).error?.message, 'body/extra is not an allowed field')
})

t.test('query strings are converted and get their defaults', async (t) => {
  const v = validate(Query, 'querystring')
  t.same(v({ after: '5' }), { value: { after: 5, limit: 100 } })
  t.match(v({ after: 'abc' }).error?.message, /querystring\/after/)
  t.match(v({ after: '-1' }).error?.message, /querystring\/after must be >= 0/)
})

t.test('describeErrors keeps three distinct lines at most', async (t) => {
  const e = (instancePath: string) => ({ keyword: 'type', instancePath, message: 'must be string' })
  t.equal(describeErrors('body', [e('/a'), e('/a'), e('/b'), e('/c'), e('/d')]), 'body/a must be string; body/b must be string; body/c must be string')
})

t.test('a request id is kept only when it is a plain, short id', async (t) => {
  t.equal(requestIdOf('0193a0f2-7c1e-7d2a-9b1c-1234567890ab'), '0193a0f2-7c1e-7d2a-9b1c-1234567890ab')
  t.equal(requestIdOf('cli-42.a:b_c'), 'cli-42.a:b_c')
  for (const bad of ['', 'x'.repeat(129), 'a b', 'a\nInjected: 1', '../etc', '<script>', '-leading', 'é'])
    t.equal(requestIdOf(bad), undefined, JSON.stringify(bad.slice(0, 20)))
  t.equal(requestIdOf(['a', 'b']), undefined, 'a repeated header')
  t.equal(requestIdOf(undefined), undefined)
})
