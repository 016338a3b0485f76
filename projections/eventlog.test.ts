import t from 'tap'
import type { RecordedEvent } from '../events/index.js'
import { copyLine } from './copy.js'
import { appOf, eventLine, eventRow, eventsQuery, nameKey, publicEvent, redact, redactEvent, redactedJson, userOf } from './eventlog.js'

const ev = (stream: string, data: unknown): RecordedEvent => ({
  id: 'x',
  type: 'T',
  version: 1,
  stream,
  occurredAt: '2026-11-25T00:00:00.000Z',
  actor: 'user:a',
  causationId: null,
  correlationId: 'c',
  data,
  seq: 1,
})

t.test('redact hides secrets at any depth and keeps the rest', async (t) => {
  t.same(redact({ username: 'alice', passwordHash: 'scrypt$...', nested: { tokenHash: 'abc', keep: [1, { secretKey: 'k', ok: true }] } }), {
    username: 'alice',
    passwordHash: '[redacted]',
    nested: { tokenHash: '[redacted]', keep: [1, { secretKey: '[redacted]', ok: true }] },
  })
  t.equal(redact('plain'), 'plain')
  const pem = '-----BEGIN PRIVATE KEY-----\nMIGH...\n-----END PRIVATE KEY-----\n'
  t.same(
    redact({ name: 'shop', certificate: '-----BEGIN CERTIFICATE-----\nMII...', privateKey: pem }),
    { name: 'shop', certificate: '-----BEGIN CERTIFICATE-----\nMII...', privateKey: '[redacted]' },
    'a private key field',
  )
  t.same(redact({ values: { TLS_KEY: pem.replace('PRIVATE', 'EC PRIVATE') } }), { values: { TLS_KEY: '[redacted]' } }, 'a private key PEM under any name')
  t.equal(redact(null), null)
})

t.test('redactedJson is JSON.stringify(redactEvent(e)), with or without anything to redact', async (t) => {
  const pem = '-----BEGIN PRIVATE KEY-----\nMIGH...\n-----END PRIVATE KEY-----\n'
  const cases: { type: string; data: unknown }[] = [
    { type: 'AppCreated', data: { app: 'shop', owner: 'alice' } },
    { type: 'UserRegistered', data: { username: 'alice', passwordHash: 'scrypt$...' } },
    { type: 'T', data: { nested: { list: [1, { tokenHash: 'abc' }] } } },
    { type: 'T', data: { list: [{ ok: true }, 'x', null] } },
    { type: 'CertAdded', data: { app: 'shop', certificate: 'c', key: pem } },
    { type: 'ConfigSet', data: { app: 'shop', values: { DATABASE_URL: 'postgres://u:p@h/db' } } },
    { type: 'ReleaseCreated', data: { app: 'shop', version: 2, config: { A: '1' }, image: 'i' } },
    { type: 'T', data: JSON.parse('{"__proto__": {"secret": "s"}, "a": 1}') },
    { type: 'T', data: null },
    { type: 'T', data: 'a string' },
  ]
  for (const e of cases) t.equal(redactedJson(e), JSON.stringify(redactEvent(e)), `${e.type} ${JSON.stringify(e.data)}`)
  t.notMatch(redactedJson(cases[5]!), /postgres:/, 'config values never written')
})

t.test('appOf reads data.app, else an app or runtime stream id', async (t) => {
  t.equal(appOf(ev('build.0190', { app: 'shop' })), 'shop')
  t.equal(appOf(ev('app.shop', {})), 'shop')
  t.equal(appOf(ev('runtime.shop', {})), 'shop')
  t.equal(appOf(ev('user.alice', { username: 'alice' })), null)
})

t.test('userOf is the id of a user stream only', async (t) => {
  t.equal(userOf(ev('user.alice', {})), 'alice')
  t.equal(userOf(ev('app.alice', {})), null)
})

t.test('eventsQuery: an admin filters by what was asked only, in placeholder order', async (t) => {
  const q = eventsQuery({ username: 'root', admin: true }, { after: 10, limit: 100 })
  t.same(q.values, [10, 100])
  t.match(q.text, /FROM rm_eventlog\.events\s+WHERE seq > \$1 ORDER BY seq, idx LIMIT \$2$/)
  const all = eventsQuery({ username: 'root', admin: true }, { app: 'shop', type: 'ConfigSet', after: 0, upTo: 42, limit: 500 })
  t.same(all.values, [0, 500, nameKey('shop'), 'shop', nameKey('ConfigSet'), 'ConfigSet', 42])
  t.match(
    all.text,
    /WHERE seq > \$1 AND app_key = \$3 AND app = \$4 AND incarnation = \(SELECT i\.seq FROM rm_eventlog\.incarnations i WHERE i\.app = \$4\) AND type_key = \$5 AND type = \$6 AND seq <= \$7 ORDER BY seq, idx LIMIT \$2$/,
    "an app's events are those of its current incarnation",
  )
  t.notMatch(all.text, /rm_access|username/, 'no visibility condition for an admin')
})

t.test('eventsQuery: the rest of a commit that a full page ended inside', async (t) => {
  const q = eventsQuery({ username: 'root', admin: true }, { app: 'shop', after: 10, limit: 100, restOf: { seq: 12, idx: 0 } })
  t.same(q.values, [12, 100, 0, nameKey('shop'), 'shop'])
  t.match(
    q.text,
    /WHERE seq = \$1 AND idx > \$3 AND app_key = \$4 AND app = \$5 AND incarnation = \(SELECT i\.seq FROM rm_eventlog\.incarnations i WHERE i\.app = \$5\) ORDER BY seq, idx LIMIT \$2$/,
  )
})

t.test('eventsQuery: anyone else sees their own user stream and the apps they may see, as the last placeholder', async (t) => {
  const q = eventsQuery({ username: 'alice', admin: false }, { app: 'shop', after: 5, limit: 10 })
  t.same(q.values, [5, 10, nameKey('shop'), 'shop', 'alice'])
  t.match(
    q.text,
    /WHERE seq > \$1 AND app_key = \$3 AND app = \$4 AND incarnation = .* AND \(username = \$5 OR \(app IN \(SELECT name FROM rm_apps\.apps WHERE destroyed_at IS NULL AND \(owner = \$5/,
  )
  t.match(
    q.text,
    /SELECT app FROM rm_access\.collaborators WHERE username = \$5\)\)\) AND incarnation = \(SELECT i\.seq FROM rm_eventlog\.incarnations i WHERE i\.app = events\.app\)\)\) ORDER BY seq, idx LIMIT \$2$/,
  )
  t.same(
    eventsQuery({ username: 'alice', admin: false }, { after: 0, limit: 1, app: '', type: undefined }).values,
    [0, 1, 'alice'],
    'an empty app filter is no filter',
  )
})

t.test('redactEvent shows config keys, never their values, in ConfigSet and ReleaseCreated', async (t) => {
  const url = 'postgres://user:password@db/shop'
  t.same(redactEvent({ type: 'ConfigSet', data: { app: 'shop', values: { DATABASE_URL: url, A: '1' } } }), {
    app: 'shop',
    values: { DATABASE_URL: '[redacted]', A: '[redacted]' },
  })
  const release = redactEvent({ type: 'ReleaseCreated', data: { app: 'shop', version: 3, config: { DATABASE_URL: url }, by: 'alice' } })
  t.same(release, { app: 'shop', version: 3, config: { DATABASE_URL: '[redacted]' }, by: 'alice' })
  t.notMatch(JSON.stringify(publicEvent({ ...ev('app.shop', { app: 'shop', values: { X: url } }), type: 'ConfigSet' })), /password@/)
  t.same(redactEvent({ type: 'ConfigUnset', data: { app: 'shop', keys: ['A'] } }), { app: 'shop', keys: ['A'] }, 'keys alone are kept')
  t.same(publicEvent(ev('app.shop', { app: 'shop' })).app, 'shop')
})

t.test('redact keeps a field named __proto__ as a field (data parsed from JSON may have one), redacted inside', async (t) => {
  const data = JSON.parse('{"a":1,"__proto__":{"password":"p","b":2},"c":[{"token":"t"}]}')
  const out = redact(data) as Record<string, unknown>
  t.equal(JSON.stringify(out), '{"a":1,"__proto__":{"password":"[redacted]","b":2},"c":[{"token":"[redacted]"}]}')
  t.equal(Object.getPrototypeOf(out), Object.prototype, 'the prototype is not changed')
})

t.test('eventLine is copyLine(eventRow(...)): the bulk path writes the rows apply writes', async (t) => {
  const cases: [RecordedEvent, string | null, number | null][] = [
    [ev('app.shop', { app: 'shop', owner: 'alice' }), 'shop', 7],
    [{ ...ev('user.alice', { username: 'alice', passwordHash: 'x' }), type: 'UserRegistered' }, null, null],
    [{ ...ev('app.shop', { app: 'shop', values: { A: 'tab\there', B: 'back\\slash\nnew' } }), type: 'ConfigSet', index: 1, commitSize: 3 }, 'shop', 1],
    [{ ...ev('build.b1', { app: 'sh\top', lines: ['ä', '€', '😀'] }), index: 1, commitSize: 2, seq: 12 }, 'sh\top', null],
  ]
  for (const [e, app, incarnation] of cases) t.equal(eventLine(e, app, incarnation), copyLine(eventRow(e, app, incarnation)), JSON.stringify(e.data))
})

t.test('nameKey: 32-bit FNV-1a of the UTF-16 code units, signed (stored in the read model: never changes)', async (t) => {
  t.equal(nameKey(''), 0x811c9dc5 | 0)
  t.equal(nameKey('a'), 0xe40c292c | 0, "FNV-1a's own value for an ASCII name")
  t.equal(nameKey('foobar'), 0xbf9cf968 | 0)
  t.not(nameKey('ConfigSet'), nameKey('ConfigUnset'))
  for (const s of ['AppCreated', 'shop', 'ä€😀', 'x'.repeat(300)]) {
    const k = nameKey(s)
    t.ok(Number.isInteger(k) && k >= -(2 ** 31) && k < 2 ** 31, `${s.slice(0, 10)}: an int4`)
  }
})

t.test('eventRow: the type and app keys last, null without an app', async (t) => {
  const row = eventRow(ev('app.shop', { app: 'shop' }), 'shop', 7)
  t.same(row.slice(-3), [7, nameKey('T'), nameKey('shop')])
  t.same(eventRow(ev('user.alice', {}), null, null).slice(-2), [nameKey('T'), null])
})
