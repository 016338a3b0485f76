import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { isAlive, livePid, readPid } from './proc.js'

t.test('isAlive: this process is, no pid and a finished one are not', async (t) => {
  t.ok(isAlive(process.pid))
  t.notOk(isAlive(undefined))
  t.notOk(isAlive(0))
  t.notOk(isAlive(2 ** 22 + 1), 'above pid_max: no such process')
})

t.test('readPid: the first line of a pidfile (Postgres writes more after it)', async (t) => {
  const dir = t.testdir({ 'a.pid': '1234\n', 'pg.pid': '42\n/var/lib/pg\n1700000000\n', 'bad.pid': 'x\n', 'zero.pid': '0\n' })
  t.equal(readPid(join(dir, 'a.pid')), 1234)
  t.equal(readPid(join(dir, 'pg.pid')), 42)
  t.equal(readPid(join(dir, 'bad.pid')), undefined)
  t.equal(readPid(join(dir, 'zero.pid')), undefined)
  t.equal(readPid(join(dir, 'none.pid')), undefined)
})

t.test('livePid: the recorded pid while it runs; a stale pidfile is removed', async (t) => {
  const dir = t.testdir({})
  const live = join(dir, 'live.pid')
  writeFileSync(live, `${process.pid}\n`)
  t.equal(livePid(live), process.pid)
  t.ok(existsSync(live))
  const stale = join(dir, 'stale.pid')
  writeFileSync(stale, `${2 ** 22 + 1}\n`)
  t.equal(livePid(stale), undefined)
  t.notOk(existsSync(stale), 'removed')
})
