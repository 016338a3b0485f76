/**
 * Every operation of `/v1/openapi.json` with malformed input, as the app's owner and as an admin:
 * bad JSON, each body field of the wrong type or a huge string, an unknown field, path traversal and
 * junk in each path parameter, unknown and ill-typed query parameters. Nothing answers 5xx, no
 * command accepts them (a 4xx), and the event log's head does not move: nothing is recorded.
 */
import t from 'tap'
import { fillPath, operationsOf, send, type Operation } from '../../../test/openapi.js'
import { startTestLogger } from '../../logger/testing.js'
import { registerAndLogin, startTestController } from '../testing.js'

const HUGE = 'A'.repeat(200_000)
const BAD_PARAMS = ['..', '../../etc/passwd', '..%2F..%2Fetc%2Fpasswd', '%00', 'a\u0000b', 'x'.repeat(5000), '<script>', ' ', '{app}']

/** A value of another type than `schema` says. */
function wrongType(schema: Record<string, unknown>): unknown {
  switch (schema.type) {
    case 'string':
      return 12345
    case 'integer':
    case 'number':
      return 'not a number'
    case 'boolean':
      return 'yes'
    case 'array':
      return { not: 'an array' }
    case 'object':
      return ['not', 'an', 'object']
    default:
      return { unexpected: [1, 2, 3] }
  }
}

/** The malformed inputs for one operation: [what, path, body, query]. */
function variants(op: Operation, values: Record<string, string>): [string, string, string | undefined][] {
  const path = fillPath(op.path, values)
  const out: [string, string, string | undefined][] = []
  const hasBody = op.method !== 'GET' && op.method !== 'DELETE'
  if (hasBody) {
    out.push(['bad JSON', path, '{"name": '])
    out.push(['not an object', path, '[1, 2, 3]'])
  }
  if (op.body) {
    const props = (op.body.properties ?? {}) as Record<string, Record<string, unknown>>
    out.push(['an unknown field', path, JSON.stringify({ surelyNotAField: 1 })])
    for (const [name, schema] of Object.entries(props)) {
      out.push([`${name} of the wrong type`, path, JSON.stringify({ [name]: wrongType(schema) })])
      out.push([`${name} a huge string`, path, JSON.stringify({ [name]: HUGE })])
      out.push([`${name} with path traversal`, path, JSON.stringify({ [name]: '../../../../etc/passwd' })])
    }
  }
  for (const param of op.params)
    for (const bad of BAD_PARAMS)
      out.push([`path ${param}=${JSON.stringify(bad.slice(0, 20))}`, fillPath(op.path, { ...values, [param]: bad }), hasBody ? '{}' : undefined])
  const q = (s: string) => `${path}${path.includes('?') ? '&' : '?'}${s}`
  out.push(['an unknown query parameter', q('surelyNot=1'), hasBody ? '{}' : undefined])
  for (const [name, schema] of Object.entries(op.query)) {
    out.push([`query ${name} of the wrong type`, q(`${name}=${encodeURIComponent(String(wrongType(schema)))}`), hasBody ? '{}' : undefined])
    out.push([`query ${name} huge`, q(`${name}=${'9'.repeat(4000)}`), hasBody ? '{}' : undefined])
  }
  return out
}

// A few hundred requests: well under a minute on an idle machine, more when the 2 cores are shared.
t.setTimeout(300_000)

t.test('malformed input to every operation: never a 5xx, nothing recorded', async (t) => {
  const c = await startTestController(t, { WHARF_LOGIN_FAILURES: '100000' })
  // The log routes need a logger to answer (else 503, which is not what this looks for).
  await startTestLogger(t, c)
  const admin = await registerAndLogin(c, 'root')
  const owner = await registerAndLogin(c, 'alice')
  t.equal((await c.call('POST', '/v1/apps', { token: owner, body: { name: 'shop' } })).status, 201)
  const values = {
    app: 'shop',
    build: '0193a0f2-7c1e-7d2a-9b1c-1234567890ab',
    version: 'v1',
    name: 'nocert',
    domain: 'nothere.example.com',
    drain: 'nodrain',
    username: 'nosuchuser',
    id: '0123456789abcdef',
  }
  const ops = await operationsOf(c.url)
  const head = await c.deps.store.lastSeq()
  let requests = 0
  const failures: string[] = []
  for (const op of ops) {
    for (const [what, path, body] of variants(op, values)) {
      for (const [who, token] of [
        ['owner', owner],
        ['admin', admin],
      ] as const) {
        const res = await send(c.url, op.method, path, { token, body })
        requests++
        if (res.status >= 500) failures.push(`${op.key} ${what} as ${who}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`)
        else if (res.status < 400 && op.method !== 'GET') failures.push(`${op.key} ${what} as ${who}: accepted (${res.status})`)
      }
    }
  }
  t.same(failures, [], `${requests} malformed requests to ${ops.length} operations: each refused with a 4xx`)
  t.equal(await c.deps.store.lastSeq(), head, 'the event log did not move')
})
