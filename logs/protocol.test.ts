import t from 'tap'
import type { LogLine } from './line.js'
import { CHUNK_BYTES, chunksOf, matches, mergeLines, type AnswerChunk } from './protocol.js'

const line = (id: string, time: string, over: Partial<LogLine> = {}): LogLine => ({ id, time, app: 'shop', source: 'app', text: `line ${id}`, ...over })
const decode = (c: Uint8Array) => JSON.parse(new TextDecoder().decode(c)) as AnswerChunk

t.test('an answer is chunks of lines under CHUNK_BYTES, the first with the sequence', async (t) => {
  t.same(chunksOf([]).map(decode), [{ lines: [] }], 'always at least one chunk')
  t.same(chunksOf([], 7).map(decode), [{ seq: 7, lines: [] }])
  const big = 'x'.repeat(100 * 1024)
  const lines = [1, 2, 3, 4, 5].map((i) => line(`1.${i}`, 'T', { text: big }))
  const chunks = chunksOf(lines, 9)
  t.ok(chunks.length > 1, 'split')
  for (const c of chunks) t.ok(c.length <= CHUNK_BYTES, 'each chunk is bounded')
  const decoded = chunks.map(decode)
  t.equal(decoded[0]!.seq, 9)
  t.ok(
    decoded.slice(1).every((c) => c.seq === undefined),
    'only the first carries the sequence',
  )
  t.same(
    decoded.flatMap((c) => c.lines!.map((l) => l.id)),
    lines.map((l) => l.id),
    'every line once, in order',
  )
})

t.test('merging archive and stream lines: each id once, by time then id', async (t) => {
  const a = [line('10.0', '2024-01-01T00:00:02Z'), line('9.1', '2024-01-01T00:00:01Z')]
  const b = [line('10.0', '2024-01-01T00:00:02Z'), line('10.1', '2024-01-01T00:00:02Z'), line('9.5', '2024-01-01T00:00:01Z')]
  t.same(
    mergeLines(a, b).map((l) => l.id),
    ['9.1', '9.5', '10.0', '10.1'],
  )
})

t.test('a line filter: by process type, or none', async (t) => {
  t.ok(matches(line('1.0', 'T', { type: 'web' }), {}))
  t.ok(matches(line('1.0', 'T', { type: 'web' }), { type: 'web' }))
  t.notOk(matches(line('1.0', 'T', { type: 'worker' }), { type: 'web' }))
  t.notOk(matches(line('1.0', 'T', { source: 'wharf' }), { type: 'web' }))
})
