/**
 * Backups and restores of the read models, through the API, against the real gateway `make test`
 * started: back up, change, restore, compare; bad and foreign backups refused with nothing changed;
 * retention; the schedule.
 */
import t, { type Test } from 'tap'
import { createLogger } from '../../core/log.js'
import { waitFor } from '../../projections/index.js'
import { refused, registerAndLogin, startTestController, type TestController } from '../controller/testing.js'
import { backupDeps, listBackups } from './index.js'
import { keysOf } from './manifest.js'
import { BackupSchedule } from './service.js'
import { populate, readModels } from './testing.js'

async function backUp(t: Test, c: TestController, token: string): Promise<{ id: string; seq: number; bytes: number }> {
  const res = await c.call('POST', '/v1/admin/backups', { token })
  t.equal(res.status, 201, `backup answers 201 (${JSON.stringify(res.body)})`)
  return res.body
}

async function bytesOf(c: TestController, key: string): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of await c.deps.objects!.backups.get(key)) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

async function types(c: TestController): Promise<string[]> {
  const out: string[] = []
  for await (const e of c.deps.store.readAll(1)) out.push(e.type)
  return out
}

t.test('back up, lose the read models, restore: every read model as it was, then caught up with what came after', async (t) => {
  const c = await startTestController(t)
  const { root, alice } = await populate(c)
  const before = await readModels(c.deps.pool)
  t.ok(before['rm_apps.apps']!.length === 2 && before['rm_config.config']!.length > 0, 'there is something to lose')

  const b = await backUp(t, c, root)
  t.match(b, {
    id: /^\d{8}-\d{6}-[0-9a-f]{4}$/,
    trigger: 'manual',
    actor: 'user:root',
    bytes: Number,
    sha256: /^[0-9a-f]{64}$/,
    tool: /^pg_dump \(PostgreSQL\) \d+/,
  })
  const listed = await c.call('GET', '/v1/admin/backups', { token: root })
  t.same(
    listed.body.map((x: { id: string }) => x.id),
    [b.id],
    'listed',
  )

  // Lose most of it: a dropped read model, emptied tables, a checkpoint row gone.
  await c.deps.pool.query('DROP SCHEMA rm_apps CASCADE')
  await c.deps.pool.query('DELETE FROM rm_config.config')
  await c.deps.pool.query("DELETE FROM wharf.projection_checkpoints WHERE name = 'users'")

  const r = await c.call('POST', `/v1/admin/backups/${b.id}/restore`, { token: root })
  t.equal(r.status, 200, `restore answers 200 (${JSON.stringify(r.body)})`)
  t.equal(r.body.backup.id, b.id)
  t.same(await readModels(c.deps.pool), before, 'every read model is as it was when backed up')
  t.same((await types(c)).slice(-2), ['BackupCompleted', 'BackupRestored'], 'both recorded on the event log')

  // Changes after a backup are not lost by restoring it: the read models catch up from the log.
  await c.call('POST', '/v1/apps/shop/config', { token: alice, body: { values: { AFTER: 'the backup' } } })
  await c.call('POST', '/v1/apps', { token: alice, body: { name: 'later' } })
  const now = await readModels(c.deps.pool)
  const r2 = await c.call('POST', `/v1/admin/backups/${b.id}/restore`, { token: root })
  t.equal(r2.status, 200)
  t.same(await readModels(c.deps.pool), now, 'restored to the backup, then caught up with the events after it')
  const apps = await c.call('GET', '/v1/apps', { token: root })
  t.same(apps.body.apps.map((a: { name: string }) => a.name).sort(), ['later', 'other', 'shop'], 'the API reads the restored read models')
})

t.test('a corrupt or foreign backup is refused with its code, and nothing changes', async (t) => {
  const c = await startTestController(t)
  const { root, alice } = await populate(c)
  const b = await backUp(t, c, root)
  const keys = keysOf(c.deps.cfg.namespace, b.id, 'dump')
  const objects = c.deps.objects!.backups
  const dump = await bytesOf(c, keys.data)
  const manifest = (await bytesOf(c, keys.manifest)).toString('utf8')
  await c.deps.pool.query('DELETE FROM rm_config.config')
  const damaged = await readModels(c.deps.pool)
  const unchanged = async (what: string) => t.same(await readModels(c.deps.pool), damaged, `${what}: the read models are untouched`)

  const flipped = Buffer.from(dump)
  flipped[Math.floor(flipped.length / 2)]! ^= 0xff
  await objects.put(keys.data, flipped)
  const r1 = await refused(t, c, 422, 'WHARF_BACKUP_CORRUPT', 'POST', `/v1/admin/backups/${b.id}/restore`, { token: root })
  t.match(r1.body.message, /does not match its checksum/)
  await unchanged('a flipped byte')

  await objects.put(keys.data, dump.subarray(0, dump.length - 100))
  t.match(
    (await refused(t, c, 422, 'WHARF_BACKUP_CORRUPT', 'POST', `/v1/admin/backups/${b.id}/restore`, { token: root })).body.message,
    /has \d+ bytes, its manifest says/,
  )
  await unchanged('a truncated dump')

  // A dump that matches its (rewritten) manifest but is not a pg_dump archive at all.
  const junk = Buffer.from('not an archive at all\n'.repeat(50))
  const { createHash } = await import('node:crypto')
  const forged = JSON.parse(manifest)
  forged.dump = { ...forged.dump, bytes: junk.length, sha256: createHash('sha256').update(junk).digest('hex') }
  await objects.put(keys.data, junk)
  await objects.put(keys.manifest, Buffer.from(JSON.stringify(forged)))
  t.match(
    (await refused(t, c, 422, 'WHARF_BACKUP_CORRUPT', 'POST', `/v1/admin/backups/${b.id}/restore`, { token: root })).body.message,
    /not a readable pg_dump archive/,
  )
  await unchanged('a forged archive')

  await objects.put(keys.data, dump)
  await objects.put(keys.manifest, Buffer.from('{"format": "something-else/9"}'))
  t.match(
    (await refused(t, c, 422, 'WHARF_BACKUP_CORRUPT', 'POST', `/v1/admin/backups/${b.id}/restore`, { token: root })).body.message,
    /not a wharf-backup\/1 manifest/,
  )
  await objects.put(keys.manifest, Buffer.from('{ not json'))
  await refused(t, c, 422, 'WHARF_BACKUP_CORRUPT', 'POST', `/v1/admin/backups/${b.id}/restore`, { token: root })
  t.same((await c.call('GET', '/v1/admin/backups', { token: root })).body, [], 'a backup whose manifest fails its checks is not listed')
  await unchanged('a bad manifest')

  // Another platform's backup, placed under this one's keys.
  const other = await startTestController(t)
  const otherRoot = await registerAndLogin(other, 'someone')
  const ob = await backUp(t, other, otherRoot)
  const ok = keysOf(other.deps.cfg.namespace, ob.id, 'dump')
  const mine = keysOf(c.deps.cfg.namespace, ob.id, 'dump')
  await objects.put(mine.data, await bytesOf(other, ok.data))
  await objects.put(mine.manifest, await bytesOf(other, ok.manifest))
  const r5 = await refused(t, c, 422, 'WHARF_BACKUP_FOREIGN', 'POST', `/v1/admin/backups/${ob.id}/restore`, { token: root })
  t.match(r5.body.message, /is of another platform: its event log starts with event/)
  await unchanged('a foreign backup')

  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'POST', '/v1/admin/backups/20200101-000000-abcd/restore', { token: root })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/admin/backups/..%2Fx/restore', { token: root })
  await refused(t, c, 403, 'WHARF_FORBIDDEN', 'POST', `/v1/admin/backups/${b.id}/restore`, { token: alice })
  await refused(t, c, 403, 'WHARF_FORBIDDEN', 'POST', '/v1/admin/backups', { token: alice })
  await refused(t, c, 403, 'WHARF_FORBIDDEN', 'GET', '/v1/admin/backups', { token: alice })
  await refused(t, c, 401, 'WHARF_UNAUTHORIZED', 'GET', '/v1/admin/backups')

  // The untouched original still restores.
  await objects.put(keys.manifest, Buffer.from(manifest))
  t.equal((await c.call('POST', `/v1/admin/backups/${b.id}/restore`, { token: root })).status, 200, 'the good backup restores')
})

t.test('retention keeps the newest WHARF_BACKUP_KEEP; the schedule backs up when the newest is old enough', async (t) => {
  const c = await startTestController(t, { WHARF_BACKUP_KEEP: '2' })
  const root = await registerAndLogin(c, 'root')
  const ids: string[] = []
  for (let i = 0; i < 3; i++) ids.push((await backUp(t, c, root)).id)
  const listed = (await c.call('GET', '/v1/admin/backups', { token: root })).body.map((b: { id: string }) => b.id)
  t.same(listed, [ids[2], ids[1]], 'the two newest, newest first')
  t.equal(await c.deps.objects!.backups.head(keysOf(c.deps.cfg.namespace, ids[0]!, 'dump').data), undefined, 'the oldest dump is gone')
  t.ok((await types(c)).includes('BackupDeleted'), 'its deletion is recorded')

  const deps = { ...backupDeps({ ...c.deps }), keep: 10 }
  const schedule = new BackupSchedule({ deps, intervalMs: 60 * 60_000, log: createLogger({ level: 'silent' }) })
  await schedule.tick()
  t.equal((await listBackups(deps)).length, 2, 'the newest backup is recent: none due')
  const hourly = new BackupSchedule({ deps, intervalMs: 1, log: createLogger({ level: 'silent' }) })
  await hourly.tick()
  const after = await listBackups(deps)
  t.equal(after.length, 3, 'due: one taken')
  t.equal(after[0]!.trigger, 'schedule')
  t.equal(after[0]!.actor, 'system:backups')
})

t.test('a backup of an empty platform is refused and records nothing (the log stays empty for an import)', async (t) => {
  const c = await startTestController(t)
  const deps = backupDeps({ ...c.deps })
  const schedule = new BackupSchedule({ deps, intervalMs: 1, log: createLogger({ level: 'silent' }) })
  await schedule.tick()
  t.equal(await c.deps.store.lastSeq(), 0, 'the schedule wrote nothing')
  t.same(await listBackups(deps), [])
  await waitFor(c.deps.pool, 0)
})

t.test('one backup or restore at a time: another one meanwhile is refused with WHARF_CONFLICT and records nothing', async (t) => {
  const c = await startTestController(t)
  const root = await registerAndLogin(c, 'root')
  const b = await backUp(t, c, root)
  // Another process in the middle of a backup holds the database's backup lock ("wbkp").
  const other = await c.deps.pool.connect()
  t.teardown(() => other.release())
  await other.query('SELECT pg_advisory_lock($1, 0)', [0x77626b70])
  t.match((await refused(t, c, 409, 'WHARF_CONFLICT', 'POST', '/v1/admin/backups', { token: root })).body.message, /a backup or a restore is running already/)
  await refused(t, c, 409, 'WHARF_CONFLICT', 'POST', `/v1/admin/backups/${b.id}/restore`, { token: root })
  await other.query('SELECT pg_advisory_unlock($1, 0)', [0x77626b70])
  t.equal((await c.call('POST', '/v1/admin/backups', { token: root })).status, 201, 'once it is done, the next one runs')
})
