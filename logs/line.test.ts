import t from 'tap'
import { compareIds, decodeBatch, encodeBatch, formatLine, linesOf, sanitizeLine, type LogBatch } from './line.js'

t.test('sanitizeLine: text stays, binary is escaped, long lines are cut with a marker', async (t) => {
  t.equal(sanitizeLine('hello\tworld'), 'hello\tworld')
  t.equal(sanitizeLine('colour \x1b[31mred\x1b[0m'), 'colour \x1b[31mred\x1b[0m', 'ANSI colours are kept')
  t.equal(sanitizeLine('crlf\r'), 'crlf', 'a trailing CR goes')
  t.equal(sanitizeLine(Buffer.from([0x61, 0x00, 0x07, 0x62, 0x0a])), 'a\\x00\\x07b\\x0a', 'NUL, BEL and LF inside are escaped')
  t.equal(sanitizeLine(Buffer.from([0x61, 0xff, 0xfe, 0x62])), 'a\ufffd\ufffdb', 'invalid UTF-8 becomes U+FFFD')
  t.equal(sanitizeLine('x'.repeat(100), 10), `${'x'.repeat(10)} [truncated 90 bytes]`)
  t.equal(sanitizeLine('ééééé', 5), 'éé [truncated 6 bytes]', 'cut at a character boundary, never inside one')
  t.equal(sanitizeLine('abc', 10, 7), 'abc [truncated 7 bytes]', 'bytes left out before count too')
})

t.test('a batch round-trips; lines get ids and the batch fields; garbage is not a batch', async (t) => {
  const b: LogBatch = {
    app: 'shop',
    source: 'app',
    type: 'web',
    number: 2,
    release: 3,
    origin: 'abc',
    lines: [
      ['2024-01-01T00:00:00.000000001Z', 0, 'out'],
      ['2024-01-01T00:00:00.000000002Z', 1, 'err'],
    ],
    pos: ['x', 1],
  }
  const lines = linesOf(decodeBatch(encodeBatch(b))!, 42)
  t.same(lines, [
    {
      id: '42.0',
      time: '2024-01-01T00:00:00.000000001Z',
      app: 'shop',
      source: 'app',
      type: 'web',
      number: 2,
      release: 3,
      stream: 'stdout',
      origin: 'abc',
      text: 'out',
    },
    {
      id: '42.1',
      time: '2024-01-01T00:00:00.000000002Z',
      app: 'shop',
      source: 'app',
      type: 'web',
      number: 2,
      release: 3,
      stream: 'stderr',
      origin: 'abc',
      text: 'err',
    },
  ])
  t.equal(formatLine(lines[0]!), '2024-01-01T00:00:00.000000001Z [web.2] out')
  t.equal(formatLine({ id: '1.0', time: 'T', app: 'shop', source: 'wharf', text: 'release v3 created by alice' }), 'T [wharf] release v3 created by alice')
  t.equal(decodeBatch(new TextEncoder().encode('not json')), undefined)
  t.equal(decodeBatch(new TextEncoder().encode('{"lines":3}')), undefined)
  t.ok(compareIds('9.5', '10.0') < 0 && compareIds('10.2', '10.10') < 0 && compareIds('3.1', '3.1') === 0, 'ids order numerically')
})
