import t from 'tap'
import { inline, literal } from './pipeline.js'

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
