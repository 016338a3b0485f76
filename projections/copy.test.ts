import t from 'tap'
import { BinaryRows, copyField, copyLine, escapeJson, escapeText, timestampMicros } from './copy.js'

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

t.test('timestampMicros: microseconds since 2000-01-01 UTC, as Postgres reads the same text', async (t) => {
  t.equal(timestampMicros('2000-01-01T00:00:00.000Z'), 0)
  t.equal(timestampMicros('2026-12-07T14:33:01.977Z'), (Date.parse('2026-12-07T14:33:01.977Z') - 946_684_800_000) * 1000)
  t.equal(timestampMicros('1999-12-31T23:59:59.999Z'), -1000, 'before 2000: negative')
  t.equal(timestampMicros('2024-02-29T12:00:00.000Z'), (Date.parse('2024-02-29T12:00:00Z') - 946_684_800_000) * 1000, 'a leap day')
  t.equal(timestampMicros('2026-12-07T14:33:01Z'), (Date.parse('2026-12-07T14:33:01Z') - 946_684_800_000) * 1000, 'no fraction')
  t.equal(timestampMicros('2026-12-07T14:33:01.123456Z'), (Date.parse('2026-12-07T14:33:01.123Z') - 946_684_800_000) * 1000 + 456, 'microseconds kept')
  t.equal(timestampMicros('2026-12-07T14:33:01.5+05:30'), (Date.parse('2026-12-07T09:03:01.500Z') - 946_684_800_000) * 1000, 'an offset')
  t.equal(timestampMicros('2026-12-07T14:33:01.5-01:00'), (Date.parse('2026-12-07T15:33:01.500Z') - 946_684_800_000) * 1000, 'a negative offset')
  for (const s of [
    '2023-02-29T00:00:00.000Z',
    '2026-13-01T00:00:00.000Z',
    '2026-12-07T24:00:00.000Z',
    '2026-12-07T23:59:60.000Z',
    '2026-12-07 14:33:01.977Z',
    '2026-12-07T14:33:01.1234567Z',
    '2026-12-07T14:33:01.977',
    '0000-01-01T00:00:00.000Z',
    '99999-01-01T00:00:00.000Z',
    'yesterday',
    '2026-12-0xT14:33:01.977Z',
  ])
    t.equal(timestampMicros(s), undefined, `${s}: left to Postgres`)
})

t.test('BinaryRows: fields as binary COPY wants them', async (t) => {
  const rows = new BinaryRows()
  rows.row(8, 64)
  rows.int8(2 ** 40 + 5)
  rows.int2(3)
  rows.bool(true)
  rows.null()
  rows.text('ä')
  rows.int8(-2)
  rows.int4(-3)
  rows.int4(0x7fff_fffe)
  t.equal(rows.rows, 1)
  const [piece, ...rest] = rows.take()
  t.equal(rest.length, 0)
  t.same(
    [...piece!],
    [
      ...[0, 8],
      ...[0, 0, 0, 8, 0, 0, 1, 0, 0, 0, 0, 5],
      ...[0, 0, 0, 2, 0, 3],
      ...[0, 0, 0, 1, 1],
      ...[0xff, 0xff, 0xff, 0xff],
      ...[0, 0, 0, 2, 0xc3, 0xa4],
      ...[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
      ...[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xfd],
      ...[0, 0, 0, 4, 0x7f, 0xff, 0xff, 0xfe],
    ],
  )
  t.throws(() => rows.int4(2 ** 31), RangeError, 'int4 refuses what it cannot hold')
  t.equal(rows.rows, 0, 'take starts afresh')
  t.same(rows.take(), [])
})
