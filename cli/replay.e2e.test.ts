/**
 * `wharf admin:replay` as an operator runs it (bin/wharf against a controller of the test's own):
 * --verify prints identical or the rows that differ and exits 1 on a difference, a replay mends,
 * --json, one read model; refusals as one line with their code.
 */
import t from 'tap'
import { startTestController } from '../services/controller/testing.js'
import { populate } from '../services/store/testing.js'
import { cli, fails, ok, requireBuilt } from './testing.js'

const FIGURE = /^Replayed \d+ events in \d+\.\d s \([\d,]+ events\/s\)\.$/m

t.test('admin:replay --verify, admin:replay, --projection, --json; non-admins and a second replay refused', async (t) => {
  requireBuilt()
  const c = await startTestController(t)
  const { root, alice } = await populate(c)
  const admin = cli(t, c.url, root)
  const pool = c.deps.pool

  const clean = await ok(t, admin.run(['admin:replay', '--verify']), 'admin:replay --verify')
  const lines = clean.stdout.trimEnd().split('\n')
  for (const name of ['apps', 'config', 'eventlog', 'users', 'releases', 'formation', 'domains', 'containers', 'access', 'builds']) {
    t.match(
      lines.find((l) => l.startsWith(`${name}: `)),
      new RegExp(`^${name}: identical \\(at event \\d+\\)$`),
      `${name} identical`,
    )
  }
  t.match(clean.stdout, FIGURE, 'the figure at the end')

  await pool.query(`UPDATE rm_config.config SET value = 'tampered' WHERE app = 'shop' AND key = 'WORKERS'`)
  await pool.query(`DELETE FROM rm_domains.domains WHERE domain = 'shop.example.com'`)

  const found = await admin.run(['admin:replay', '--verify'])
  t.equal(found.code, 1, 'exit 1 on a difference')
  t.match(
    found.stdout,
    /^config: 1 row differs \(at event \d+\):\nTABLE\s+KIND\s+KEY\s+LIVE\s+REBUILT\nconfig\s+differs\s+\{"app":"shop","key":"WORKERS"\}\s+\{[^\n]*"tampered"[^\n]*\}\s+\{[^\n]*"4"/m,
  )
  t.match(
    found.stdout,
    /^domains: 1 row differs \(at event \d+\):\nTABLE\s+KIND\s+KEY\s+LIVE\s+REBUILT\ndomains\s+only-rebuilt\s+\{"domain":"shop\.example\.com"\}\s+-\s+\{/m,
  )
  t.match(found.stdout, /^apps: identical/m, 'the others still identical')
  t.match(found.stdout, FIGURE)
  t.notMatch(found.stderr, /wharf:/, 'no error line')

  const json = await admin.run(['admin:replay', '--verify', '--json', '--projection', 'config'])
  t.equal(json.code, 1, '--json exits 1 too')
  const job = JSON.parse(json.stdout)
  t.match(job, {
    status: 'done',
    verify: true,
    projection: 'config',
    result: { models: [{ projection: 'config', identical: false, differing: 1, rows: [{ kind: 'differs', key: { app: 'shop', key: 'WORKERS' } }] }] },
  })
  t.equal(job.result.models.length, 1, 'only the read model asked for')

  const mend = await ok(t, admin.run(['admin:replay', '--projection', 'config']), 'admin:replay --projection config')
  t.match(mend.stdout, /^Rebuilt and swapped in: config \(up to event \d+\)\.$/m)
  t.match(mend.stdout, FIGURE)
  const partly = await admin.run(['admin:replay', '--verify'])
  t.equal(partly.code, 1, 'domains still differs')
  t.match(partly.stdout, /^config: identical/m, 'config mended')
  await ok(t, admin.run(['admin:replay']), 'admin:replay (all)')
  const all = await ok(t, admin.run(['admin:replay', '--verify']), 'admin:replay --verify after mending')
  t.notMatch(all.stdout, /differ|NOT COMPARED/, 'every read model identical')

  const before = await c.deps.store.lastSeq()
  await fails(t, cli(t, c.url, alice).run(['admin:replay', '--verify']), 'WHARF_FORBIDDEN', 'a non-admin')
  await fails(t, admin.run(['admin:replay', '--projection', 'nope']), 'WHARF_NOT_FOUND', 'an unknown read model')
  await fails(t, admin.run(['admin:replay', '--projection', 'Bad-Name']), 'WHARF_INVALID', 'a malformed name')

  // A replay running in another process holds the platform's replay lock.
  const other = await pool.connect()
  t.teardown(() => other.release())
  await other.query('SELECT pg_advisory_lock($1, 0)', [0x7772706c])
  await fails(t, admin.run(['admin:replay']), 'WHARF_BUSY', 'while another replay runs')
  await other.query('SELECT pg_advisory_unlock($1, 0)', [0x7772706c])
  t.equal(await c.deps.store.lastSeq(), before, 'the refusals appended nothing')
})
