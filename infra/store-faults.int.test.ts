/**
 * The store under faults, on a Ceph (and a registry) of this test's own, so that killing its daemons
 * disturbs no other test: data survives a kill -9 of any Ceph daemon; a gateway or OSD killed during a
 * write, a push or a backup makes that one fail clearly (or complete whole), never leaves a partial
 * object looking complete, and the next one works.
 */
import { ListMultipartUploadsCommand, ListPartsCommand, type S3Client } from '@aws-sdk/client-s3'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { loadConfig, registryHeaders, type WharfConfig } from '../core/config.js'
import { BUCKETS, s3Client, S3ObjectStore, type ObjectStore } from '../core/objectstore/index.js'
import { noise, sha256Of } from '../core/objectstore/objectstore.contract.js'
import { pushImage } from '../core/engine/images.js'
import { buildTestImage, pullImage, removeImage, testDocker } from '../services/builder/testing.js'
import { DockerEngine } from '../core/engine/docker.js'
import { registerAndLogin, startTestController } from '../services/controller/testing.js'
import { ceph, s3Settings } from './parts/ceph.js'
import { registry, registryCredentials } from './parts/registry.js'
import { contextFor, down, up } from './platform.js'
import { isAlive, readPid, waitUntil } from './proc.js'
import { freePort } from './test-env.js'

const MiB = 1024 * 1024
// A Ceph of its own, and a push the engine retries for a minute before it gives up: more than the
// suite's 120 s per file.
t.setTimeout(600_000)

const home = mkdtempSync(join(tmpdir(), 'wharf-faults-'))
chmodSync(home, 0o755)
const base = loadConfig({ WHARF_HOME: home })
const cfg: WharfConfig = { ...base, ports: { ...base.ports, s3: await freePort(), cephMon: await freePort(), registry: await freePort() } }
cfg.s3 = { ...cfg.s3, endpoint: `http://127.0.0.1:${cfg.ports.s3}` }
const ctx = contextFor(cfg)
/** This test's registry's credentials, as the engine takes them. */
const login = () => ({ serveraddress: `127.0.0.1:${cfg.ports.registry}`, ...registryCredentials(ctx) })
t.teardown(async () => {
  await down(ctx, [registry, ceph])
  rmSync(home, { recursive: true, force: true })
})
await up(ctx, { real: [ceph, registry], services: false })
const s3 = s3Settings(ctx)
const client: S3Client = s3Client(s3)
t.teardown(() => client.destroy())
const backups = new S3ObjectStore({ client, bucket: BUCKETS.backups })
const c = ctx.paths.ceph
const pidfiles = { radosgw: c.rgwPid, osd: c.osdPid, mon: c.monPid }

/** kill -9 of one daemon this test started, by its recorded pid. */
async function kill9(daemon: keyof typeof pidfiles): Promise<void> {
  const pid = readPid(pidfiles[daemon])
  if (!pid) throw new Error(`${daemon} is not running`)
  process.kill(pid, 'SIGKILL')
  await waitUntil(`${daemon} dead`, () => !isAlive(pid), 10_000, 20)
}

async function text(store: ObjectStore, key: string): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of await store.get(key)) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** Resolves once a multipart upload under `prefix` in `bucket` has at least one part stored. */
async function partStored(bucket: string, prefix: string): Promise<void> {
  await waitUntil(
    `a part under ${bucket}/${prefix}`,
    async () => {
      const { Uploads } = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))
      for (const u of Uploads ?? []) {
        const parts = await client.send(new ListPartsCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }))
        if ((parts.Parts ?? []).length > 0) return true
      }
      return false
    },
    120_000,
    50,
  )
}

t.test('data survives a kill -9 of each Ceph daemon, and a clean stop', async (t) => {
  await backups.put('survive/small', Buffer.from('still here'))
  const big = await sha256Of(noise(20 * MiB, 'survive'))
  await backups.put('survive/big', noise(20 * MiB, 'survive'))
  for (const daemon of ['radosgw', 'osd', 'mon'] as const) {
    await kill9(daemon)
    t.equal(await ceph.start(ctx), 'started', `${daemon} killed: the store starts it again`)
    t.equal(await text(backups, 'survive/small'), 'still here', `after ${daemon}: a small object reads back`)
    t.same(await sha256Of(await backups.get('survive/big')), big, `after ${daemon}: a multipart object reads back byte-identical`)
    await backups.put(`survive/after-${daemon}`, Buffer.from(daemon))
    t.equal(await text(backups, `survive/after-${daemon}`), daemon, `after ${daemon}: writes work`)
  }
  t.equal(await ceph.stop(ctx), 'stopped')
  t.equal(await ceph.start(ctx), 'started')
  t.same(await sha256Of(await backups.get('survive/big')), big, 'after a clean stop and start')
})

for (const daemon of ['radosgw', 'osd'] as const) {
  t.test(`${daemon} killed during a 64 MiB put: it fails or completes whole, never a partial object; the next put works`, async (t) => {
    const key = `mid-write/${daemon}`
    const want = await sha256Of(noise(64 * MiB, daemon))
    const store = new S3ObjectStore({ client: s3Client(s3, { maxAttempts: 1 }), bucket: BUCKETS.backups, partSize: 5 * MiB, queueSize: 1 })
    t.teardown(() => store.client.destroy())
    const put = store.put(key, noise(64 * MiB, daemon)).then(
      () => 'completed' as const,
      (err: Error) => err,
    )
    await partStored(BUCKETS.backups, key)
    await kill9(daemon)
    await ceph.start(ctx)
    const outcome = await put
    if (outcome === 'completed') {
      t.same(await sha256Of(await backups.get(key)), want, 'it completed: every byte is there')
    } else {
      t.pass(`it failed: ${outcome.message}`)
      t.equal(await backups.head(key), undefined, 'no object under the key')
    }
    await backups.abortUploads('mid-write/')
    t.same(
      (await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKETS.backups, Prefix: 'mid-write/' }))).Uploads ?? [],
      [],
      'no unfinished upload left',
    )
    await backups.put(key, noise(8 * MiB, 'next'))
    t.same(await sha256Of(await backups.get(key)), await sha256Of(noise(8 * MiB, 'next')), 'the next put works')
  })
}

t.test('the gateway killed mid-push: the push fails clearly, no image appears; the next push works and pulls back', async (t) => {
  const docker = testDocker()
  const local = await buildTestImage(t, docker, 'FROM busybox\nRUN dd if=/dev/urandom of=/payload bs=1M count=48 2>/dev/null\nCMD ["wc", "-c", "/payload"]\n')
  const repo = local.split(':')[0]!
  const ref = `127.0.0.1:${cfg.ports.registry}/${repo}:v1`
  await docker.getImage(local).tag({ repo: `127.0.0.1:${cfg.ports.registry}/${repo}`, tag: 'v1' })
  t.teardown(() => removeImage(docker, ref))

  const push = pushImage(new DockerEngine(docker, login()), ref).then(
    () => undefined,
    (err: Error) => err,
  )
  await partStored(BUCKETS.registry, 'docker/registry/v2/repositories/')
  await kill9('radosgw')
  const failed = await push
  t.ok(failed, 'the push failed')
  t.match(failed?.message, /the registry at 127\.0\.0\.1:\d+ refused the image/, `clearly: ${failed?.message}`)
  await ceph.start(ctx)
  await waitUntil(
    'the registry healthy again',
    async () => (await request(`http://127.0.0.1:${cfg.ports.registry}/v2/`, { headers: registryHeaders(registryCredentials(ctx)) })).statusCode === 200,
    60_000,
    500,
  )
  const manifest = await request(`http://127.0.0.1:${cfg.ports.registry}/v2/${repo}/manifests/v1`, { headers: registryHeaders(registryCredentials(ctx)) })
  await manifest.body.dump()
  t.equal(manifest.statusCode, 404, 'the cut-off push left no image behind')

  await pushImage(new DockerEngine(docker, login()), ref)
  await removeImage(docker, ref)
  await pullImage(docker, ref, login())
  t.ok(await docker.getImage(ref).inspect(), 'the next push works, and the image pulls back')
})

t.test('the gateway killed mid-backup: the backup fails clearly and is not listed; the next one works', async (t) => {
  const ctl = await startTestController(t, { WHARF_S3_ENDPOINT: s3.endpoint, WHARF_S3_ACCESS_KEY: s3.accessKey, WHARF_S3_SECRET_KEY: s3.secretKey })
  const root = await registerAndLogin(ctl, 'root')
  // Ballast in a read-model schema: a dump of tens of MiB, so the kill lands mid-upload.
  await ctl.deps.pool.query('CREATE SCHEMA rm_ballast')
  await ctl.deps.pool.query('CREATE TABLE rm_ballast.blob AS SELECT g, md5(random()::text) || md5(random()::text) AS a FROM generate_series(1, 600000) g')
  const ns = ctl.deps.cfg.namespace

  const backup = ctl.call('POST', '/v1/admin/backups', { token: root })
  await partStored(BUCKETS.backups, `${ns}/`)
  await kill9('radosgw')
  const failed = await backup
  t.equal(failed.status, 503, 'the backup failed')
  t.match(
    failed.body,
    { code: 'WHARF_UNAVAILABLE', message: new RegExp(`the store at ${s3.endpoint.replaceAll('.', '\\.')} failed while storing backup`) },
    failed.body.message,
  )
  await ceph.start(ctx)

  t.same((await ctl.call('GET', '/v1/admin/backups', { token: root })).body, [], 'not listed')
  const objects: string[] = []
  for await (const o of backups.list(`${ns}/`)) objects.push(o.key)
  t.same(objects, [], 'no object of it in the store')
  const types: string[] = []
  for await (const e of ctl.deps.store.readAll(1)) types.push(e.type)
  t.equal(types.at(-1), 'BackupFailed', 'recorded as failed')

  const next = await ctl.call('POST', '/v1/admin/backups', { token: root })
  t.equal(next.status, 201, 'the next backup works')
  t.same(
    (await ctl.call('GET', '/v1/admin/backups', { token: root })).body.map((b: { id: string }) => b.id),
    [next.body.id],
  )
  const { Uploads } = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKETS.backups, Prefix: `${ns}/` }))
  t.same(Uploads ?? [], [], "the failed backup's unfinished upload was cleaned up by the next one")
})
