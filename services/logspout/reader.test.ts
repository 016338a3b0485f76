import t from 'tap'
import { after, fixedTime, LogReader, placeOf, sinceOf, type Place, type ReadLine } from './reader.js'

/** One multiplexed frame as the engine sends it. */
function frame(stream: 1 | 2, text: string | Buffer): Buffer {
  const body = Buffer.isBuffer(text) ? text : Buffer.from(text)
  const h = Buffer.alloc(8)
  h[0] = stream
  h.writeUInt32BE(body.length, 4)
  return Buffer.concat([h, body])
}
const T1 = '2024-05-01T12:00:00.000000001Z'
const T2 = '2024-05-01T12:00:00.000000002Z'
const T3 = '2024-05-01T12:00:00.000000003Z'

function read(chunks: Buffer[], skipTo?: Place, opts = {}) {
  const lines: ReadLine[] = []
  const r = new LogReader((l) => lines.push(l), skipTo, opts)
  for (const c of chunks) r.push(c)
  return { lines, r }
}

t.test('frames split anywhere become lines with stream and position', async (t) => {
  const all = Buffer.concat([frame(1, `${T1} one\n`), frame(2, `${T1} two\n`), frame(1, `${T2} three\r\n`)])
  const pieces = [all.subarray(0, 3), all.subarray(3, 20), all.subarray(20, 47), all.subarray(47)]
  const { lines } = read(pieces)
  t.same(lines, [
    { time: T1, stream: 0, text: 'one', pos: [[T1, 1], null] },
    {
      time: T1,
      stream: 1,
      text: 'two',
      pos: [
        [T1, 1],
        [T1, 1],
      ],
    },
    {
      time: T2,
      stream: 0,
      text: 'three',
      pos: [
        [T2, 1],
        [T1, 1],
      ],
    },
  ])
})

t.test('a resumed read skips up to its place exactly, per stream, also inside one timestamp', async (t) => {
  const all = [frame(1, `${T1} one\n`), frame(1, `${T1} one again\n`), frame(2, `${T1} two\n`), frame(1, `${T2} three\n`)]
  const texts = (skipTo: Place) => read(all, skipTo).lines.map((l) => l.text)
  t.same(texts([[T1, 1], null]), ['one again', 'two', 'three'])
  t.same(texts([[T1, 2], null]), ['two', 'three'])
  t.same(
    texts([
      [T1, 2],
      [T1, 1],
    ]),
    ['three'],
  )
  t.same(
    texts([
      [T2, 1],
      [T1, 1],
    ]),
    [],
  )
  t.same(texts([[T2, 1], null]), ['two'], 'a stream with no line yet is read whole')
})

t.test('parts of a long line are joined, cut at the bound with a marker; binary is escaped', async (t) => {
  const { lines } = read(
    [frame(1, `${T1} ${'a'.repeat(10)}`), frame(2, `${T2} err\n`), frame(1, `${T1} ${'b'.repeat(10)}`), frame(1, `${T1} cc\n`)],
    undefined,
    { maxLineBytes: 15 },
  )
  t.same(
    lines.map((l) => [l.stream, l.text, l.pos]),
    [
      [1, 'err', [null, [T2, 1]]],
      // The parts share T1 while stderr's T2 came between: each stream keeps its own position.
      [
        0,
        `${'a'.repeat(10)}bbbbb [truncated 7 bytes]`,
        [
          [T1, 3],
          [T2, 1],
        ],
      ],
    ],
  )
  t.equal(read([frame(1, Buffer.concat([Buffer.from(`${T1} `), Buffer.from([0, 0xff, 0x41, 0x0a])]))]).lines[0]!.text, '\\x00\ufffdA')
})

t.test('the end: a last line without LF counts only when the container is gone', async (t) => {
  const a = read([frame(1, `${T1} prompt> `)])
  a.r.end(true)
  t.same(
    a.lines.map((l) => l.text),
    ['prompt> '],
  )
  const b = read([frame(1, `${T1} half`)])
  b.r.end(false)
  t.same(b.lines, [], 'a dropped connection: read again from the position')
})

t.test('TTY output and junk', async (t) => {
  t.same(
    read([Buffer.from(`${T1} hi\r\n${T2} there\n`)], undefined, { tty: true }).lines.map((l) => l.text),
    ['hi', 'there'],
  )
  const { lines, r } = read([frame(1, 'no timestamp here\n'), frame(1, `${T1} ok\n`)])
  t.same(
    lines.map((l) => l.text),
    ['ok'],
  )
  t.equal(r.malformed, 1)
})

t.test('timestamps and since', async (t) => {
  t.equal(fixedTime('2024-05-01T12:00:00.5Z'), '2024-05-01T12:00:00.500000000Z')
  t.equal(fixedTime('2024-05-01T12:00:00Z'), '2024-05-01T12:00:00.000000000Z')
  t.equal(fixedTime('yesterday'), undefined)
  const secs = Date.parse('2024-05-01T12:00:00Z') / 1000
  t.equal(sinceOf([['2024-05-01T12:00:00.000000042Z', 3], null]), `${secs - 1}.000000042`, 'a margin before the position')
  t.equal(
    sinceOf([
      ['2024-05-01T12:00:05.5Z', 3],
      ['2024-05-01T12:00:00.000000042Z', 1],
    ]),
    `${secs - 1}.000000042`,
    'the earlier stream decides',
  )
  t.equal(sinceOf(undefined), undefined)
  t.equal(sinceOf([null, null]), undefined)
  t.same(
    placeOf([T1, 2]),
    [
      [T1, 2],
      [T1, 2],
    ],
    'a batch of an earlier version: both streams stood there',
  )
  t.same(placeOf([null, [T1, 2]]), [null, [T1, 2]])
  t.equal(placeOf('junk'), undefined)
  t.equal(placeOf([[T1], null]), undefined)
  t.ok(after([T2, 1], [T1, 5]) && after([T1, 2], [T1, 1]) && !after([T1, 1], [T1, 1]) && after([T1, 1], undefined))
})

t.test('one stream stamped before the other: a restart neither repeats nor drops a line', async (t) => {
  // stdout at T2, then stderr stamped earlier (T1), then stdout at T3: as Docker may write them.
  const all = [frame(1, `${T2} n 350\n`), frame(2, `${T1} e 350\n`), frame(1, `${T3} n 351\n`)]
  const first = read(all.slice(0, 2), undefined)
  t.same(first.lines.at(-1)!.pos, [
    [T2, 1],
    [T1, 1],
  ])
  // Restarted from that place, Docker's since is before T1: everything comes again, only n 351 is new.
  t.same(
    read(all, first.lines.at(-1)!.pos).lines.map((l) => l.text),
    ['n 351'],
    'n 350 and e 350 are not read again',
  )
  // Stopped after n 350 only: e 350, stamped before it but written after, is not lost.
  const early = read(all.slice(0, 1), undefined)
  t.same(
    read(all, early.lines.at(-1)!.pos).lines.map((l) => l.text),
    ['e 350', 'n 351'],
    'e 350 is read after a restart at n 350',
  )
})
