/**
 * Accounts through the real API (HTTP, NATS, Postgres, projector): auth, tokens, keys, users and
 * admins, every refusal, and that bad input appends nothing.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { provenKey, registerAndLogin, startTestController, type TestController } from '../testing.js'

function sshKeygen(t: Test, type: 'ed25519' | 'rsa' = 'ed25519', comment = 'me@laptop'): { pub: string; priv: string; path: string; publicKey: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-key-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'id')
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', comment, '-f', file])
  const pub = readFileSync(`${file}.pub`, 'utf8')
  return { pub, priv: readFileSync(file, 'utf8'), path: file, publicKey: pub }
}

t.test('auth: register, login, whoami, logout, regenerate, passwd', async (t) => {
  const c = await startTestController(t)

  const first = await c.call('POST', '/v1/auth/register', { body: { username: 'alice', password: 'alice-secret', email: 'alice@example.com' } })
  t.equal(first.status, 201)
  t.same(first.body, { username: 'alice', email: 'alice@example.com', admin: true }, 'the first user is the admin')
  const second = await c.call('POST', '/v1/auth/register', { body: { username: 'bob', password: 'bob-secret', email: 'bob@example.com' } })
  t.same(second.body, { username: 'bob', email: 'bob@example.com', admin: false }, 'the second is not')

  const dup = await c.call('POST', '/v1/auth/register', { body: { username: 'bob', password: 'other-secret', email: 'b2@example.com' } })
  t.equal(dup.status, 409)
  t.equal(dup.body.code, 'WHARF_EXISTS')

  const bad = await c.call('POST', '/v1/auth/login', { body: { username: 'alice', password: 'wrong-password' } })
  const unknown = await c.call('POST', '/v1/auth/login', { body: { username: 'nobody', password: 'wrong-password' } })
  t.equal(bad.status, 401)
  t.equal(bad.body.code, 'WHARF_UNAUTHORIZED')
  t.equal(unknown.status, 401)
  t.equal(unknown.body.message, bad.body.message, 'unknown user and wrong password answer alike')

  const login = await c.call('POST', '/v1/auth/login', { body: { username: 'alice', password: 'alice-secret' } })
  t.equal(login.status, 200)
  t.equal(login.body.username, 'alice')
  t.match(login.body.token, /^[A-Za-z0-9_-]{43}$/)
  const token: string = login.body.token

  const who = await c.call('GET', '/v1/auth/whoami', { token })
  t.equal(who.status, 200)
  t.same(who.body, { username: 'alice', email: 'alice@example.com', admin: true })

  // The log never holds the token or the password.
  const dump: string[] = []
  for await (const e of c.deps.store.readAll()) dump.push(JSON.stringify(e))
  t.notOk(dump.join('\n').includes(token), 'no token in the log')
  t.notOk(dump.join('\n').includes('alice-secret'), 'no password in the log')

  // logout revokes only the calling token
  const other = (await c.call('POST', '/v1/auth/login', { body: { username: 'alice', password: 'alice-secret' } })).body.token as string
  t.equal((await c.call('POST', '/v1/auth/logout', { token })).status, 204)
  const after = await c.call('GET', '/v1/auth/whoami', { token })
  t.equal(after.status, 401)
  t.equal(after.body.code, 'WHARF_UNAUTHORIZED')
  t.equal((await c.call('GET', '/v1/auth/whoami', { token: other })).status, 200, 'the other token still works')

  // regenerate revokes every token, answers a new one
  const t2 = (await c.call('POST', '/v1/auth/login', { body: { username: 'alice', password: 'alice-secret' } })).body.token as string
  const regen = await c.call('POST', '/v1/auth/tokens', { token: other })
  t.equal(regen.status, 200)
  t.match(regen.body.token, /^[A-Za-z0-9_-]{43}$/)
  t.equal((await c.call('GET', '/v1/auth/whoami', { token: other })).status, 401, 'the calling token is revoked')
  t.equal((await c.call('GET', '/v1/auth/whoami', { token: t2 })).status, 401, 'every other token is revoked')
  const fresh: string = regen.body.token
  t.equal((await c.call('GET', '/v1/auth/whoami', { token: fresh })).status, 200)

  // passwd: wrong current password refused; then the new one works, the old one not; other tokens revoked, this one kept
  const elsewhere = (await c.call('POST', '/v1/auth/login', { body: { username: 'alice', password: 'alice-secret' } })).body.token as string
  const wrong = await c.call('POST', '/v1/auth/passwd', { token: fresh, body: { password: 'not-it-at-all', newPassword: 'alice-new-secret' } })
  t.equal(wrong.status, 401)
  const short = await c.call('POST', '/v1/auth/passwd', { token: fresh, body: { password: 'alice-secret', newPassword: 'short' } })
  t.equal(short.status, 400)
  t.equal(short.body.code, 'WHARF_INVALID')
  t.equal((await c.call('POST', '/v1/auth/passwd', { token: fresh, body: { password: 'alice-secret', newPassword: 'alice-new-secret' } })).status, 204)
  t.equal((await c.call('GET', '/v1/auth/whoami', { token: fresh })).status, 200, 'the calling token stays valid')
  t.equal((await c.call('GET', '/v1/auth/whoami', { token: elsewhere })).status, 401, 'other tokens are revoked')
  t.equal((await c.call('POST', '/v1/auth/login', { body: { username: 'alice', password: 'alice-secret' } })).status, 401)
  t.equal((await c.call('POST', '/v1/auth/login', { body: { username: 'alice', password: 'alice-new-secret' } })).status, 200)

  const openapi = await c.call('GET', '/v1/openapi.json')
  t.equal(openapi.status, 200)
  for (const path of ['/v1/auth/register', '/v1/auth/login', '/v1/keys', '/v1/keys/challenge', '/v1/keys/{id}', '/v1/users', '/v1/admins/{username}'])
    t.ok(openapi.body.paths[path], `openapi has ${path}`)

  // a revoked token on register counts as none (open registration still works)
  t.equal((await c.call('POST', '/v1/auth/register', { token, body: { username: 'carol', password: 'password1', email: 'c@example.com' } })).status, 201)

  // every account endpoint needs a token
  for (const [method, path] of [
    ['GET', '/v1/auth/whoami'],
    ['POST', '/v1/auth/logout'],
    ['POST', '/v1/auth/passwd'],
    ['POST', '/v1/auth/tokens'],
    ['GET', '/v1/keys'],
    ['GET', '/v1/keys/challenge'],
    ['POST', '/v1/keys'],
    ['DELETE', '/v1/keys/x'],
    ['GET', '/v1/users'],
    ['GET', '/v1/admins'],
    ['PUT', '/v1/admins/bob'],
    ['DELETE', '/v1/admins/bob'],
  ] as const) {
    const res = await c.call(method, path)
    t.equal(res.status, 401, `${method} ${path} without a token`)
    t.equal(res.body?.code, 'WHARF_UNAUTHORIZED')
    const forged = await c.call(method, path, { token: 'A'.repeat(43) })
    t.equal(forged.status, 401, `${method} ${path} with a made-up token`)
  }
})

t.test('first-admin race: two concurrent first registrations, exactly one admin', async (t) => {
  const c = await startTestController(t)
  const names = ['u1', 'u2', 'u3', 'u4']
  const res = await Promise.all(
    names.map((n) => c.call('POST', '/v1/auth/register', { body: { username: n, password: 'password1', email: `${n}@example.com` } })),
  )
  t.same(
    res.map((r) => r.status),
    [201, 201, 201, 201],
  )
  t.equal(res.filter((r) => r.body.admin).length, 1, 'one admin')
  const token = await (async () => {
    const admin = res.find((r) => r.body.admin)!.body.username
    return (await c.call('POST', '/v1/auth/login', { body: { username: admin, password: 'password1' } })).body.token as string
  })()
  const admins = await c.call('GET', '/v1/admins', { token })
  t.equal(admins.body.length, 1)
})

t.test('registration modes', async (t) => {
  t.test('closed: the first user may register, nobody after', async (t) => {
    const c = await startTestController(t, { WHARF_REGISTRATION: 'closed' })
    t.equal((await c.call('POST', '/v1/auth/register', { body: { username: 'root', password: 'password1', email: 'r@example.com' } })).status, 201)
    const seq = await c.deps.store.lastSeq()
    const res = await c.call('POST', '/v1/auth/register', { body: { username: 'eve', password: 'password1', email: 'e@example.com' } })
    t.equal(res.status, 403)
    t.equal(res.body.code, 'WHARF_FORBIDDEN')
    t.equal(await c.deps.store.lastSeq(), seq, 'nothing appended')
  })
  t.test('admin_only: only an admin token registers others', async (t) => {
    const c = await startTestController(t, { WHARF_REGISTRATION: 'admin_only' })
    const admin = await registerAndLogin(c, 'root')
    const anon = await c.call('POST', '/v1/auth/register', { body: { username: 'eve', password: 'password1', email: 'e@example.com' } })
    t.equal(anon.status, 403)
    t.equal(anon.body.code, 'WHARF_FORBIDDEN')
    const byAdmin = await c.call('POST', '/v1/auth/register', { token: admin, body: { username: 'carol', password: 'password1', email: 'c@example.com' } })
    t.equal(byAdmin.status, 201)
    t.equal(byAdmin.body.admin, false)
    const carol = (await c.call('POST', '/v1/auth/login', { body: { username: 'carol', password: 'password1' } })).body.token as string
    const byUser = await c.call('POST', '/v1/auth/register', { token: carol, body: { username: 'dave', password: 'password1', email: 'd@example.com' } })
    t.equal(byUser.status, 403, 'a non-admin token is not enough')
  })
})

t.test('bad input: a 4xx with a code and no event appended', async (t) => {
  const c = await startTestController(t)
  const token = await registerAndLogin(c, 'alice')
  const seq = await c.deps.store.lastSeq()
  const cases: [string, string, Parameters<TestController['call']>[2]][] = [
    ['POST', '/v1/auth/register', { rawBody: '{"username": "x",' }],
    ['POST', '/v1/auth/register', { body: { username: 'Bad Name', password: 'password1', email: 'a@example.com' } }],
    ['POST', '/v1/auth/register', { body: { username: 'ok', password: 12345678, email: 'a@example.com' } }],
    ['POST', '/v1/auth/register', { body: { username: 'ok', password: 'password1', email: 'not-an-email' } }],
    ['POST', '/v1/auth/register', { body: { username: 'ok', password: 'short', email: 'a@example.com' } }],
    ['POST', '/v1/auth/register', { body: { username: 'ok', password: 'x'.repeat(1025), email: 'a@example.com' } }],
    ['POST', '/v1/auth/register', { body: { username: 'ok', password: 'password1', email: 'a@example.com', admin: true } }],
    ['POST', '/v1/auth/register', { body: { username: 'ok', password: 'password1', email: 'a@example.com', pad: 'x'.repeat(1024 * 1024 + 10) } }],
    ['POST', '/v1/auth/login', { rawBody: 'not json' }],
    ['POST', '/v1/auth/login', { body: { username: 'alice', password: 'correct horse', extra: 1 } }],
    ['POST', '/v1/auth/passwd', { token, body: { password: 'correct horse', newPassword: ['x'] } }],
    ['POST', '/v1/keys', { token, body: { key: 42 } }],
    ['POST', '/v1/keys', { token, body: { key: 'ssh-ed25519 AAAA', extra: true } }],
    ['POST', '/v1/keys', { token, body: { key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKWgp1DgL0bu2mG2dbvBEqXKX2P1oHUNb3CiKQ7bLnRa', name: 'bad name!' } }],
    ['POST', '/v1/keys', { token, body: { key: 'x'.repeat(20000) } }],
    ['PUT', '/v1/admins/NOT_A_NAME', { token }],
  ]
  for (const [method, path, opts] of cases) {
    const res = await c.call(method, path, opts)
    t.ok(res.status >= 400 && res.status < 500, `${method} ${path} ${JSON.stringify(opts).slice(0, 80)} -> ${res.status}`)
    t.match(res.body?.code, /^WHARF_(INVALID|TOO_LARGE)$/, `code ${res.body?.code}`)
  }
  const big = await c.call('POST', '/v1/auth/register', {
    rawBody: JSON.stringify({ username: 'ok', password: 'password1', email: 'a@example.com', pad: 'x'.repeat(1024 * 1024) }),
  })
  t.equal(big.status, 413)
  t.equal(big.body.code, 'WHARF_TOO_LARGE')
  t.equal(await c.deps.store.lastSeq(), seq, 'no event appended')
})

t.test('keys: add, list, remove; garbage, private keys and duplicates refused', async (t) => {
  const c = await startTestController(t)
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  const k1 = sshKeygen(t, 'ed25519', 'alice@laptop')
  const k2 = sshKeygen(t, 'rsa', 'alice@desktop')
  const expectedFp = execFileSync('ssh-keygen', ['-lf', '-'], { input: k1.pub }).toString().split(' ')[1]

  const add = await c.call('POST', '/v1/keys', { token: alice, body: await provenKey(c, alice, k1) })
  t.equal(add.status, 201)
  t.equal(add.body.fingerprint, expectedFp, 'the fingerprint ssh-keygen prints')
  t.equal(add.body.name, 'alice@laptop', 'named after the comment')
  t.equal(add.body.type, 'ssh-ed25519')
  const add2 = await c.call('POST', '/v1/keys', { token: alice, body: await provenKey(c, alice, k2, { name: 'desk' }) })
  t.equal(add2.status, 201)
  t.equal(add2.body.type, 'ssh-rsa')

  const list = await c.call('GET', '/v1/keys', { token: alice })
  t.equal(list.status, 200)
  t.same(
    list.body.map((k: { name: string }) => k.name),
    ['alice@laptop', 'desk'],
  )
  t.same((await c.call('GET', '/v1/keys', { token: bob })).body, [], "bob sees none of alice's keys")

  const seq = await c.deps.store.lastSeq()
  for (const [what, key, code] of [
    ['garbage', 'hello world', 'WHARF_INVALID'],
    ['truncated', k1.pub.slice(0, 40), 'WHARF_INVALID'],
    ['private', k1.priv, 'WHARF_INVALID'],
  ] as const) {
    const res = await c.call('POST', '/v1/keys', { token: alice, body: { key } })
    t.equal(res.status, 400, what)
    t.equal(res.body.code, code, what)
  }
  const same = await c.call('POST', '/v1/keys', { token: alice, body: await provenKey(c, alice, k1, { name: 'again' }) })
  t.equal(same.status, 409, 'the same key twice by its owner')
  t.equal(same.body.code, 'WHARF_EXISTS')
  const other = await c.call('POST', '/v1/keys', { token: bob, body: await provenKey(c, bob, k1) })
  t.equal(other.status, 409, "alice's key by bob, who holds its private key too")
  t.equal(other.body.code, 'WHARF_EXISTS')
  const unproven = await c.call('POST', '/v1/keys', { token: bob, body: { key: k1.pub } })
  t.equal(unproven.status, 403, "alice's key by bob without proof")
  t.equal(unproven.body.code, 'WHARF_KEY_UNPROVEN')
  const sameName = await c.call('POST', '/v1/keys', { token: alice, body: await provenKey(c, alice, sshKeygen(t), { name: 'desk' }) })
  t.equal(sameName.status, 409, 'a name taken')
  t.equal(await c.deps.store.lastSeq(), seq, 'no event appended by refusals')

  t.equal((await c.call('DELETE', `/v1/keys/${encodeURIComponent(add.body.fingerprint)}`, { token: bob })).status, 404, "bob cannot remove alice's key")
  t.equal((await c.call('DELETE', '/v1/keys/nope', { token: alice })).status, 404)
  t.equal((await c.call('DELETE', `/v1/keys/${encodeURIComponent(add.body.fingerprint)}`, { token: alice })).status, 204, 'by fingerprint')
  t.equal((await c.call('DELETE', '/v1/keys/desk', { token: alice })).status, 204, 'by name')
  t.same((await c.call('GET', '/v1/keys', { token: alice })).body, [])

  // a removed key is free again, for anyone
  const taken = await c.call('POST', '/v1/keys', { token: bob, body: await provenKey(c, bob, k1) })
  t.equal(taken.status, 201)
  const { rows } = await c.deps.pool.query('SELECT username FROM rm_keys.keys WHERE fingerprint = $1', [add.body.fingerprint])
  t.same(rows, [{ username: 'bob' }], 'the keys read model knows the holder')
})

t.test('keys: two users add one key at once, exactly one wins', async (t) => {
  const c = await startTestController(t)
  const tokens = await Promise.all(['alice', 'bob', 'carol', 'dave'].map((n) => registerAndLogin(c, n)))
  for (let round = 0; round < 3; round++) {
    const key = sshKeygen(t)
    const res = await Promise.all(tokens.map(async (token) => c.call('POST', '/v1/keys', { token, body: await provenKey(c, token, key) })))
    t.equal(res.filter((r) => r.status === 201).length, 1, `round ${round}: one 201`)
    t.equal(res.filter((r) => r.status === 409 && r.body.code === 'WHARF_EXISTS').length, tokens.length - 1, `round ${round}: the rest 409`)
    const fp = res.find((r) => r.status === 201)!.body.fingerprint
    const { rows } = await c.deps.pool.query('SELECT count(*)::int AS n FROM rm_keys.keys WHERE fingerprint = $1', [fp])
    t.equal(rows[0].n, 1)
  }
})

t.test('users and admins', async (t) => {
  const c = await startTestController(t)
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')

  const users = await c.call('GET', '/v1/users', { token: alice })
  t.equal(users.status, 200)
  t.same(
    users.body.map((u: { username: string; admin: boolean }) => [u.username, u.admin]),
    [
      ['alice', true],
      ['bob', false],
    ],
  )
  t.match(users.body[0], { email: 'alice@example.com', createdAt: /^\d{4}-/ })
  const denied = await c.call('GET', '/v1/users', { token: bob })
  t.equal(denied.status, 403)
  t.equal(denied.body.code, 'WHARF_FORBIDDEN')
  t.equal((await c.call('GET', '/v1/admins', { token: bob })).status, 403)
  t.equal((await c.call('PUT', '/v1/admins/bob', { token: bob })).status, 403, 'bob cannot make himself admin')

  t.equal((await c.call('PUT', '/v1/admins/nobody', { token: alice })).status, 404)
  t.equal((await c.call('DELETE', '/v1/admins/nobody', { token: alice })).status, 404)

  const lastSeq = await c.deps.store.lastSeq()
  const last = await c.call('DELETE', '/v1/admins/alice', { token: alice })
  t.equal(last.status, 403, 'the last admin stays')
  t.equal(last.body.code, 'WHARF_FORBIDDEN')
  t.equal(await c.deps.store.lastSeq(), lastSeq)

  const grant = await c.call('PUT', '/v1/admins/bob', { token: alice })
  t.equal(grant.status, 200)
  t.same(grant.body, { username: 'bob', email: 'bob@example.com', admin: true })
  t.equal((await c.call('GET', '/v1/users', { token: bob })).status, 200, 'bob is an admin now, at once')
  t.same((await c.call('GET', '/v1/auth/whoami', { token: bob })).body.admin, true)
  t.same(
    (await c.call('GET', '/v1/admins', { token: bob })).body.map((u: { username: string }) => u.username),
    ['alice', 'bob'],
  )
  t.equal((await c.call('DELETE', '/v1/admins/alice', { token: bob })).status, 200)
  t.equal((await c.call('GET', '/v1/users', { token: alice })).status, 403, 'alice is not an admin any more')
  t.equal((await c.call('DELETE', '/v1/admins/bob', { token: bob })).status, 403, 'bob is now the last admin')
})
