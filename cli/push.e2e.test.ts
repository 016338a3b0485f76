/**
 * A new user's first deploy, as the README tells it: `wharf keys:add`, `wharf create` in the app's
 * repo (adds the remote and trusts the builder's host key), `git push wharf main`, `wharf
 * releases`, `wharf builds:info`. ssh reads ~/.ssh from the passwd entry, not $HOME, so the test
 * names the test HOME's key and known_hosts for it; strict host key checking stays on.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { freePort } from '../infra/test-env.js'
import { startTestBuilder, testDocker } from '../services/builder/testing.js'
import { registerAndLogin, startEngineController } from '../services/controller/testing.js'
import { run } from '../test/git.js'
import { cliUser, requireBuilt } from './testing.js'

t.test('keys:add, create, git push wharf main, releases, builds:info', async (t) => {
  requireBuilt()
  const port = await freePort()
  const user = cliUser(t, {})
  const c = await startEngineController(t, {
    WHARF_HOME: join(user.home, 'platform'),
    WHARF_BUILDER_PORT: String(port),
  })
  await startTestBuilder(t, c)
  const token = await registerAndLogin(c, 'alice')
  const alice = cliUser(t, { WHARF_URL: c.url, WHARF_TOKEN: token })
  const ssh = join(alice.home, '.ssh')
  mkdirSync(ssh, { recursive: true, mode: 0o700 })
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'alice@laptop', '-f', join(ssh, 'id_ed25519')])
  t.equal((await alice.run(['keys:add'])).code, 0, 'keys:add takes ~/.ssh/id_ed25519.pub')

  const repo = join(alice.home, 'hello')
  mkdirSync(repo)
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=Alice', '-c', 'user.email=alice@example.com', ...args], { cwd: repo })
  git('init', '-q', '--initial-branch=main')
  writeFileSync(join(repo, 'Dockerfile'), 'FROM busybox\nCOPY index.html /www/\nCMD ["httpd", "-f", "-p", "5000", "-h", "/www"]\n')
  writeFileSync(join(repo, 'index.html'), 'hello\n')
  git('add', '-A')
  git('commit', '-q', '-m', 'hello')
  const app = `hello${Date.now().toString(36).slice(-6)}`
  t.teardown(async () => {
    for (const img of await testDocker().listImages({ filters: { label: [`wharf.app=${app}`] } }))
      await testDocker()
        .getImage(img.Id)
        .remove({ force: true })
        .catch(() => {})
  })

  const created = await alice.run(['create', app], repo)
  t.equal(created.code, 0, created.stderr)
  t.match(created.stdout, new RegExp(`Git remote wharf: ssh://git@127\\.0\\.0\\.1:${port}/${app}\\.git`))
  t.match(created.stdout, /Trusted the builder's host key \(SHA256:/)

  const sshCmd = `ssh -F /dev/null -i ${join(ssh, 'id_ed25519')} -o UserKnownHostsFile=${join(ssh, 'known_hosts')} -o StrictHostKeyChecking=yes -o BatchMode=yes`
  const push = await run('git', ['push', 'wharf', 'main'], { cwd: repo, env: { HOME: alice.home, GIT_SSH_COMMAND: sshCmd } })
  t.equal(push.code, 0, `git push wharf main\n${push.output}`)
  t.match(push.output, /remote: -----> Building/)
  t.match(push.output, /remote: -----> Released v2/)

  const releases = await alice.run(['releases', '--json'], repo)
  const list = JSON.parse(releases.stdout)
  const rel = (list.releases ?? list)[0]
  t.equal(rel.version, 2)
  t.match(rel.image, new RegExp(`${app}:git-[0-9a-f]{7}$`))
  const info = await alice.run(['builds:info'], repo)
  t.equal(info.code, 0, info.stderr)
  t.match(info.stdout, /succeeded/)
  t.match(info.stdout, /Step 1\/\d+ : FROM busybox/)

  // The known_hosts entry is not added twice; git:remote points another clone at the app.
  const again = await alice.run(['git:remote', '-a', app], repo)
  t.equal(again.code, 0, again.stderr)
  t.notMatch(again.stdout, /Trusted/, 'the key was known already')
})
