import t from 'tap'
import { copyField, copyLine, escapeJson, escapeText } from './copy.js'

t.test('copyField: each value as a field of COPY text format', async (t) => {
  t.equal(copyField(null), '\\N', 'null')
  t.equal(copyField(undefined), '\\N', 'undefined is null too')
  t.equal(copyField('plain'), 'plain')
  t.equal(copyField('\\N'), '\\\\N', 'the text \\N is not null')
  t.equal(copyField('a\tb\nc\rd\\e'), 'a\\tb\\nc\\rd\\\\e', 'tab, newline, carriage return and backslash are escaped')
  t.equal(copyField(42), '42')
  t.equal(copyField(-1.5), '-1.5')
  t.equal(copyField(true), 't')
  t.equal(copyField(false), 'f')
  t.equal(copyField(new Date('2026-12-07T08:00:00.123Z')), '2026-12-07T08:00:00.123Z')
  t.equal(copyField({ a: 'x\\y', b: [1] }), '{"a":"x\\\\\\\\y","b":[1]}', "an object as JSON, JSON's own backslashes escaped again")
})

t.test('copyField refuses what Postgres cannot take, with a clear error', async (t) => {
  t.throws(() => copyField('a\0b'), /NUL/)
  t.throws(() => copyField(Number.NaN), /NaN/)
  t.throws(() => copyField(Number.POSITIVE_INFINITY), /Infinity/)
})

t.test('copyLine: the values as fields, separated by tabs, ending in a newline', async (t) => {
  t.equal(copyLine([1, null, 'a\tb', true]), '1\t\\N\ta\\tb\tt\n')
  t.equal(copyLine([]), '\n')
})

t.test('escapeJson is escapeText for what JSON.stringify writes', async (t) => {
  for (const v of [{ a: 'tab\there', b: 'new\nline\r\n', c: 'back\\slash', d: 'nul\0', e: ['"quoted"', 'ä€😀'] }, 'plain', null, 12])
    t.equal(escapeJson(JSON.stringify(v)), escapeText(JSON.stringify(v)), JSON.stringify(v))
})
