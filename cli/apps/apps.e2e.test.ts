/**
 * The app commands as a user runs them: `node bin/wharf` (compiled: `npx tsc -p .` first) with a
 * HOME of its own and WHARF_URL / WHARF_TOKEN, against a controller of its own.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { registerAndLogin, startTestController } from '../../services/controller/testing.js'
import { cli, fails, ok, requireBuilt } from '../testing.js'

t.test('apps, config, releases, rollback, scale, domains, limits, perms, maintenance through bin/wharf', async (t) => {
  requireBuilt()
  const c = await startTestController(t)
  await registerAndLogin(c, 'root')
  const alice = cli(t, c.url, await registerAndLogin(c, 'alice'))
  const bob = cli(t, c.url, await registerAndLogin(c, 'bob'))

  // apps:create in a git checkout adds the `wharf` remote; later commands find the app from it.
  const repo = mkdtempSync(join(tmpdir(), 'wharf-repo-'))
  t.teardown(() => rmSync(repo, { recursive: true, force: true }))
  execFileSync('git', ['init', '-q', repo])
  const created = await ok(t, alice.run(['apps:create', 'shop'], repo), 'apps:create')
  t.match(created.stdout, /Created shop: http:\/\/shop\./)
  t.equal(execFileSync('git', ['remote', 'get-url', 'wharf'], { cwd: repo }).toString().trim(), 'ssh://git@127.0.0.1:2222/shop.git')
  await fails(t, alice.run(['create', 'shop', '--no-remote']), 'WHARF_EXISTS', 'create a duplicate')
  const gen = await ok(t, alice.run(['create', '--no-remote', '--json']), 'create without a name')
  t.match(JSON.parse(gen.stdout).name, /^[a-z]+-[a-z]+-\d{4}$/)

  const list = await ok(t, alice.run(['apps:list']), 'apps:list')
  t.match(list.stdout, /^NAME\s+OWNER\s+URL\s+CREATED\n/)
  t.match(list.stdout, /\nshop\s+alice\s+http/)
  const listJson = JSON.parse((await ok(t, alice.run(['apps:list', '--json']), 'apps:list --json')).stdout)
  t.equal(listJson.apps.length, 2)
  t.match((await ok(t, alice.run(['info'], repo), 'info from the remote')).stdout, /=== shop\nowner:\s+alice/)
  t.match((await ok(t, alice.run(['apps:open', '-a', 'shop']), 'apps:open')).stdout, /^http:\/\/shop\.[^\s]+:\d+\n$/)
  await fails(t, alice.run(['apps:info']), 'WHARF_INVALID', 'no app outside a checkout')
  await fails(t, bob.run(['apps:info', '-a', 'shop']), 'WHARF_NOT_FOUND', "someone else's app")

  // config
  await ok(t, alice.run(['config:set', 'FOO=bar', 'URL=http://x/?a=b'], repo), 'config:set')
  t.match((await ok(t, alice.run(['config:list'], repo), 'config:list')).stdout, /FOO\s+bar/)
  t.same(JSON.parse((await ok(t, alice.run(['config:list', '--json'], repo), 'config:list --json')).stdout), { values: { FOO: 'bar', URL: 'http://x/?a=b' } })
  await fails(t, alice.run(['config:set', 'lower=1'], repo), 'WHARF_INVALID', 'config:set a bad key')
  await fails(t, alice.run(['config:set', 'NOEQUALS'], repo), 'WHARF_INVALID', 'config:set without =')
  await ok(t, alice.run(['config:unset', 'URL'], repo), 'config:unset')
  await ok(t, alice.run(['config:pull', '-o', join(repo, 'pulled.env')], repo), 'config:pull')
  t.equal(readFileSync(join(repo, 'pulled.env'), 'utf8'), 'FOO=bar\n')
  writeFileSync(join(repo, 'push.env'), '# comment\nFOO=baz\nMULTI="line one\\nline two"\n')
  await ok(t, alice.run(['config:push', '-f', join(repo, 'push.env')], repo), 'config:push')
  t.same(JSON.parse((await alice.run(['config:list', '--json'], repo)).stdout).values, { FOO: 'baz', MULTI: 'line one\nline two' })

  // releases: v1 create, v2 set, v3 unset, v4 push; rollback to v2 makes v5
  const releases = JSON.parse((await ok(t, alice.run(['releases:list', '--json'], repo), 'releases:list --json')).stdout).releases
  t.same(
    releases.map((r: { version: number }) => r.version),
    [4, 3, 2, 1],
  )
  t.match((await ok(t, alice.run(['releases:list'], repo), 'releases:list')).stdout, /v4\s.*alice set FOO, MULTI/)
  t.match((await ok(t, alice.run(['releases:info', 'v2'], repo), 'releases:info')).stdout, /=== v2[\s\S]*FOO=bar[\s\S]*URL=http/)
  await fails(t, alice.run(['releases:info', 'v9'], repo), 'WHARF_NOT_FOUND', 'releases:info of a missing release')
  await fails(t, alice.run(['releases:info', 'nine'], repo), 'WHARF_INVALID', 'releases:info of a bad version')
  t.match((await ok(t, alice.run(['rollback', 'v2'], repo), 'rollback v2')).stdout, /Rolled back to v2: now v5/)
  t.same(JSON.parse((await alice.run(['config:list', '--json'], repo)).stdout).values, { FOO: 'bar', URL: 'http://x/?a=b' })
  t.match((await ok(t, alice.run(['releases:rollback'], repo), 'rollback to the previous')).stdout, /Rolled back to v4: now v6/)

  // formation
  t.match((await ok(t, alice.run(['ps:scale', 'web=2', 'worker=1'], repo), 'ps:scale')).stdout, /web=2 worker=1/)
  await fails(t, alice.run(['scale', 'web=many'], repo), 'WHARF_INVALID', 'scale to a non-number')
  await fails(t, alice.run(['scale', 'web=101'], repo), 'WHARF_INVALID', 'scale above 100')
  t.match((await ok(t, alice.run(['ps:list'], repo), 'ps:list')).stdout, /formation: web=2 worker=1\nNo processes running/)
  t.match((await ok(t, alice.run(['ps:restart'], repo), 'ps:restart')).stdout, /Restarting web, worker, one process at a time/)
  t.match((await ok(t, alice.run(['ps:restart', 'worker'], repo), 'ps:restart worker')).stdout, /Restarting worker,/)
  await fails(t, alice.run(['ps:restart', 'clock'], repo), 'WHARF_INVALID', 'restart of a type the app does not have')

  // domains
  await ok(t, alice.run(['domains:add', 'shop.example.com'], repo), 'domains:add')
  t.match((await ok(t, alice.run(['domains:list'], repo), 'domains:list')).stdout, /shop\.example\.com/)
  await fails(t, alice.run(['domains:add', 'bad domain!'], repo), 'WHARF_INVALID', 'a bad domain')
  await ok(t, alice.run(['domains:remove', 'shop.example.com'], repo), 'domains:remove')

  // limits
  t.match((await ok(t, alice.run(['limits:set', 'web=512m'], repo), 'limits:set')).stdout, /web\s+512M\s+-/)
  t.match((await ok(t, alice.run(['limits:set', '--cpu', 'web=0.5'], repo), 'limits:set --cpu')).stdout, /web\s+512M\s+0\.5/)
  await ok(t, alice.run(['limits:unset', 'web'], repo), 'limits:unset')
  t.same(JSON.parse((await ok(t, alice.run(['limits:list', '--json'], repo), 'limits:list')).stdout), { memory: {}, cpu: { web: 0.5 } })

  // perms and maintenance
  await ok(t, alice.run(['perms:create', 'bob'], repo), 'perms:create')
  t.match((await ok(t, bob.run(['perms:list', '-a', 'shop']), 'perms:list as a collaborator')).stdout, /owner: alice\ncollaborator: bob/)
  await ok(t, bob.run(['maintenance:on', '-a', 'shop']), 'maintenance:on as a collaborator')
  t.match((await ok(t, alice.run(['maintenance:info'], repo), 'maintenance:info')).stdout, /on/)
  await ok(t, alice.run(['maintenance:off'], repo), 'maintenance:off')
  await fails(t, bob.run(['apps:destroy', '-a', 'shop', '--confirm', 'shop']), 'WHARF_FORBIDDEN', 'a collaborator destroys')
  await fails(t, alice.run(['perms:create', 'nobody'], repo), 'WHARF_NOT_FOUND', 'share with no one')
  await ok(t, alice.run(['perms:delete', 'bob'], repo), 'perms:delete')
  await fails(t, bob.run(['config:list', '-a', 'shop']), 'WHARF_NOT_FOUND', 'unshared')

  // transfer and destroy
  await ok(t, alice.run(['apps:transfer', 'bob', '-a', JSON.parse(gen.stdout).name]), 'apps:transfer')
  t.equal(JSON.parse((await bob.run(['apps:info', '--json', '-a', JSON.parse(gen.stdout).name])).stdout).owner, 'bob')
  await fails(t, alice.run(['destroy', '--confirm', 'shoe'], repo), 'WHARF_INVALID', "destroy confirming another name than the remote's app")
  await fails(t, alice.run(['destroy', '-a', 'shop', '--confirm', 'shoe']), 'WHARF_INVALID', 'destroy with a mismatched confirm')
  await fails(t, alice.run(['destroy', '--confirm', 'nosuchapp']), 'WHARF_NOT_FOUND', 'destroy a missing app')
  t.match((await ok(t, alice.run(['destroy', '--confirm', 'shop'], repo), 'destroy')).stdout, /Destroyed shop/)
  t.same(JSON.parse((await alice.run(['apps:list', '--json'])).stdout), { apps: [] })
})
