import t from 'tap'
import { DeferredStatements, inline } from './deferred.js'
import { BUILT_WHILE_LOADING } from './projection.js'
import { isDeferred } from './replay.js'

t.test('inline writes each parameter as a literal, as pg would send it', async (t) => {
  t.equal(inline('SELECT $1, $2, $3', ["it's", null, 42]), "SELECT 'it''s', NULL, '42'")
  // Backslashes make it an E'' string (pg's escapeLiteral puts a space before it).
  t.equal(inline('SELECT $1::text[]', [['a', 'b"c', 'd\\e']]), String.raw`SELECT  E'{"a","b\\"c","d\\\\e"}'::text[]`)
  t.equal(inline('SELECT $1::json', [JSON.stringify([{ k: "o'k" }])]), `SELECT '[{"k":"o''k"}]'::json`)
  t.equal(inline('SELECT $10, $1', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), "SELECT '10', '1'")
  t.equal(inline('SELECT $1::timestamptz', [new Date(0)]).startsWith("SELECT '1970-01-01T"), true, 'a date as pg writes it')
  t.throws(() => inline('SELECT $2', [1]), /refers to \$2/)
})

t.test('the stand-in client keeps statements in order and answers no rows', async (t) => {
  const d = new DeferredStatements()
  t.equal(d.sql(), '')
  const res = await d.client.query('DELETE FROM config WHERE app = $1', ['shop'])
  t.same(res.rows, [])
  await d.client.query('INSERT INTO config (app, key, value) VALUES ($1, $2, $3)', ['shop', 'K', 'v'])
  t.equal(d.sql(), "DELETE FROM config WHERE app = 'shop';\nINSERT INTO config (app, key, value) VALUES ('shop', 'K', 'v');\n")
})

t.test('createShadow defers plain indexes and added primary keys, not those built while loading', async (t) => {
  t.ok(isDeferred('CREATE INDEX events_type ON events (type_key, seq)'))
  t.ok(isDeferred('ALTER TABLE events ADD PRIMARY KEY (seq, idx)'))
  t.notOk(isDeferred(`CREATE INDEX events_user ON events (username, seq) WHERE username IS NOT NULL ${BUILT_WHILE_LOADING}`))
  t.notOk(isDeferred('CREATE UNIQUE INDEX u ON t (a)'), 'a unique index stays (ON CONFLICT)')
  t.notOk(isDeferred('CREATE TABLE t (a int PRIMARY KEY)'))
})
