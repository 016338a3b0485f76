import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Docker from 'dockerode'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { loadConfig, type WharfConfig } from '../core/config.js'
import { BUCKETS } from '../core/objectstore/objectstore.js'
import { s3Client, S3ObjectStore } from '../core/objectstore/s3.js'
import { buildTestImage, pullImage, removeImage, testDocker, testRegistry } from '../services/builder/testing.js'
import { DockerEngine } from '../core/engine/docker.js'
import { pushImage } from '../core/engine/images.js'
import { testS3 } from '../test/harness.js'
import { redisCommand } from '../core/redis.js'
import { redis } from './parts/redis.js'
import { registry } from './parts/registry.js'
import { contextFor, down, up } from './platform.js'
import { freePort } from './test-env.js'

/** The registry `make test` started keeps images in the store's bucket, not on local disk. */

const client = s3Client(testS3())
t.teardown(() => client.destroy())
const bucket = new S3ObjectStore({ client, bucket: BUCKETS.registry })

async function keys(prefix: string): Promise<string[]> {
  const out: string[] = []
  for await (const o of bucket.list(prefix)) out.push(o.key)
  return out
}

/** Runs `ref` with no network and answers its output. */
async function runOnce(t: Test, docker: Docker, ref: string): Promise<string> {
  const c = await docker.createContainer({ Image: ref, Labels: { 'wharf.test': 'true' }, HostConfig: { NetworkMode: 'none' } })
  t.teardown(() => c.remove({ force: true }).catch(() => {}))
  await c.start()
  await c.wait()
  return ((await c.logs({ stdout: true, stderr: true })) as Buffer).toString('latin1')
}

/** Builds a small image with a marker file, pushes it to `registry` and answers its ref, repository and marker. */
async function pushMarked(t: Test, docker: Docker, registryAddr: string): Promise<{ ref: string; repo: string; marker: string; digest: string }> {
  const marker = `marker-${process.pid}-${Date.now()}`
  const local = await buildTestImage(t, docker, `FROM busybox\nRUN echo ${marker} > /marker\nCMD ["cat", "/marker"]\n`)
  const repo = local.split(':')[0]!
  const ref = `${registryAddr}/${repo}:v1`
  await docker.getImage(local).tag({ repo: `${registryAddr}/${repo}`, tag: 'v1' })
  t.teardown(() => removeImage(docker, ref))
  const digest = await pushImage(new DockerEngine(docker), ref)
  return { ref, repo, marker, digest }
}

t.test('a pushed image lives in the gateway bucket; removed from the engine, it is pulled back and runs', async (t) => {
  const docker = testDocker()
  const { ref, repo, marker, digest } = await pushMarked(t, docker, testRegistry())

  const repoKeys = await keys(`docker/registry/v2/repositories/${repo}/`)
  t.ok(
    repoKeys.some((k) => k.endsWith(`_manifests/tags/v1/current/link`)),
    'the tag is in the bucket',
  )
  const manifestBlob = `docker/registry/v2/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}/data`
  t.ok(await bucket.head(manifestBlob), `the manifest ${digest} is a blob in the bucket`)
  const manifest = (await (
    await request(`http://${testRegistry()}/v2/${repo}/manifests/v1`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } })
  ).body.json()) as { layers: { digest: string; size: number }[] }
  for (const layer of manifest.layers) {
    const info = await bucket.head(`docker/registry/v2/blobs/sha256/${layer.digest.slice(7, 9)}/${layer.digest.slice(7)}/data`)
    t.equal(info?.size, layer.size, `layer ${layer.digest.slice(0, 19)} is in the bucket, whole`)
  }
  t.notOk(existsSync(join(process.env.WHARF_TEST_HOME!, 'registry', 'data')), 'no image data on local disk')

  await removeImage(docker, ref)
  await t.rejects(docker.getImage(ref).inspect(), 'gone from the engine')
  await pullImage(docker, ref)
  t.match(await runOnce(t, docker, ref), marker, 'pulled back from the registry on S3, it runs with its files')
})

t.test('WHARF_REGISTRY_CACHE=redis: a registry with its blob descriptors in redis', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wharf-regcache-'))
  chmodSync(home, 0o755)
  const s3 = testS3()
  const base = loadConfig({
    WHARF_HOME: home,
    WHARF_REGISTRY_CACHE: 'redis',
    WHARF_S3_ENDPOINT: s3.endpoint,
    WHARF_S3_ACCESS_KEY: s3.accessKey,
    WHARF_S3_SECRET_KEY: s3.secretKey,
    WHARF_S3_REGION: s3.region,
  })
  const cfg: WharfConfig = { ...base, ports: { ...base.ports, registry: await freePort(), redis: await freePort() } }
  const ctx = contextFor(cfg)
  t.teardown(async () => {
    await down(ctx, [registry, redis])
    rmSync(home, { recursive: true, force: true })
  })
  await up(ctx, { real: [registry, redis], services: false })
  t.match((await redis.status(ctx)).version, /^\d+\.\d+/, 'redis answers with its version')
  t.match((await registry.status(ctx)).detail, /cache: redis/)

  const docker = testDocker()
  const { ref, marker } = await pushMarked(t, docker, `127.0.0.1:${cfg.ports.registry}`)
  t.ok(Number(await redisCommand(cfg.ports.redis, 'DBSIZE')) > 0, 'the registry wrote blob descriptors to redis')
  await removeImage(docker, ref)
  await pullImage(docker, ref)
  t.match(await runOnce(t, docker, ref), marker, 'pulled back through the cached registry')
})
