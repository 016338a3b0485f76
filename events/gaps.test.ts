import t from 'tap'
import { contiguous, type InOrder } from './gaps.js'

interface Msg {
  seq: number
  redelivered?: boolean
}

/** The log the deliveries come from: seqs 1..n, some of them deleted. */
function log(n: number, deleted: number[] = []) {
  const fetched: number[] = []
  return {
    fetched,
    fetch: async (seq: number): Promise<Msg | undefined> => {
      fetched.push(seq)
      return seq >= 1 && seq <= n && !deleted.includes(seq) ? { seq } : undefined
    },
  }
}

async function* deliveries(msgs: Msg[]): AsyncGenerator<Msg> {
  for (const m of msgs) {
    await new Promise((r) => setImmediate(r))
    yield m
  }
}

async function run(msgs: Msg[], opts: Parameters<typeof contiguous<Msg, Msg>>[1]): Promise<string[]> {
  const out: string[] = []
  for await (const item of contiguous<Msg, Msg>(deliveries(msgs), opts)) out.push(show(item))
  return out
}

const show = (item: InOrder<Msg, Msg>) => (item.kind === 'live' ? `${item.msg.seq}` : `${item.msg.seq} (read again before ${item.before.seq})`)

t.test('a lost delivery is read again and handed out before the one after it', async (t) => {
  const l = log(6)
  const gaps: [number, number][] = []
  const got = await run([{ seq: 1 }, { seq: 2 }, { seq: 4 }, { seq: 5 }, { seq: 6 }], { expected: 1, fetch: l.fetch, onGap: (a, b) => gaps.push([a, b]) })
  t.same(got, ['1', '2', '3 (read again before 4)', '4', '5', '6'])
  t.same(gaps, [[3, 3]])
  t.same(l.fetched, [3], 'only the missing one is read')
})

t.test('several lost in a row, and the first deliveries of the subscription', async (t) => {
  const l = log(9)
  const got = await run([{ seq: 3 }, { seq: 7 }, { seq: 8 }], { expected: 1, fetch: l.fetch })
  t.same(got, [
    '1 (read again before 3)',
    '2 (read again before 3)',
    '3',
    '4 (read again before 7)',
    '5 (read again before 7)',
    '6 (read again before 7)',
    '7',
    '8',
  ])
})

t.test('a redelivery of something already handed out is dropped, as is the later redelivery of one read again', async (t) => {
  const l = log(5)
  const got = await run([{ seq: 1 }, { seq: 3 }, { seq: 2, redelivered: true }, { seq: 1, redelivered: true }, { seq: 4 }], { expected: 1, fetch: l.fetch })
  t.same(got, ['1', '2 (read again before 3)', '3', '4'])
})

t.test('a seq the stream holds no message at (deleted) is skipped', async (t) => {
  const l = log(5, [2])
  t.same(await run([{ seq: 1 }, { seq: 3 }], { expected: 1, fetch: l.fetch }), ['1', '3'])
})

t.test('a long gap asks for the first seq of the stream, so that a purged start is not read one by one', async (t) => {
  const l = log(
    5_000,
    Array.from({ length: 4_000 }, (_, i) => i + 1),
  )
  const got = await run([{ seq: 4_003 }], { expected: 1, fetch: l.fetch, firstSeq: async () => 4_001 })
  t.same(got, ['4001 (read again before 4003)', '4002 (read again before 4003)', '4003'])
  t.same(l.fetched, [4_001, 4_002])
})

t.test('a fetch that fails ends the iteration with its error (the subscriber subscribes again)', async (t) => {
  const it = contiguous<Msg, Msg>(deliveries([{ seq: 1 }, { seq: 3 }]), {
    expected: 1,
    fetch: async () => {
      throw new Error('no direct get')
    },
  })
  const seen: number[] = []
  await t.rejects(
    (async () => {
      for await (const m of it) seen.push(m.msg.seq)
    })(),
    /no direct get/,
  )
  t.same(seen, [1], 'nothing after the gap was handed out')
})
