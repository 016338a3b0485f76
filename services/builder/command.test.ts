import t from 'tap'
import { parseGitCommand } from './command.js'

t.test('push and fetch of an app repo', async (t) => {
  t.same(parseGitCommand("git-receive-pack 'shop.git'"), { ok: true, service: 'git-receive-pack', app: 'shop' })
  t.same(parseGitCommand("git-receive-pack '/shop.git'"), { ok: true, service: 'git-receive-pack', app: 'shop' }, 'ssh:// URL form')
  t.same(parseGitCommand("git-upload-pack 'my-app'"), { ok: true, service: 'git-upload-pack', app: 'my-app' }, 'without .git')
  t.same(parseGitCommand('git upload-pack shop.git'), { ok: true, service: 'git-upload-pack', app: 'shop' }, 'space form, unquoted')
})

t.test('refusals', async (t) => {
  for (const cmd of [
    "git-receive-pack '../x.git'",
    "git-receive-pack '/etc/passwd'",
    "git-receive-pack '/srv/git/shop.git'",
    "git-receive-pack 'sh;op.git'",
    "git-receive-pack 'Shop.git'",
    "git-receive-pack 'shop.git' extra'",
    "git-receive-pack ''",
    "git-receive-pack '.git'",
    "git-receive-pack 'a-very-long-application-name-beyond-thirty.git'",
    "git-receive-pack 'sh\nop.git'",
  ]) {
    const r = parseGitCommand(cmd)
    t.equal(r.ok, false, cmd)
    if (!r.ok) t.match(r.reason, /is not an app repository/, cmd)
  }
  for (const cmd of ['ls -la', 'sh', 'git-upload-archive shop.git', 'scp -t /tmp', '']) {
    const r = parseGitCommand(cmd)
    t.equal(r.ok, false, cmd)
    if (!r.ok) t.match(r.reason, /only takes git pushes and fetches/, cmd)
  }
})
