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
  const out = new BuildOutput((text) => (sent += text))
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
