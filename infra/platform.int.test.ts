import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { loadConfig, type WharfConfig } from '../core/config.js'
import { JetStreamEventStore } from '../events/jetstream.js'
import { wharfCatalogue } from '../domain/index.js'
import { nats, natsClientUrl } from './parts/nats.js'
import { postgres, databaseUrl } from './parts/postgres.js'
import { contextFor, down, up } from './platform.js'
import { isAlive, readPid } from './proc.js'
import { freePort } from './test-env.js'

/**
 * `make down` then `make up` keeps every event and every row: a platform of its own (NATS and
 * Postgres under a fresh WHARF_HOME, on free ports), stopped and started again.
 */
t.test('down then up keeps events and read models; a second up changes nothing', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wharf-restart-'))
  chmodSync(home, 0o755)
  const base = loadConfig({ WHARF_HOME: home })
  const cfg: WharfConfig = {
    ...base,
    ports: { ...base.ports, nats: await freePort(), natsMonitor: await freePort(), postgres: await freePort(), controller: await freePort() },
  }
  cfg.natsUrl = `nats://127.0.0.1:${cfg.ports.nats}`
  const ctx = contextFor(cfg)
  const parts = { real: [nats, postgres], services: false }
  t.teardown(async () => {
    await down(ctx, [nats, postgres])
    rmSync(home, { recursive: true, force: true })
  })

  const first = await up(ctx, parts)
  t.equal(first.changed, true, 'first up starts both')
  const again = await up(ctx, parts)
  t.equal(again.changed, false, 'second up changes nothing')
  t.same(
    again.results.map((r) => r.result),
    ['running', 'running'],
  )

  // Issue 14, finding 8: NATS accepts only the platform's services. Another user of the host, without
  // the password (or with a wrong one), is refused and reaches no event.
  const url = natsClientUrl(cfg, ctx.paths)
  const password = readFileSync(ctx.paths.nats.password, 'utf8').trim()
  t.ok(url.includes(`:${encodeURIComponent(password)}@`), 'the services are given the password in their URL')
  t.equal(statSync(ctx.paths.nats.password).mode & 0o777, 0o600, 'the password file is for its owner only')
  t.equal(statSync(ctx.paths.nats.conf).mode & 0o777, 0o600, "... and so is the server's config file holding it")
  const cmdline = readFileSync(`/proc/${readPid(ctx.paths.nats.pid)}/cmdline`, 'utf8')
  t.notOk(cmdline.includes(password), "the password is not on nats-server's command line (readable by every user)")
  for (const [who, servers] of [
    ['no password', `nats://127.0.0.1:${cfg.ports.nats}`],
    ['a wrong password', `nats://wharf:wrong@127.0.0.1:${cfg.ports.nats}`],
  ] as const) {
    const refused = await JetStreamEventStore.connect({ servers, catalogue: wharfCatalogue() }).then(
      async (s) => {
        await s.close()
        return undefined
      },
      (err: Error & { code?: string }) => err,
    )
    t.match(refused, { code: 'WHARF_UNAVAILABLE', message: /Authorization Violation/i }, `${who}: refused`)
    t.notOk(refused?.message.includes('wrong'), `${who}: the message does not repeat the password`)
  }

  const store = await JetStreamEventStore.connect({ servers: url, catalogue: wharfCatalogue() })
  const appended = await store.append(
    'app.keepme',
    [
      { type: 'AppCreated', data: { app: 'keepme', owner: 'alice' } },
      { type: 'ConfigSet', data: { app: 'keepme', values: { A: '1' } } },
    ],
    {
      expectedVersion: 0,
      actor: 'user:alice',
    },
  )
  await store.close()
  const db = new pg.Client({ connectionString: databaseUrl(cfg, ctx.paths) })
  await db.connect()
  await db.query('create table kept (v text)')
  await db.query("insert into kept values ('still here')")
  await db.end()

  const natsPid = readPid(ctx.paths.nats.pid)
  const pgPid = readPid(ctx.paths.postgres.pid)
  const stopped = await down(ctx, [nats, postgres])
  t.same(
    stopped.map((s) => s.result),
    ['stopped', 'stopped'],
  )
  t.notOk(isAlive(natsPid), 'nats-server exited')
  t.notOk(isAlive(pgPid), 'postgres exited')

  const second = await up(ctx, parts)
  t.equal(second.changed, true)
  const store2 = await JetStreamEventStore.connect({ servers: natsClientUrl(cfg, ctx.paths), catalogue: wharfCatalogue() })
  t.teardown(() => store2.close())
  const { version, events } = await store2.readStream('app.keepme')
  t.equal(version, appended.lastSeq, 'same stream version after the restart')
  t.same(
    events.map((e) => e.type),
    ['AppCreated', 'ConfigSet'],
  )
  const db2 = new pg.Client({ connectionString: databaseUrl(cfg, ctx.paths) })
  await db2.connect()
  t.teardown(() => db2.end())
  t.same((await db2.query('select v from kept')).rows, [{ v: 'still here' }])
})
