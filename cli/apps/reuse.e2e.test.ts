/**
 * A reused app name is a new app: after alice destroys `shop` and bob creates `shop`, nothing of
 * alice's app reaches bob through `events`, `logs`, `config:list`, `releases:list` or `builds:list`;
 * and config values never leave through the events API, not even to alice.
 */
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { registerAndLogin, startTestController } from '../../services/controller/testing.js'
import { startTestLogger } from '../../services/logger/testing.js'
import { cli, ok, requireBuilt } from '../testing.js'

function send(port: number, app: string, token: string, lines: string[]): Promise<void> {
  const now = new Date().toISOString()
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => s.end(lines.map((l) => `<14>1 ${now} h ${app} web.1 - - ${token} ${l}\n`).join(''), () => resolve()))
    s.on('error', reject)
  })
}

interface Ev {
  seq: number
  type: string
  data: Record<string, unknown>
}

t.test('a name reused after apps:destroy shows nothing of the earlier app; config values never leave in events', async (t) => {
  requireBuilt()
  const c = await startTestController(t)
  const alice = cli(t, c.url, await registerAndLogin(c, 'alice'))
  const bob = cli(t, c.url, await registerAndLogin(c, 'bob'))
  const server = await startTestLogger(t, c)
  const secret = 'postgres://shop:hunter2-s3cret@db.internal/shop'

  await ok(t, alice.run(['apps:create', 'shop', '--no-remote']), 'alice: apps:create')
  await ok(t, alice.run(['config:set', `DATABASE_URL=${secret}`, 'ALICE_ONLY=1', '-a', 'shop']), 'alice: config:set')
  const aliceToken = (await ok(t, alice.run(['logs:token', '-a', 'shop']), 'alice: logs:token')).stdout.trim()
  await send(server.syslog!.port, 'shop', aliceToken, ['alice private line'])
  for (const end = Date.now() + 10_000; ; await sleep(100)) {
    if ((await ok(t, alice.run(['logs', '-a', 'shop']), 'alice: logs')).stdout.includes('alice private line')) break
    if (Date.now() > end) throw new Error('the line never reached the logger')
  }
  const aliceEvents = (await ok(t, alice.run(['events', '-a', 'shop', '--json']), 'alice: events')).stdout
  t.notMatch(aliceEvents, /hunter2/, 'a config value is not in the events, not even for its owner')
  const set = (JSON.parse(aliceEvents).events as Ev[]).find((e) => e.type === 'ConfigSet')!
  t.same(set.data, { app: 'shop', values: { DATABASE_URL: '[redacted]', ALICE_ONLY: '[redacted]' } }, 'keys shown, values not')
  t.match((await ok(t, alice.run(['config:list', '-a', 'shop']), 'alice: config:list')).stdout, /hunter2-s3cret/, 'config:list still shows values to the app')

  await ok(t, alice.run(['apps:destroy', '--confirm', 'shop']), 'alice: apps:destroy')
  await ok(t, bob.run(['apps:create', 'shop', '--no-remote']), 'bob: apps:create, the same name')

  const events = JSON.parse((await ok(t, bob.run(['events', '-a', 'shop', '--json']), 'bob: events')).stdout).events as Ev[]
  t.equal(events[0]?.type, 'AppCreated', "bob's app begins with his AppCreated")
  t.same(events[0]?.data, { app: 'shop', owner: 'bob' })
  t.notOk(
    events.some((e) => e.type === 'ConfigSet' || e.type === 'AppDestroyed' || (e.data.owner !== undefined && e.data.owner !== 'bob')),
    "none of alice's events",
  )
  const all = (await ok(t, bob.run(['events', '--json', '-n', '1000']), 'bob: all his events')).stdout
  t.notMatch(all, /ALICE_ONLY|alice/, 'not through the unfiltered events either')
  const logs = (await ok(t, bob.run(['logs', '-a', 'shop']), 'bob: logs')).stdout
  t.notMatch(logs, /alice/, "no line of alice's app, platform or container")
  t.match(logs, /app created by bob/)
  t.notMatch((await ok(t, bob.run(['logs', '-a', 'shop', '--since', '1h']), 'bob: logs --since')).stdout, /alice/, 'nor in the history')
  t.notMatch((await ok(t, bob.run(['config:list', '-a', 'shop', '--json']), 'bob: config:list')).stdout, /ALICE_ONLY|DATABASE_URL/)
  t.notMatch((await ok(t, bob.run(['releases:list', '-a', 'shop']), 'bob: releases')).stdout, /alice/)
})
