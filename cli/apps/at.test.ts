import t from 'tap'
import { asOfLine, atParam } from './at.js'

t.test('atParam: a seq as is, a time as ISO 8601 UTC', async (t) => {
  t.equal(atParam('42'), '42')
  t.equal(atParam(' 7 '), '7')
  t.equal(atParam('2026-12-07T05:00:00Z'), '2026-12-07T05:00:00.000Z')
  t.equal(atParam('2026-12-07T06:00:00+01:00'), '2026-12-07T05:00:00.000Z')
  // Without a zone: the local time of the user (here, whatever TZ the test runs in).
  t.equal(atParam('2026-12-07T05:00:00'), new Date(2026, 11, 7, 5, 0, 0).toISOString())
})

t.test('atParam: unparsable or seq 0 is WHARF_INVALID', async (t) => {
  for (const bad of ['0', 'yesterday', 'now', '2026-13-45T99:00:00Z', '', '-3']) {
    t.throws(() => atParam(bad), { name: 'CliError', code: 'WHARF_INVALID', message: /^--at / }, JSON.stringify(bad))
  }
})

t.test('the line a human answer starts with', async (t) => {
  t.equal(asOfLine({ seq: 12, time: '2026-12-07T05:00:00.000Z' }), 'as of 2026-12-07T05:00:00.000Z (seq 12)')
})
