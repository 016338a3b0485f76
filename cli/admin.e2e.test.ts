/**
 * The admin commands as an operator runs them (bin/wharf against a controller of the test's own,
 * with the test platform's parts and its gateway): status, backup, backups, restore, export-events,
 * exports, import-events; refusals as one line with their code.
 */
import t from 'tap'
import { registerAndLogin, startTestController } from '../services/controller/testing.js'
import { importTarget, populate, readModels } from '../services/store/testing.js'
import { cli, cliUser, fails, ok, requireBuilt } from './testing.js'

/** The test platform's parts, so that admin:status probes them (not whatever answers on the default ports). */
function platformEnv(): Record<string, string> {
  const e = process.env
  return {
    WHARF_DOCKER_HOST: e.WHARF_TEST_DOCKER_HOST!,
    WHARF_NATS_URL: e.WHARF_TEST_NATS_URL!,
    WHARF_ROUTER_PORT: e.WHARF_TEST_ROUTER_PORT!,
    WHARF_REGISTRY_PORT: e.WHARF_TEST_REGISTRY!.split(':')[1]!,
    WHARF_REGISTRY_USER: e.WHARF_TEST_REGISTRY_USER!,
    WHARF_REGISTRY_PASSWORD: e.WHARF_TEST_REGISTRY_PASSWORD!,
    WHARF_S3_PORT: new URL(e.WHARF_TEST_S3_ENDPOINT!).port,
  }
}

t.test('admin:status lists every part as up, with address and version; a part that is down says so', async (t) => {
  requireBuilt()
  const c = await startTestController(t, platformEnv())
  const root = await registerAndLogin(c, 'root')
  const admin = cli(t, c.url, root)
  const res = await ok(t, admin.run(['admin:status']), 'admin:status')
  const lines = res.stdout.trimEnd().split('\n')
  t.match(lines[0], /^PART\s+STATE\s+ADDRESS\s+VERSION\s+DETAIL$/)
  for (const part of ['engine', 'swarm', 'nats', 'postgres', 'nginx', 'registry', 'store']) {
    t.match(
      lines.find((l) => l.startsWith(`${part} `)),
      new RegExp(`^${part}\\s+up\\s+\\S+\\s+v?\\d+\\.\\d+`),
      `${part} is up with a version`,
    )
  }
  const json = JSON.parse((await ok(t, admin.run(['admin:status', '--json']), 'admin:status --json')).stdout)
  t.same(
    json.parts.map((p: { part: string }) => p.part),
    ['engine', 'swarm', 'nats', 'postgres', 'nginx', 'registry', 'store'],
  )
  t.match(
    json.parts.find((p: { part: string }) => p.part === 'store'),
    { up: true, address: process.env.WHARF_TEST_S3_ENDPOINT, version: /^16\./, detail: /Ceph RADOS Gateway/ },
  )

  // A platform whose registry does not answer (nothing listens on port 9).
  const broken = await startTestController(t, { ...platformEnv(), WHARF_REGISTRY_PORT: '9' })
  const b = cli(t, broken.url, await registerAndLogin(broken, 'root'))
  const down = await b.run(['admin:status'])
  t.equal(down.code, 3, 'exit 3 when a part is down')
  t.match(down.stdout, /^registry\s+DOWN\s+http:\/\/127\.0\.0\.1:9\s/m)
  t.match(down.stdout, /^store\s+up\s/m, 'the others are up')

  const alice = cli(t, c.url, await registerAndLogin(c, 'alice'))
  await fails(t, alice.run(['admin:status']), 'WHARF_FORBIDDEN', 'a non-admin')
})

t.test('admin:backup, admin:backups, admin:restore round-trip; export-events then import-events into a new platform', async (t) => {
  requireBuilt()
  const c = await startTestController(t)
  const { root, alice } = await populate(c)
  const admin = cli(t, c.url, root)
  const before = await readModels(c.deps.pool)

  const made = await ok(t, admin.run(['admin:backup']), 'admin:backup')
  const id = /^Backup (\d{8}-\d{6}-[0-9a-f]{4}): /.exec(made.stdout)?.[1]
  t.ok(id, `prints the backup id (${made.stdout.trim()})`)
  t.match(made.stderr, /^Backing up the read models to the store\.\.\. done \(\d+\.\d s\)\n$/, 'progress on stderr')
  const list = await ok(t, admin.run(['admin:backups']), 'admin:backups')
  t.match(
    list.stdout,
    new RegExp(
      `^ID\\s+CREATED\\s+TRIGGER\\s+ACTOR\\s+SIZE\\s+UP TO EVENT\\s+TOOK\\n${id}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+manual\\s+user:root\\s+\\d`,
    ),
  )
  t.same(
    JSON.parse((await ok(t, admin.run(['admin:backups', '--json']), 'admin:backups --json')).stdout).map((b: { id: string }) => b.id),
    [id],
  )

  await c.deps.pool.query('DELETE FROM rm_config.config')
  await fails(t, admin.run(['admin:restore', id!]), 'WHARF_INVALID', 'a restore without confirmation')
  await fails(t, admin.run(['admin:restore', id!, '--confirm', 'something-else']), 'WHARF_INVALID', 'a wrong confirmation')
  await fails(t, admin.run(['admin:restore', '20200101-000000-abcd', '--confirm', '20200101-000000-abcd']), 'WHARF_NOT_FOUND', 'no such backup')
  const restored = await ok(t, admin.run(['admin:restore', id!, '--confirm', id!]), 'admin:restore')
  t.match(restored.stdout, new RegExp(`^Restored backup ${id} \\(the read models as of event \\d+\\); they have caught up to event \\d+\\.\\n$`))
  t.same(await readModels(c.deps.pool), before, 'round-trip: the read models are back')
  await fails(t, cli(t, c.url, alice).run(['admin:backup']), 'WHARF_FORBIDDEN', 'a non-admin backup')

  const exported = await ok(t, admin.run(['admin:export-events']), 'admin:export-events')
  const m = /^Export (\S+): (\d+) events, .+ --namespace (\S+)\n$/.exec(exported.stdout)
  t.ok(m, exported.stdout)
  t.match((await ok(t, admin.run(['admin:exports']), 'admin:exports')).stdout, new RegExp(`^ID\\s+CREATED\\s+ACTOR\\s+EVENTS\\s+SIZE\\n${m![1]}\\s`))
  const { c: fresh, importToken } = await importTarget(t, m![3]!)
  const operator = cliUser(t, {})
  await fails(t, operator.run(['admin:import-events', m![1]!, '--namespace', m![3]!, '--url', fresh.url]), 'WHARF_UNAUTHORIZED', 'an import without the token')
  const imported = await ok(
    t,
    operator.run(['admin:import-events', m![1]!, '--namespace', m![3]!, '--import-token', importToken, '--url', fresh.url]),
    'admin:import-events into a new platform',
  )
  // A commit of several events is one seq: the log may end before the event count.
  const im = /^Imported (\d+) events; the event log now ends at event (\d+)\./.exec(imported.stdout)
  t.equal(im?.[1], m![2], 'every exported event imported')
  t.ok(Number(im![2]) > 0 && Number(im![2]) <= Number(m![2]), 'the log ends at its last commit')
  t.equal(await fresh.deps.store.lastSeq(), Number(im![2]), 'as the new platform says')
  await fails(
    t,
    operator.run(['admin:import-events', m![1]!, '--namespace', m![3]!, '--import-token', importToken, '--url', fresh.url]),
    'WHARF_UNAUTHORIZED',
    'a second import with the spent token, not signed in',
  )
})
