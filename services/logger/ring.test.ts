import t from 'tap'
import type { LogLine } from '../../logs/index.js'
import { LogRings } from './ring.js'

let n = 0
const line = (app: string, text: string, type = 'web'): LogLine => ({ id: `${++n}.0`, time: 'T', app, source: 'app', type, text })

t.test('recent lines per app, oldest first, filtered by type', async (t) => {
  const r = new LogRings(100)
  r.add('a', [line('a', 'one'), line('a', 'two', 'worker'), line('a', 'three')])
  r.add('b', [line('b', 'other')])
  t.same(
    r.recent('a', 2).map((l) => l.text),
    ['two', 'three'],
  )
  t.same(
    r.recent('a', 10, { type: 'web' }).map((l) => l.text),
    ['one', 'three'],
  )
  t.same(r.recent('nope', 10), [])
})

t.test('a flood of one app pushes out only its own lines; bytes are bounded too', async (t) => {
  const r = new LogRings(10, 1000)
  r.add('quiet', [line('quiet', 'still here')])
  for (let i = 0; i < 1000; i++) r.add('loud', [line('loud', `l${i}`)])
  t.same(
    r.recent('quiet', 10).map((l) => l.text),
    ['still here'],
  )
  t.same(
    r.recent('loud', 100).map((l) => l.text),
    Array.from({ length: 10 }, (_, i) => `l${990 + i}`),
    'never more than the bound',
  )
  r.add('big', [line('big', 'x'.repeat(600)), line('big', 'y'.repeat(600))])
  t.same(
    r.recent('big', 10).map((l) => l.text[0]),
    ['y'],
    'over 1000 bytes: the oldest goes',
  )
  r.drop('loud')
  t.equal(r.apps, 2)
})
