/**
 * The account commands as a user runs them: `node bin/wharf` (compiled: `npx tsc -p .` first) with
 * a HOME of its own, against a controller of its own.
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startTestController } from '../../services/controller/testing.js'
import { cliUser, requireBuilt, type Run } from '../testing.js'

/** A CLI user whose `run(...args)` runs bin/wharf against `url`. */
function cli(t: Test, url: string) {
  const user = cliUser(t, { WHARF_URL: url })
  return { home: user.home, run: (...args: string[]): Promise<Run> => user.run(args) }
}

t.test('register, login, whoami, keys, users through bin/wharf', async (t) => {
  requireBuilt()
  const c = await startTestController(t)
  const alice = cli(t, c.url)
  const bob = cli(t, c.url)

  const reg = await alice.run('auth:register', c.url, '--username', 'alice', '--password', 'alice-secret', '--email', 'alice@example.com')
  t.equal(reg.code, 0, reg.stderr)
  t.match(reg.stdout, /Registered alice \(admin/)
  const state = JSON.parse(readFileSync(join(alice.home, '.wharf', 'client.json'), 'utf8'))
  t.equal(state.url, c.url)
  t.equal(state.username, 'alice')
  t.match(state.token, /^[A-Za-z0-9_-]{43}$/)

  t.equal((await bob.run('register', c.url, '--username', 'bob', '--password', 'bob-secret', '--email', 'bob@example.com')).code, 0, 'the register shortcut')
  t.equal((await bob.run('logout')).code, 0)
  t.notOk(JSON.parse(readFileSync(join(bob.home, '.wharf', 'client.json'), 'utf8')).token, 'logout forgets the token')

  const badLogin = await bob.run('login', c.url, '--username', 'bob', '--password', 'wrong-password')
  t.equal(badLogin.code, 1)
  t.equal(badLogin.stderr.trim(), 'wharf: wrong username or password (WHARF_UNAUTHORIZED)', 'one line with the code')
  t.equal(badLogin.stderr.trim().split('\n').length, 1)
  t.notMatch(badLogin.stderr, /\n\s+at /, 'no stack trace')

  const login = await bob.run('auth:login', c.url, '--username', 'bob', '--password', 'bob-secret')
  t.equal(login.code, 0, login.stderr)
  t.match(login.stdout, /Signed in as bob/)

  const who = await bob.run('whoami', '--json')
  t.equal(who.code, 0, who.stderr)
  t.same(JSON.parse(who.stdout), { username: 'bob', email: 'bob@example.com', admin: false })
  t.match((await alice.run('auth:whoami')).stdout, /You are alice <alice@example.com>, an admin,/)

  // keys:add from the default path, then from a path with a name
  const ssh = join(bob.home, '.ssh')
  execFileSync('mkdir', ['-p', ssh])
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bob@laptop', '-f', join(ssh, 'id_ed25519')])
  execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-C', 'bob@other', '-f', join(bob.home, 'second')])
  const fp = execFileSync('ssh-keygen', ['-lf', join(ssh, 'id_ed25519.pub')])
    .toString()
    .split(' ')[1]!
  const add = await bob.run('keys:add')
  t.equal(add.code, 0, add.stderr)
  t.match(add.stdout, fp)
  t.equal((await bob.run('keys:add', join(bob.home, 'second.pub'), '--name', 'ci')).code, 0)

  const list = await bob.run('keys:list', '--json')
  t.equal(list.code, 0, list.stderr)
  const keys = JSON.parse(list.stdout) as { fingerprint: string; name: string; type: string }[]
  t.same(
    keys.map((k) => [k.name, k.type]),
    [
      ['bob@laptop', 'ssh-ed25519'],
      ['ci', 'ssh-rsa'],
    ],
  )
  t.equal(keys[0]!.fingerprint, fp)
  const table = await bob.run('keys:list')
  t.match(table.stdout, /^NAME\s+TYPE\s+FINGERPRINT\s+ADDED\n/)
  t.match(table.stdout, /bob@laptop\s+ssh-ed25519\s+SHA256:/)

  // errors: one line, a code, exit 1
  const dup = await alice.run('keys:add', join(ssh, 'id_ed25519.pub'))
  t.equal(dup.code, 1)
  t.match(dup.stderr, /^wharf: .*registered already \(WHARF_EXISTS\)\n$/)
  const priv = await bob.run('keys:add', join(ssh, 'id_ed25519'))
  t.equal(priv.code, 1)
  t.match(priv.stderr, /^wharf: .*private key.* \(WHARF_INVALID\)\n$/)
  // A public key without its private key (alice has a copy of bob's ci key's .pub only): not proven.
  copyFileSync(join(bob.home, 'second.pub'), join(alice.home, 'stolen.pub'))
  const stolen = await alice.run('keys:add', join(alice.home, 'stolen.pub'))
  t.equal(stolen.code, 1)
  t.match(stolen.stderr, /^wharf: cannot sign with the private key of .*stolen\.pub.* \(WHARF_KEY_UNPROVEN\)\n$/)
  const missing = await alice.run('keys:add')
  t.equal(missing.code, 1)
  t.match(missing.stderr, /no public key at .*id_ed25519.pub or .*id_rsa.pub.* \(WHARF_INVALID\)/)

  t.equal((await bob.run('keys:remove', 'ci')).code, 0)
  t.equal(JSON.parse((await bob.run('keys:list', '--json')).stdout).length, 1)
  const gone = await bob.run('keys:remove', 'ci')
  t.equal(gone.code, 1)
  t.match(gone.stderr, /\(WHARF_NOT_FOUND\)\n$/)

  // users:list: admins only
  const users = await alice.run('users:list', '--json')
  t.equal(users.code, 0, users.stderr)
  t.same(
    JSON.parse(users.stdout).map((u: { username: string }) => u.username),
    ['alice', 'bob'],
  )
  t.match((await alice.run('users:list')).stdout, /USER\s+EMAIL\s+ADMIN\s+REGISTERED\nalice\s+alice@example.com\s+yes/)
  const denied = await bob.run('users:list')
  t.equal(denied.code, 1)
  t.match(denied.stderr, /^wharf: only an admin may do this \(WHARF_FORBIDDEN\)\n$/)

  // passwd, regenerate
  t.equal((await bob.run('auth:passwd', '--password', 'bob-secret', '--new-password', 'bob-new-secret')).code, 0)
  const before = JSON.parse(readFileSync(join(bob.home, '.wharf', 'client.json'), 'utf8')).token
  t.equal((await bob.run('auth:regenerate')).code, 0)
  const after = JSON.parse(readFileSync(join(bob.home, '.wharf', 'client.json'), 'utf8')).token
  t.not(after, before, 'a new token is saved')
  t.equal((await bob.run('whoami')).code, 0, 'and works')
  t.equal((await c.call('GET', '/v1/auth/whoami', { token: before })).status, 401, 'the old one is revoked')

  // a missing required option is a one-line error too
  const noPw = await alice.run('auth:login', c.url, '--username', 'alice')
  t.equal(noPw.code, 1)
  t.match(noPw.stderr, /^wharf: .*--password.* \(WHARF_INVALID\)\n$/)
})
