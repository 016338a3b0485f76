import t from 'tap'
import { PAST_MODELS, parseAt } from './timetravel.js'

t.test('parseAt: a seq or a time with a zone', async (t) => {
  t.same(parseAt('42'), { seq: 42 })
  t.same(parseAt('2026-12-07T05:00:00Z'), { time: new Date('2026-12-07T05:00:00Z') })
  t.same(parseAt('2026-12-07T06:30:15.250+01:30'), { time: new Date('2026-12-07T05:00:15.250Z') })
  t.same(parseAt('2026-12-07T05:00Z'), { time: new Date('2026-12-07T05:00:00Z') })
})

t.test('parseAt: anything else is WHARF_INVALID, with the value in the message', async (t) => {
  for (const bad of ['0', '-1', '', 'yesterday', '2026-12-07', '2026-12-07T05:00:00', '2026-13-45T05:00:00Z', '12abc', ' 42', '1'.repeat(16)]) {
    t.throws(() => parseAt(bad), { name: 'WharfError', code: 'WHARF_INVALID', message: /^--at / }, JSON.stringify(bad))
  }
})

t.test('the past models are read models whose tables and apply time travel reuses', async (t) => {
  for (const [name, p] of Object.entries(PAST_MODELS)) {
    t.equal(p.name, name)
    t.ok(p.tables.includes('CREATE TABLE'), `${name} has tables`)
    t.notMatch(p.tables, /rm_/, `${name}'s tables are unqualified (created in the scratch schema on the search_path)`)
  }
})
