import t from 'tap'
import { formatSyslogFrame, parseSyslog, SyslogFramer } from './syslog.js'

const now = new Date('2024-03-10T12:00:00Z')

t.test('RFC 5424: every header field, structured data, BOM, nil values', async (t) => {
  t.same(parseSyslog('<14>1 2024-03-10T11:59:58.123+01:00 host1 shop web.1 ID47 [ex@1 a="b\\"]c"][x@2] \ufeffhello world', now), {
    facility: 1,
    severity: 6,
    time: '2024-03-10T10:59:58.123Z',
    hostname: 'host1',
    appName: 'shop',
    procId: 'web.1',
    msgId: 'ID47',
    message: 'hello world',
  })
  t.match(parseSyslog('<0>1 - - shop - - -', now), { facility: 0, severity: 0, time: undefined, hostname: undefined, procId: undefined, message: '' })
  t.equal(parseSyslog('<191>1 - h shop - - - msg with  spaces ', now).message, 'msg with  spaces ')
})

t.test('RFC 3164: timestamp without a year, host, tag and pid', async (t) => {
  t.same(parseSyslog('<13>Mar  9 08:01:02 web-host shop[1234]: it works', now), {
    facility: 1,
    severity: 5,
    time: '2024-03-09T08:01:02.000Z',
    hostname: 'web-host',
    appName: 'shop',
    procId: '1234',
    msgId: undefined,
    message: 'it works',
  })
  t.equal(
    parseSyslog('<13>Dec 31 23:00:00 h shop: new year', new Date('2024-01-01T00:10:00Z')).time,
    '2023-12-31T23:00:00.000Z',
    'a December line read in January is last year',
  )
})

t.test('malformed messages are refused with a reason, never guessed', async (t) => {
  for (const bad of [
    'no pri',
    '<192>1 - - shop - - - too high',
    '<014>1 - - shop - - - leading zero',
    '<14>1 yesterday h shop - - - bad time',
    '<14>1 2024-03-10T11:59:58Z h shop',
    '<14>1 2024-03-10T11:59:58Z h shop - - [unterminated',
    '<14>1 2024-03-10T11:59:58Z h shop - - x',
    '<14>Foo 10 11:59:58 h shop: bad month',
    '<14>just text',
    `<14>1 - h ${'a'.repeat(49)} - - - app name too long`,
  ]) {
    t.throws(() => parseSyslog(bad, now), { name: 'SyslogError' }, JSON.stringify(bad.slice(0, 40)))
  }
})

function frames(chunks: (string | Buffer)[], max?: number) {
  const got: string[] = []
  const bad: string[] = []
  const f = new SyslogFramer(
    (b) => got.push(b.toString()),
    (why) => bad.push(why),
    max,
  )
  for (const c of chunks) f.push(Buffer.from(c))
  f.end()
  return { got, bad }
}

t.test('TCP framing: octet counting and line feeds, split anywhere; oversized and bad counts are skipped', async (t) => {
  t.same(frames(['17 <14>1 - - a', ' - - -6 <1>1 ', 'x<13>Mar  9 08:01:02 h a: b\n<13>Mar  9 08:01:02 h a: c\r\n']).got, [
    '<14>1 - - a - - -',
    '<1>1 x',
    '<13>Mar  9 08:01:02 h a: b',
    '<13>Mar  9 08:01:02 h a: c\r',
  ])
  t.same(frames(['<13>last line without LF']).got, ['<13>last line without LF'], 'the last line counts when the connection ends')
  const big = frames([`100 ${'x'.repeat(100)}5 hello`], 50)
  t.same(big.got, ['hello'], 'the frame after an oversized one is read')
  t.same(big.bad, ['frame of 100 bytes is over 50'])
  const junk = frames(['12x34 nonsense\n3 abc'])
  t.same(junk.got, ['abc'])
  t.equal(junk.bad.length, 1)
  t.same(frames(['10 short']).bad, ['the connection ended inside a frame'])
})

t.test('drain frames: RFC 5424, octet-counted, and a Wharf reads them back to the same app', async (t) => {
  const frame = formatSyslogFrame({ id: '1.0', time: '2024-03-10T11:59:58.123456789Z', app: 'shop', source: 'app', stream: 'stderr', text: 'boom' }, 'web.1')
  const text = frame.toString()
  t.equal(text, `${text.length - 3} <11>1 2024-03-10T11:59:58.123456789Z wharf shop web.1 - - boom`)
  const back = frames([frame])
  t.match(parseSyslog(back.got[0]!, now), { appName: 'shop', procId: 'web.1', severity: 3, message: 'boom' })
})
