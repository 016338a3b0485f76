/**
 * `--at` through bin/wharf (compiled: `npx tsc -p .` first): config:list and releases:list as they
 * were at an earlier seq and time, the "as of" line, the same --json shape, and the refusals.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { registerAndLogin, startTestController } from '../../services/controller/testing.js'
import { cli, fails, ok, requireBuilt } from '../testing.js'

t.test('config:list and releases:list --at an earlier seq and time', async (t) => {
  requireBuilt()
  const c = await startTestController(t)
  await registerAndLogin(c, 'root')
  const alice = cli(t, c.url, await registerAndLogin(c, 'alice'))
  const bob = cli(t, c.url, await registerAndLogin(c, 'bob'))

  await ok(t, alice.run(['apps:create', 'shop', '--no-remote']), 'apps:create')
  await ok(t, alice.run(['config:set', '-a', 'shop', 'A=1']), 'config:set A=1')
  const seq = await c.deps.store.lastSeq()
  await sleep(5)
  const time = new Date().toISOString()
  await sleep(5)
  await ok(t, alice.run(['config:set', '-a', 'shop', 'A=2', 'B=3']), 'config:set A=2 B=3')
  await ok(t, alice.run(['ps:scale', '-a', 'shop', 'web=2']), 'ps:scale')

  // Now.
  t.same(JSON.parse((await ok(t, alice.run(['config:list', '-a', 'shop', '--json']), 'config:list --json')).stdout), { values: { A: '2', B: '3' } })

  // Then, by seq.
  const list = await ok(t, alice.run(['config:list', '-a', 'shop', '--at', String(seq)]), 'config:list --at seq')
  t.match(list.stdout, new RegExp(`^as of \\S+ \\(seq ${seq}\\)\\nKEY\\s+VALUE\\nA\\s+1\\n$`), 'the as-of line, then the config of then')
  t.same(JSON.parse((await ok(t, alice.run(['config:list', '-a', 'shop', '--at', String(seq), '--json']), 'config:list --at --json')).stdout), {
    values: { A: '1' },
  })
  const shell = await ok(t, alice.run(['config:list', '-a', 'shop', '--at', String(seq), '--shell']), 'config:list --at --shell')
  t.equal(shell.stdout, 'A=1\n', '--shell stays KEY=value lines only')

  // Then, by time.
  const byTime = await ok(t, alice.run(['config:list', '-a', 'shop', '--at', time]), 'config:list --at time')
  t.match(byTime.stdout, new RegExp(`^as of ${time.replace(/\./g, '\\.')} \\(seq ${seq}\\)\\n`), 'as of that time, at the log position of then')
  t.match(byTime.stdout, /\nA\s+1\n$/)

  const releases = await ok(t, alice.run(['releases:list', '-a', 'shop', '--at', String(seq)]), 'releases:list --at')
  t.match(releases.stdout, new RegExp(`^as of \\S+ \\(seq ${seq}\\)\\nVERSION`), 'the as-of line first')
  t.match(releases.stdout, /\nv2\s.*alice set A\n/)
  t.notMatch(releases.stdout, /\nv3\s/, 'no release from after')
  const releasesJson = JSON.parse((await ok(t, alice.run(['releases:list', '-a', 'shop', '--at', time, '--json']), 'releases:list --at --json')).stdout)
  t.same(
    releasesJson.releases.map((r: { version: number }) => r.version),
    [2, 1],
  )
  t.same(Object.keys(releasesJson), ['releases'], 'the --json shape of releases:list')
  t.same(
    Object.keys(releasesJson.releases[0]).sort(),
    Object.keys(JSON.parse((await alice.run(['releases:list', '-a', 'shop', '--json'])).stdout).releases[0]).sort(),
  )

  // The other four answer too, with the line.
  for (const cmd of ['apps:info', 'ps:list', 'domains:list', 'perms:list']) {
    const r = await ok(t, alice.run([cmd, '-a', 'shop', '--at', String(seq)]), `${cmd} --at`)
    t.match(r.stdout, new RegExp(`^as of \\S+ \\(seq ${seq}\\)\\n`), `${cmd}: the as-of line`)
  }
  t.match((await alice.run(['ps:list', '-a', 'shop', '--at', String(seq)])).stdout, /=== formation: \(none\)/, 'not scaled yet then')
  t.match((await alice.run(['ps:list', '-a', 'shop'])).stdout, /=== formation: web=2/, 'scaled now')

  // Refusals: one line with the code.
  await fails(t, alice.run(['config:list', '-a', 'shop', '--at', 'yesterday']), 'WHARF_INVALID', 'an unparsable --at')
  await fails(t, alice.run(['config:list', '-a', 'shop', '--at', '0']), 'WHARF_INVALID', '--at 0')
  await fails(t, alice.run(['releases:list', '-a', 'shop', '--at', '999999']), 'WHARF_OUT_OF_RANGE', 'a seq beyond the log')
  await fails(
    t,
    alice.run(['config:list', '-a', 'shop', '--at', new Date(Date.now() + 86_400_000).toISOString()]),
    'WHARF_OUT_OF_RANGE',
    'a time in the future',
  )
  await fails(t, alice.run(['config:list', '-a', 'shop', '--at', '1']), 'WHARF_OUT_OF_RANGE', 'a seq before the app')
  await fails(t, alice.run(['config:list', '-a', 'shop', '--at', '2020-01-01T00:00:00Z']), 'WHARF_OUT_OF_RANGE', 'a time before the app')
  await fails(t, bob.run(['config:list', '-a', 'shop', '--at', String(seq)]), 'WHARF_NOT_FOUND', "someone else's app")
  await fails(t, bob.run(['releases:list', '-a', 'shop', '--at', '1']), 'WHARF_NOT_FOUND', "someone else's app, before it existed")
  await fails(t, alice.run(['perms:list', '--admin', '--at', String(seq)]), 'WHARF_INVALID', '--at with --admin')
})
