/**
 * Finding 3 of the isolation issue: silent pushes froze the platform (each held a pool connection,
 * the push lock polled with one, the SSH server had no idle timeout). Here 25 silent
 * `git-receive-pack` sessions of bob are open while alice uses the API; then the bounds: pushes per
 * user and per builder, and the idle timeout.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { freePort } from '../../infra/test-env.js'
import { makeSshKey, sshCommand, type SshKey } from '../../test/git.js'
import { until } from '../../test/harness.js'
import { provenKey, registerAndLogin, startTestController } from '../controller/testing.js'
import { startTestBuilder } from './testing.js'

interface Session {
  child: ChildProcess
  out: string
  err: string
  code: number | null | undefined
}

/** `ssh git@127.0.0.1 -p <port> "git-receive-pack '<app>.git'"` that sends nothing (stdin stays open). */
function silentPush(port: number, key: SshKey, app: string): Session {
  const args = [...sshCommand(key.path).split(' ').slice(1), '-p', String(port), 'git@127.0.0.1', `git-receive-pack '${app}.git'`]
  const child = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] })
  const s: Session = { child, out: '', err: '', code: undefined }
  child.stdout!.on('data', (d: Buffer) => (s.out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (s.err += d.toString()))
  child.on('close', (code) => (s.code = code))
  return s
}

// A few hundred requests: well under a minute on an idle machine, more when the 2 cores are shared.
t.setTimeout(300_000)

t.test('25 silent pushes: the API answers at once, waiting pushes hold no connection, bounds refuse with WHARF_BUSY, idle ones are closed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-pushes-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  const c = await startTestController(t, {
    WHARF_HOME: join(dir, 'home'),
    WHARF_BUILDER_PORT: String(port),
    WHARF_DOCKER_HOST: process.env.WHARF_TEST_DOCKER_HOST,
    WHARF_PUSH_IDLE_TIMEOUT: '15',
    WHARF_PUSHES_PER_USER: '25',
    WHARF_PUSHES_MAX: '26',
  })
  await startTestBuilder(t, c)
  const keys: Record<string, SshKey> = {}
  const tokens: Record<string, string> = {}
  for (const name of ['alice', 'bob']) {
    tokens[name] = await registerAndLogin(c, name)
    keys[name] = makeSshKey(join(dir, name))
    const res = await c.call('POST', '/v1/keys', { token: tokens[name], body: await provenKey(c, tokens[name]!, keys[name]!) })
    t.equal(res.status, 201, `${name}'s key`)
  }
  for (const [user, app] of [
    ['alice', 'aliceapp'],
    ['bob', 'bobapp'],
  ] as const)
    t.equal((await c.call('POST', '/v1/apps', { token: tokens[user], body: { name: app } })).status, 201, `${user} creates ${app}`)

  const before = await c.deps.store.lastSeq()
  const sessions: Session[] = []
  t.teardown(() => {
    for (const s of sessions) if (s.code === undefined) s.child.kill()
  })
  for (let i = 0; i < 25; i++) sessions.push(silentPush(port, keys.bob!, 'bobapp'))
  // One holds bobapp's lock (git's ref advertisement on stdout), 24 wait for it and are told so.
  await until(
    '25 sessions under way',
    async () =>
      sessions.filter((s) => s.out.length > 0).length === 1 && sessions.filter((s) => /another push to bobapp is running; waiting/.test(s.err)).length === 24,
    30_000,
  )

  const t0 = Date.now()
  const info = await c.call('GET', '/v1/apps/aliceapp', { token: tokens.alice })
  const ms = Date.now() - t0
  t.equal(info.status, 200, "alice's apps:info answers")
  t.ok(ms < 5000, `... at once: ${ms} ms (was 116 s)`)
  t.equal((await c.call('GET', '/v1/auth/whoami', { token: tokens.bob })).status, 200, "bob's token still checks")

  // The builder's connections come from its own bounded pool (26 + 4), none from the API's; one advisory lock is held.
  const db = new pg.Client({ connectionString: c.deps.cfg.databaseUrl })
  await db.connect()
  t.teardown(() => db.end())
  const dbName = new URL(c.deps.cfg.databaseUrl!).pathname.slice(1)
  const held = await db.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'wharf-builder'", [dbName])
  t.ok(Number(held.rows[0]!.n) <= 30, `the builder has ${held.rows[0]!.n} connections, within its pool of 30`)
  const locks = await db.query<{ n: string }>(
    "SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND a.datname = $1 AND a.application_name = 'wharf-builder'",
    [dbName],
  )
  t.equal(Number(locks.rows[0]!.n), 1, 'one push lock held; the 24 waiters hold none')
  t.equal(c.deps.pool.waitingCount, 0, "nobody waits for the API's pool")

  // The 26th push of bob is over his bound; alice's push is the builder's 26th; her second is over the builder's bound.
  const bobMore = silentPush(port, keys.bob!, 'bobapp')
  await until('bob refused', async () => bobMore.code !== undefined, 15_000)
  t.equal(bobMore.code, 1, "bob's 26th push exits 1")
  t.match(bobMore.err, /wharf: bob has 25 pushes running already.*WHARF_PUSHES_PER_USER=25.*\(WHARF_BUSY\)/, `... ${bobMore.err.trim()}`)
  const alice1 = silentPush(port, keys.alice!, 'aliceapp')
  sessions.push(alice1)
  await until('alice push under way', async () => alice1.out.length > 0, 15_000)
  const alice2 = silentPush(port, keys.alice!, 'aliceapp')
  await until('alice refused', async () => alice2.code !== undefined, 15_000)
  t.equal(alice2.code, 1)
  t.match(alice2.err, /wharf: the builder runs 26 pushes already.*WHARF_PUSHES_MAX=26.*\(WHARF_BUSY\)/, `... ${alice2.err.trim()}`)

  // The lock holder sent nothing for 15 s: closed, with the reason; the next waiter gets the lock.
  const holder = sessions.find((s) => s.out.length > 0 && s !== alice1)!
  await until('the silent holder closed', async () => holder.code !== undefined, 40_000)
  t.equal(holder.code, 1, 'the idle push exits 1')
  t.match(holder.err, /nothing received from the client for 15 s; the connection is closed \(WHARF_PUSH_IDLE_TIMEOUT=15\) \(WHARF_TIMEOUT\)/, holder.err.trim())
  await until('a waiter took the lock', async () => sessions.filter((s) => s !== alice1 && s.out.length > 0).length === 2, 10_000)

  for (const s of sessions) s.child.kill()
  await until('all sessions gone', async () => sessions.every((s) => s.code !== undefined), 10_000)
  t.equal(await c.deps.store.lastSeq(), before, 'no silent or refused push recorded anything')
})
