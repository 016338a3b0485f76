import t from 'tap'
import { parseRefUpdates, ZERO_SHA } from './hook.js'
import { BuildOutput } from './output.js'

const A = 'a'.repeat(40)
const B = 'b'.repeat(40)

t.test('ref updates from the pre-receive hook', async (t) => {
  t.same(parseRefUpdates(`${ZERO_SHA} ${A} refs/heads/main\n${A} ${B} refs/heads/feature\n`), [
    { old: ZERO_SHA, new: A, ref: 'refs/heads/main' },
    { old: A, new: B, ref: 'refs/heads/feature' },
  ])
  t.same(parseRefUpdates('\n  \n'), [], 'blank input')
  t.same(parseRefUpdates(`nonsense\n${A} short refs/heads/main\n${A} ${B}\n`), [], 'malformed lines are dropped')
})

t.test('build output: headings, indented lines completed across chunks, the last lines kept', async (t) => {
  let sent = ''
  const out = new BuildOutput((text) => {
    sent += text
  })
  out.heading('Building shop')
  out.lines('Step 1/2 : FROM bus')
  out.lines('ybox\r\nStep 2/2')
  out.lines(' : CMD sh\n')
  out.error('the build failed')
  t.equal(sent, '-----> Building shop\n       Step 1/2 : FROM busybox\n       Step 2/2 : CMD sh\n !     the build failed\n')
  for (let i = 0; i < 40; i++) out.lines(`line ${i}\n`)
  const last = out.lastLines()
  t.equal(last.length, 30, 'at most 30 lines kept')
  t.equal(last.at(-1), '       line 39')
  out.lines(`${'x'.repeat(5000)}\n`)
  t.ok(out.lastLines().at(-1)!.length <= 4096, 'a long line is cut for the event')
  await out.close()
})

t.test('build output: a line without end is cut at 16 KiB, the rest counted, not kept', async (t) => {
  let sent = ''
  const out = new BuildOutput((text) => {
    sent += text
  })
  const chunk = 'a'.repeat(32 * 1024)
  for (let i = 0; i < 1000; i++) out.lines(chunk)
  t.ok(sent.length === 0, 'nothing is sent before the line ends')
  out.lines('é\nnext\n')
  const [line, next] = sent.split('\n')
  t.equal(line, `       ${'a'.repeat(16 * 1024)} [truncated ${1000 * 32 * 1024 - 16 * 1024 + 2} bytes]`, 'cut at 16 KiB, the dropped bytes counted')
  t.equal(next, '       next', 'the next line is whole')
  const multi = new BuildOutput(() => {}, { maxLineBytes: 4 })
  t.equal(multi.lastLines().length, 0)
  multi.lines('ééé\n')
  t.equal(multi.lastLines()[0], '       éé [truncated 2 bytes]', 'never cut inside a character')
})

t.test('build output: bounded by maxLogBytes, and waits when the pusher side is full', async (t) => {
  const sent: string[] = []
  let full = false
  let drains = 0
  const out = new BuildOutput(
    (text) => {
      sent.push(text)
      return !full
    },
    {
      maxLogBytes: 1000,
      drained: async () => {
        drains++
      },
    },
  )
  t.equal(out.lines('one\n'), undefined, 'no wait while the pusher keeps up')
  full = true
  const wait = out.lines('two\n')
  t.ok(wait instanceof Promise, 'a promise once the sink is full')
  await wait
  t.equal(drains, 1)
  full = false
  for (let i = 0; i < 100; i++) out.lines(`line ${i} of many\n`)
  const text = sent.join('')
  t.ok(text.length < 1200, `${text.length} characters sent`)
  t.match(text, /the build's output passed 1000 bytes: the rest is not shown or kept/)
  t.equal(text.match(/passed 1000 bytes/g)!.length, 1, 'said once')
  out.heading('Released v2')
  t.match(sent.at(-1), /Released v2/, 'headings still go through')
  t.equal(out.lastLines().at(-2), '       line 99 of many', 'the last lines are kept all the same')
})
