/**
 * Finding 8 of the isolation issue, against the real controller: a key claimed by one who does not
 * hold its private key (or one another user holds), tokens that never expired and could not be
 * listed or revoked one by one, sign-ins never throttled, `X-Request-Id` taken verbatim as the
 * correlation id. Each attack is refused with its code and records nothing.
 */
import { join } from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import t from 'tap'
import { makeSshKey, sshSign } from '../../../test/git.js'
import { provenKey, refused, registerAndLogin, startTestController } from '../testing.js'
import { forgetTokens } from '../auth.js'

// A few hundred requests: well under a minute on an idle machine, more when the 2 cores are shared.
t.setTimeout(300_000)

t.test("a public key is added only with proof of its private key: bob cannot claim alice's first", async (t) => {
  const c = await startTestController(t)
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  const dir = mkdtempSync(join(tmpdir(), 'wharf-keys-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const key = makeSshKey(join(dir, 'alice'))
  const bobs = makeSshKey(join(dir, 'bob'))

  // bob has alice's public key (public keys are public), not its private key.
  const before = await c.deps.store.lastSeq()
  const bare = await refused(t, c, 403, 'WHARF_KEY_UNPROVEN', 'POST', '/v1/keys', { token: bob, body: { key: key.publicKey } })
  t.match(bare.body.message, /prove you hold the private key .*GET \/v1\/keys\/challenge/, bare.body.message)
  const challenge = (await c.call('GET', '/v1/keys/challenge', { token: bob })).body.challenge as string
  t.match(challenge, /^wharf-keys:v1 user=bob /, 'a challenge for bob')
  const attempts: [string, Record<string, string>, RegExp][] = [
    ['signed with his own key', { challenge, signature: sshSign(bobs.path, challenge) }, /another key/],
    ['a signature that is not one', { challenge, signature: 'trust me' }, /not an SSH signature/],
    ['signed for another namespace', { challenge, signature: sshSign(key.path, challenge, 'git') }, /namespace "git"/],
  ]
  // alice's own proof, seen on the wire, replayed by bob: it names alice.
  const aliceChallenge = (await c.call('GET', '/v1/keys/challenge', { token: alice })).body.challenge as string
  attempts.push(["alice's proof replayed", { challenge: aliceChallenge, signature: sshSign(key.path, aliceChallenge) }, /another user/])
  for (const [what, proof, why] of attempts) {
    const res = await refused(t, c, 403, 'WHARF_KEY_UNPROVEN', 'POST', '/v1/keys', { token: bob, body: { key: key.publicKey, name: 'stolen', ...proof } })
    t.match(res.body.message, why, `${what}: ${res.body.message}`)
  }
  t.equal(await c.deps.store.lastSeq(), before, 'nothing recorded')
  t.same((await c.call('GET', '/v1/keys', { token: bob })).body, [], 'bob has no key')

  // alice, who holds it, adds it; her challenge is then stale (one proof adds one key once).
  const added = await c.call('POST', '/v1/keys', { token: alice, body: await provenKey(c, alice, key) })
  t.equal(added.status, 201, 'alice adds her key with its proof')
  const again = await c.call('POST', '/v1/keys', {
    token: alice,
    body: { key: bobs.publicKey, challenge: aliceChallenge, signature: sshSign(bobs.path, aliceChallenge) },
  })
  t.equal(again.body.code, 'WHARF_KEY_UNPROVEN', 'a challenge given before her last change is stale')
  t.match(again.body.message, /stale/)

  // One who does hold the private key (a shared key) still cannot take a key claimed already, and learns no holder.
  const res = await refused(t, c, 409, 'WHARF_EXISTS', 'POST', '/v1/keys', { token: bob, body: await provenKey(c, bob, key, { name: 'shared' }) })
  t.match(res.body.message, /is registered already/, res.body.message)
  t.notMatch(res.body.message, /alice/, 'the holder is not named')
})

t.test('tokens expire (WHARF_TOKEN_TTL), are listed and revoked one by one', async (t) => {
  const c = await startTestController(t, { WHARF_TOKEN_TTL: '1h' })
  const first = await registerAndLogin(c, 'alice')
  const second = (await c.call('POST', '/v1/auth/login', { body: { username: 'alice', password: 'correct horse' } })).body.token as string
  const bob = await registerAndLogin(c, 'bob')

  const list = await c.call('GET', '/v1/auth/tokens', { token: second })
  t.equal(list.status, 200)
  t.equal(list.body.tokens.length, 2, 'both of her tokens')
  const mine = list.body.tokens.find((x: { current: boolean }) => x.current)
  const other = list.body.tokens.find((x: { current: boolean }) => !x.current)
  t.match(mine, { id: /^[0-9a-f]{16}$/, expired: false })
  t.equal(Date.parse(mine.expiresAt) - Date.parse(mine.createdAt), 3_600_000, 'expires an hour after it was issued')
  t.notMatch(JSON.stringify(list.body), new RegExp(second), 'never the token itself')

  // Bob cannot revoke alice's token; a malformed id is refused; neither records anything.
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'DELETE', `/v1/auth/tokens/${other.id}`, { token: bob })
  await refused(t, c, 400, 'WHARF_INVALID', 'DELETE', '/v1/auth/tokens/..%2F..%2Fetc', { token: second })
  t.equal((await c.call('DELETE', `/v1/auth/tokens/${other.id}`, { token: second })).status, 204, 'alice revokes her first token')
  await refused(t, c, 401, 'WHARF_UNAUTHORIZED', 'GET', '/v1/auth/whoami', { token: first })
  t.equal((await c.call('GET', '/v1/auth/whoami', { token: second })).status, 200, 'the other one still works')

  // An hour later (the row aged as time would age it), the token is refused and listed as expired.
  await c.deps.pool.query("UPDATE rm_users.tokens SET created_at = created_at - interval '61 minutes' WHERE username = 'bob'")
  // The controller believes a token it checked lately for up to TOKEN_CACHE_MS (until its expiry, had
  // time really passed): the row aged behind its back, so it is told to look again.
  forgetTokens(c.deps.pool)
  const res = await refused(t, c, 401, 'WHARF_UNAUTHORIZED', 'GET', '/v1/auth/whoami', { token: bob })
  t.match(res.body.message, /expired/)
})

t.test('sign-ins are throttled per user and per address (WHARF_LOGIN_FAILURES)', async (t) => {
  const c = await startTestController(t, { WHARF_LOGIN_FAILURES: '3' })
  await registerAndLogin(c, 'alice')
  for (let i = 0; i < 3; i++) {
    const r = await c.call('POST', '/v1/auth/login', { body: { username: 'alice', password: `guess ${i}` } })
    t.equal(r.status, 401, `failure ${i + 1}: WHARF_UNAUTHORIZED`)
  }
  const before = await c.deps.store.lastSeq()
  const limited = await c.call('POST', '/v1/auth/login', { body: { username: 'alice', password: 'correct horse' } })
  t.equal(limited.status, 429, 'then even the right password is refused for a while')
  t.equal(limited.body.code, 'WHARF_RATE_LIMITED')
  t.match(limited.body.message, /too many failed sign-ins .* try again in \d+ s/)
  const other = await c.call('POST', '/v1/auth/login', { body: { username: 'nobody', password: 'x' } })
  t.equal(other.status, 429, 'the same address is throttled for any user name')
  t.equal(await c.deps.store.lastSeq(), before, 'no token was issued')
})

t.test('X-Request-Id: a plain id becomes the correlation id; anything else is replaced', async (t) => {
  const c = await startTestController(t)
  const token = await registerAndLogin(c, 'alice')
  const create = async (name: string, requestId: string) => {
    const res = await c.call('POST', '/v1/apps', { token, body: { name }, headers: { 'x-request-id': requestId } })
    t.equal(res.status, 201, `create ${name}`)
    // The events listing may show the append a moment after the 201: asked again for up to 10 s.
    for (let i = 0; ; i++) {
      const events = await c.call('GET', `/v1/events?app=${name}`, { token })
      const created = events.body.events?.find((e: { type: string }) => e.type === 'AppCreated')
      if (created || i >= 100) return created?.correlationId as string
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  t.equal(await create('plain', 'cli-0123.abc:def_9'), 'cli-0123.abc:def_9', 'a plain id is kept')
  for (const [name, bad] of [
    ['long', 'x'.repeat(129)],
    ['spaces', 'a b c'],
    ['markup', '<script>alert(1)</script>'],
    ['traversal', '../../etc/passwd'],
  ] as const) {
    const id = await create(name, bad)
    t.not(id, bad, `${name}: not kept`)
    t.match(id, /^[0-9a-f-]{36}$/, `${name}: a fresh id instead`)
  }
})
