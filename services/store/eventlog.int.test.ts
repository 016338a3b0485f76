/**
 * The event log to the store and back: an export imported into an empty platform builds the same
 * read models; a corrupt export or a platform that is not empty is refused with nothing appended.
 */
import t from 'tap'
import { waitFor } from '../../projections/index.js'
import { refused, registerAndLogin, startTestController, type TestController } from '../controller/testing.js'
import { keysOf } from './manifest.js'
import { importTarget, populate, readModels } from './testing.js'

async function exportLog(c: TestController, token: string): Promise<{ id: string; events: number; namespace: string }> {
  const res = await c.call('POST', '/v1/admin/exports', { token })
  if (res.status !== 201) throw new Error(`export: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}

async function text(c: TestController, key: string): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of await c.deps.objects!.events.get(key)) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

t.test('export, then import into an empty platform: identical read models, same ids and positions', async (t) => {
  const a = await startTestController(t)
  const { root, alice } = await populate(a)
  const exp = await exportLog(a, root)
  // The export ends at the commit before EventsExported; a commit (one append) may hold several events.
  const upTo = (await a.deps.store.lastSeq()) - 1
  let count = 0
  for await (const e of a.deps.store.readAll(1)) if (e.seq <= upTo) count++
  t.ok(count > upTo, `the log holds commits of several events (${count} events in ${upTo} commits)`)
  t.equal(exp.events, count, 'every event up to the export (EventsExported comes after it)')
  t.equal(exp.namespace, a.deps.cfg.namespace)
  const listed = await a.call('GET', '/v1/admin/exports', { token: root })
  t.same(
    listed.body.map((e: { id: string }) => e.id),
    [exp.id],
  )
  const lines = (await text(a, keysOf(exp.namespace, exp.id, 'ndjson').data)).trimEnd().split('\n')
  t.equal(lines.length, exp.events, 'one line per event')
  t.match(JSON.parse(lines[0]!), { seq: 1, type: 'AdminGranted', stream: 'platform.accounts', actor: 'user:root', id: String, data: { username: 'root' } })

  const { c: b, importToken } = await importTarget(t, exp.namespace)
  t.equal(await b.deps.store.lastSeq(), 0, 'b is a new platform')
  await refused(t, b, 401, 'WHARF_UNAUTHORIZED', 'POST', `/v1/admin/exports/${exp.id}/import`, { body: { namespace: exp.namespace } })
  await refused(t, b, 401, 'WHARF_UNAUTHORIZED', 'POST', `/v1/admin/exports/${exp.id}/import`, {
    body: { namespace: exp.namespace, importToken: `wit_${'A'.repeat(32)}` },
  })
  const imp = await b.call('POST', `/v1/admin/exports/${exp.id}/import`, { body: { namespace: exp.namespace, importToken } })
  t.equal(imp.status, 200, `import with the one-time token on an empty platform (${JSON.stringify(imp.body)})`)
  t.match(imp.body, { imported: exp.events, seq: upTo })
  await waitFor(b.deps.pool, upTo, { timeoutMs: 20_000 })

  const ea: unknown[] = []
  for await (const e of a.deps.store.readAll(1)) if (e.seq <= upTo) ea.push(e)
  const eb: unknown[] = []
  for await (const e of b.deps.store.readAll(1)) eb.push(e)
  t.same(eb, ea, 'the same events: ids, positions, times, actors, correlation')
  t.same(await readModels(b.deps.pool), await readModels(a.deps.pool), 'every read model is identical')
  // The users came along: alice's token from platform a signs in on b.
  t.equal((await b.call('GET', '/v1/apps/shop', { token: alice })).status, 200, "alice's token works on the new platform")

  // Again: b holds that whole export already, nothing more to append; the token served once.
  await refused(t, b, 401, 'WHARF_UNAUTHORIZED', 'POST', `/v1/admin/exports/${exp.id}/import`, { body: { namespace: exp.namespace, importToken } })
  await refused(t, b, 403, 'WHARF_FORBIDDEN', 'POST', `/v1/admin/exports/${exp.id}/import`, { token: alice, body: { namespace: exp.namespace } })
  const again = await b.call('POST', `/v1/admin/exports/${exp.id}/import`, { token: root, body: { namespace: exp.namespace } })
  t.match(again, { status: 200, body: { imported: 0 } }, 'an import that is already complete appends nothing')

  // A platform with other events refuses it.
  const { c } = await importTarget(t, exp.namespace)
  const cRoot = await registerAndLogin(c, 'carol')
  const r = await refused(t, c, 409, 'WHARF_CONFLICT', 'POST', `/v1/admin/exports/${exp.id}/import`, { token: cRoot, body: { namespace: exp.namespace } })
  t.match(r.body.message, /is not empty/)
  await refused(t, c, 403, 'WHARF_FORBIDDEN', 'POST', '/v1/admin/exports', { token: await registerAndLogin(c, 'dan') })
})

t.test('a corrupt export is refused before anything is appended', async (t) => {
  const a = await startTestController(t)
  const { root } = await populate(a)
  const exp = await exportLog(a, root)
  const keys = keysOf(exp.namespace, exp.id, 'ndjson')
  const original = await text(a, keys.data)
  const manifest = await text(a, keys.manifest)
  const objects = a.deps.objects!.events
  const { c: b, importToken } = await importTarget(t, exp.namespace)
  const refuse = async (why: RegExp) => {
    const r = await refused(t, b, 422, 'WHARF_BACKUP_CORRUPT', 'POST', `/v1/admin/exports/${exp.id}/import`, {
      body: { namespace: exp.namespace, importToken },
    })
    t.match(r.body.message, why)
    t.equal(await b.deps.store.lastSeq(), 0, '... and b is still empty')
  }

  // The last event altered: caught by the checksum only after every line has been read.
  const lines = original.trimEnd().split('\n')
  const tampered = JSON.parse(lines.at(-1)!)
  tampered.actor = 'user:mallory'
  await objects.put(keys.data, Buffer.from(`${[...lines.slice(0, -1), JSON.stringify(tampered)].join('\n')}\n`))
  await refuse(/does not match its checksum/)

  const seq3 = lines.find((l) => JSON.parse(l).seq === 3)
  await objects.put(keys.data, Buffer.from(`${[lines[0], seq3].join('\n')}\n`))
  await refuse(/line 2 holds event seq 3/)

  // A commit cut short (its first event without the rest), or its events out of order, is refused.
  const inCommit = lines.findIndex((l) => JSON.parse(l).commitSize > 1)
  t.ok(inCommit > 0, 'the export holds a commit of several events')
  await objects.put(keys.data, Buffer.from(`${lines.slice(0, inCommit + 1).join('\n')}\n`))
  await refuse(/cut short/)
  const swapped = [...lines]
  ;[swapped[inCommit], swapped[inCommit + 1]] = [swapped[inCommit + 1]!, swapped[inCommit]!]
  await objects.put(keys.data, Buffer.from(`${swapped.join('\n')}\n`))
  await refuse(/out of place in the commit/)

  const bad = JSON.parse(lines[1]!)
  bad.data = { nonsense: true }
  await objects.put(keys.data, Buffer.from(`${[lines[0], JSON.stringify(bad), ...lines.slice(2)].join('\n')}\n`))
  await refuse(/event 2 is refused by this Wharf's catalogue/)

  await objects.put(keys.data, Buffer.from(original))
  await objects.put(keys.manifest, Buffer.from(manifest.replace('wharf-events/1', 'wharf-events/7')))
  await refuse(/not a wharf-events\/1 manifest/)

  await refused(t, b, 404, 'WHARF_NOT_FOUND', 'POST', '/v1/admin/exports/20200101-000000-abcd/import', { body: { namespace: exp.namespace, importToken } })
  // Another platform's namespace that WHARF_IMPORT_FROM does not name.
  const other = await startTestController(t, { WHARF_HOME: b.deps.cfg.home })
  await refused(t, other, 403, 'WHARF_FORBIDDEN', 'POST', `/v1/admin/exports/${exp.id}/import`, { body: { namespace: exp.namespace, importToken } })
})
