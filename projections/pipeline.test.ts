import type pg from 'pg'
import t from 'tap'
import { inline, literal, pipelinedApply } from './pipeline.js'
import type { Projection } from './projection.js'

t.test('literal: values as node-postgres sends them, quoted', async (t) => {
  t.equal(literal(null), 'NULL')
  t.equal(literal(undefined), 'NULL')
  t.equal(literal('it'), "'it'")
  t.equal(literal("O'Brien"), "'O''Brien'", 'a quote is doubled')
  t.equal(literal('back\\slash'), "'back\\slash'", 'a backslash is literal (standard_conforming_strings)')
  t.equal(literal(42), "'42'", 'a number is a literal of unknown type, like a parameter')
  t.equal(literal(true), "'true'")
  t.equal(literal(new Date('2026-12-07T05:00:00.000Z')), "'2026-12-07T05:00:00.000Z'")
  t.equal(literal(['a', 'b"c', 'd\\e', null]), `'{"a","b\\"c","d\\\\e",NULL}'`, 'arrays as array literals')
  t.equal(literal([1, 2]), `'{"1","2"}'`)
  t.equal(literal([]), "'{}'")
  t.equal(literal({ a: "x'y" }), `'{"a":"x''y"}'`, 'objects as JSON')
  t.throws(() => literal('nul\0'), /NUL/)
})

t.test('inline: $n replaced outside quotes, in any order, $10 after $1', async (t) => {
  t.equal(inline('SELECT 1', undefined), 'SELECT 1')
  t.equal(inline('UPDATE x SET a = $2 WHERE b = $1', ['k', 'v']), "UPDATE x SET a = 'v' WHERE b = 'k'")
  const ten = Array.from({ length: 10 }, (_, i) => `v${i + 1}`)
  t.equal(inline('VALUES ($1, $10)', ten), "VALUES ('v1', 'v10')")
  t.equal(inline(`SELECT '$1', "$1", $1`, ['x']), `SELECT '$1', "$1", 'x'`, 'not inside a string or an identifier')
  t.equal(inline(`SELECT 'it''s $1', $1`, ['x']), `SELECT 'it''s $1', 'x'`, 'a doubled quote stays inside the string')
  t.equal(inline('SELECT $1::text[]', [['a', 'b']]), `SELECT '{"a","b"}'::text[]`)
  t.throws(() => inline('SELECT $2', ['x']), /no value for \$2/)
})

t.test('pipelinedApply: the writes of a batch in one query; a read first sends the writes kept, then runs', async (t) => {
  const sent: string[] = []
  const tx = {
    async query(text: string) {
      sent.push(text)
      return { rows: [{ n: 7 }], rowCount: 1 }
    },
  } as unknown as pg.PoolClient
  const p: Projection = {
    name: 'x',
    version: 1,
    handles: ['A'],
    tables: '',
    async apply(e, q) {
      await q.query('INSERT INTO t VALUES ($1)', [e.seq])
      if (e.seq === 2) {
        const { rows } = await q.query('SELECT count(*) AS n FROM t')
        await q.query('INSERT INTO log VALUES ($1)', [rows[0].n])
      }
    },
  }
  const ev = (seq: number) => ({
    seq,
    id: `e${seq}`,
    type: 'A',
    version: 1,
    stream: 'app.x',
    occurredAt: '',
    actor: '',
    causationId: null,
    correlationId: '',
    data: {},
  })
  await pipelinedApply(p, [ev(1), ev(2), ev(3)], tx)
  t.same(sent, [
    "INSERT INTO t VALUES ('1');\nINSERT INTO t VALUES ('2')",
    'SELECT count(*) AS n FROM t',
    "INSERT INTO log VALUES ('7');\nINSERT INTO t VALUES ('3')",
  ])
})
