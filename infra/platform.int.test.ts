import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { loadConfig, type WharfConfig } from '../core/config.js'
import { JetStreamEventStore } from '../events/jetstream.js'
import { wharfCatalogue } from '../domain/index.js'
import { nats } from './parts/nats.js'
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

  const store = await JetStreamEventStore.connect({ servers: cfg.natsUrl, catalogue: wharfCatalogue() })
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
  const store2 = await JetStreamEventStore.connect({ servers: cfg.natsUrl, catalogue: wharfCatalogue() })
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
