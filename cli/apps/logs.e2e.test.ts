/**
 * `wharf logs`, `logs -f` and `drains:*` as a user runs them (`node bin/wharf`, compiled first),
 * against a controller and a logger of the test's own; lines come in through the syslog receiver.
 */
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { registerAndLogin, startTestController } from '../../services/controller/testing.js'
import { startTestLogger } from '../../services/logger/testing.js'
import { cli, fails, ok, requireBuilt } from '../testing.js'
import { sinceTime } from './logs.js'

function send(port: number, token: string, lines: string[]): Promise<void> {
  const now = new Date().toISOString()
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => s.end(lines.map((l) => `<14>1 ${now} h shop web.1 - - ${token} ${l}\n`).join(''), () => resolve()))
    s.on('error', reject)
  })
}

t.test('logs, logs -n, --json, logs -f and drains through bin/wharf', async (t) => {
  requireBuilt()
  // The drains below point at this machine: allowed for the test (WHARF_OUTBOUND_ALLOW), refused otherwise.
  const c = await startTestController(t, { WHARF_OUTBOUND_ALLOW: '127.0.0.1' })
  const token = await registerAndLogin(c, 'alice')
  const alice = cli(t, c.url, token)
  const bob = cli(t, c.url, await registerAndLogin(c, 'bob'))
  const server = await startTestLogger(t, c)
  await ok(t, alice.run(['apps:create', 'shop', '--no-remote']), 'apps:create')
  const logToken = (await ok(t, alice.run(['logs:token', '-a', 'shop']), 'logs:token')).stdout.trim()
  t.match(logToken, /^t\.[0-9a-f]{32}$/, 'logs:token prints the token')
  t.same(JSON.parse((await ok(t, alice.run(['logs:token', '-a', 'shop', '--json']), 'logs:token --json')).stdout), { app: 'shop', token: logToken })
  await fails(t, bob.run(['logs:token', '-a', 'shop']), 'WHARF_NOT_FOUND', "another user's app")
  await send(server.syslog!.port, logToken, ['one', 'two', 'three'])
  let out = ''
  for (const end = Date.now() + 10_000; !out.includes('three'); ) {
    out = (await ok(t, alice.run(['logs', '-a', 'shop']), 'logs')).stdout
    if (Date.now() > end) throw new Error(`no lines: ${out}`)
    await sleep(100)
  }
  t.match(out, /^\S+ \[wharf\] app created by alice\n/, 'the platform line first')
  t.match(out, /\n\S+Z \[web\.1\] one\n\S+Z \[web\.1\] two\n\S+Z \[web\.1\] three\n$/)
  t.match((await ok(t, alice.run(['logs', '-a', 'shop', '-n', '1']), 'logs -n 1')).stdout, /^\S+ \[web\.1\] three\n$/)
  const json = JSON.parse((await ok(t, alice.run(['logs', '-a', 'shop', '--json', '--type', 'web']), 'logs --json')).stdout)
  t.same(
    json.lines.map((l: { text: string }) => l.text),
    ['one', 'two', 'three'],
  )
  t.match(
    (await ok(t, alice.run(['logs', '-a', 'shop', '--since', '1h', '-n', '3']), 'logs --since')).stdout,
    /^\S+ \[wharf\] app created by alice\n\S+ \[wharf\] release v1 created by alice: alice created shop\n\S+ \[web\.1\] one\n$/,
    'the first 3 since an hour ago',
  )

  // logs -f: the recent lines, then a new one within moments.
  const child = spawn(new URL('../../bin/wharf', import.meta.url).pathname, ['logs', '-f', '-a', 'shop', '-n', '1'], {
    env: { PATH: process.env.PATH, HOME: alice.home, WHARF_URL: c.url, WHARF_TOKEN: token },
  })
  t.teardown(() => void child.kill())
  let followed = ''
  child.stdout.on('data', (d: Buffer) => (followed += d.toString()))
  const waitFor = async (what: RegExp) => {
    for (const end = Date.now() + 10_000; !what.test(followed); await sleep(50)) if (Date.now() > end) throw new Error(`logs -f printed: ${followed}`)
  }
  await waitFor(/\[web\.1\] three\n/)
  await send(server.syslog!.port, logToken, ['live line'])
  await waitFor(/\[web\.1\] live line\n/)
  t.match(followed, /^\S+ \[web\.1\] three\n\S+ \[web\.1\] live line\n$/, 'logs -f: the newest line, then the new one')
  child.kill()

  // drains
  t.match(
    (await ok(t, alice.run(['drains:add', 'syslog://127.0.0.1:9', '-a', 'shop']), 'drains:add')).stdout,
    /^Added drain d\.[0-9a-f]{12} \(syslog:\/\/127\.0\.0\.1:9\)\.\n$/,
  )
  t.match(
    (await ok(t, alice.run(['drains:list', '-a', 'shop']), 'drains:list')).stdout,
    /^ID\s+URL\s+CREATED\nd\.[0-9a-f]{12}\s+syslog:\/\/127\.0\.0\.1:9\s+\S+\n$/,
  )
  await fails(t, alice.run(['drains:add', 'http://example.com/', '-a', 'shop']), 'WHARF_INVALID', 'a drain that is not syslog or https')
  await fails(t, alice.run(['drains:add', 'syslog://127.0.0.1:9', '-a', 'shop']), 'WHARF_EXISTS', 'the same drain twice')
  await ok(t, alice.run(['drains:remove', 'syslog://127.0.0.1:9', '-a', 'shop']), 'drains:remove by URL')
  t.equal((await ok(t, alice.run(['drains:list', '-a', 'shop']), 'drains:list')).stdout, 'No drains.\n')
  await fails(t, alice.run(['drains:remove', 'd.000000000000', '-a', 'shop']), 'WHARF_NOT_FOUND', 'no such drain')

  await fails(t, bob.run(['logs', '-a', 'shop']), 'WHARF_NOT_FOUND', "someone else's app")
  await fails(t, bob.run(['logs', '-f', '-a', 'shop']), 'WHARF_NOT_FOUND', "logs -f of someone else's app")
  await fails(t, alice.run(['logs', '-a', 'shop', '-n', '0']), 'WHARF_INVALID', '-n 0')
  await fails(t, alice.run(['logs', '-a', 'shop', '--since', 'last tuesday']), 'WHARF_INVALID', 'a --since that is no time')
  await fails(t, alice.run(['logs']), 'WHARF_INVALID', 'no app outside a checkout')
})

t.test('--since: ages and times', async (t) => {
  const now = Date.parse('2024-05-01T12:00:00Z')
  t.equal(sinceTime('30m', now), '2024-05-01T11:30:00.000Z')
  t.equal(sinceTime('2d', now), '2024-04-29T12:00:00.000Z')
  t.equal(sinceTime('2024-05-01 10:00:00Z', now), '2024-05-01T10:00:00.000Z')
  t.throws(() => sinceTime('soon', now), { code: 'WHARF_INVALID' })
})
