import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Docker from 'dockerode'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { loadConfig, type RegistryLogin, registryHeaders, type WharfConfig } from '../core/config.js'
import { BUCKETS } from '../core/objectstore/objectstore.js'
import { s3Client, S3ObjectStore } from '../core/objectstore/s3.js'
import { buildTestImage, pullImage, removeImage, testDocker, testRegistry, testRegistryHeaders, testRegistryLogin } from '../services/builder/testing.js'
import { DockerEngine } from '../core/engine/docker.js'
import { pushImage } from '../core/engine/images.js'
import { testS3 } from '../test/harness.js'
import { redisCommand } from '../core/redis.js'
import { redis } from './parts/redis.js'
import { registry, registryCredentials } from './parts/registry.js'
import { contextFor, down, up } from './platform.js'
import { freePort } from './test-env.js'
import { startDaemon, waitUntil } from './proc.js'
import { tarOf } from '../test/tar.js'

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
async function pushMarked(t: Test, docker: Docker, login: RegistryLogin): Promise<{ ref: string; repo: string; marker: string; digest: string }> {
  const registryAddr = login.serveraddress
  const marker = `marker-${process.pid}-${Date.now()}`
  const local = await buildTestImage(t, docker, `FROM busybox\nRUN echo ${marker} > /marker\nCMD ["cat", "/marker"]\n`)
  const repo = local.split(':')[0]!
  const ref = `${registryAddr}/${repo}:v1`
  await docker.getImage(local).tag({ repo: `${registryAddr}/${repo}`, tag: 'v1' })
  t.teardown(() => removeImage(docker, ref))
  const digest = await pushImage(new DockerEngine(docker, login), ref)
  return { ref, repo, marker, digest }
}

t.test('a pushed image lives in the gateway bucket; removed from the engine, it is pulled back and runs', async (t) => {
  const docker = testDocker()
  const { ref, repo, marker, digest } = await pushMarked(t, docker, testRegistryLogin())

  const repoKeys = await keys(`docker/registry/v2/repositories/${repo}/`)
  t.ok(
    repoKeys.some((k) => k.endsWith(`_manifests/tags/v1/current/link`)),
    'the tag is in the bucket',
  )
  const manifestBlob = `docker/registry/v2/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}/data`
  t.ok(await bucket.head(manifestBlob), `the manifest ${digest} is a blob in the bucket`)
  const manifest = (await (
    await request(`http://${testRegistry()}/v2/${repo}/manifests/v1`, {
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json', ...testRegistryHeaders() },
    })
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
  const login = { serveraddress: `127.0.0.1:${cfg.ports.registry}`, ...registryCredentials(ctx) }
  const { ref, marker } = await pushMarked(t, docker, login)
  t.ok(Number(await redisCommand(cfg.ports.redis, 'DBSIZE')) > 0, 'the registry wrote blob descriptors to redis')
  await removeImage(docker, ref)
  await pullImage(docker, ref, login)
  t.match(await runOnce(t, docker, ref), marker, 'pulled back through the cached registry')

  // A registry an older checkout started (a config without auth, answering anyone): `make up` starts it again with auth.
  await down(ctx, [registry])
  const conf = ctx.paths.registry.conf
  writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^auth:\n(?: .*\n)+/m, ''))
  const { AWS_CA_BUNDLE: _drop, ...env } = process.env
  startDaemon({
    cmd: 'docker-registry',
    args: ['serve', conf],
    logFile: ctx.paths.registry.log,
    pidfile: ctx.paths.registry.pid,
    env: { ...env, REGISTRY_STORAGE_S3_ACCESSKEY: cfg.s3.accessKey, REGISTRY_STORAGE_S3_SECRETKEY: cfg.s3.secretKey },
  })
  const v2 = async () => {
    const res = await request(`http://${login.serveraddress}/v2/`)
    await res.body.dump()
    return res.statusCode
  }
  await waitUntil('the old registry', async () => (await v2()) === 200, 30_000)
  const said: string[] = []
  await up(
    contextFor(cfg, (line) => said.push(line)),
    { real: [registry, redis], services: false },
  )
  t.match(said.join('\n'), /registry: its configuration changed with this checkout; reloaded/, 'make up says so')
  t.equal(await v2(), 401, 'and the registry asks for credentials again')
})

/** The engine's answer to `docker.pull(ref)` with `authconfig`: undefined when pulled, else the error. */
async function pullError(docker: Docker, ref: string, authconfig: object): Promise<string | undefined> {
  try {
    const stream = await docker.pull(ref, { authconfig } as object)
    const out = await new Promise<{ error?: string }[]>((resolve, reject) =>
      docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))),
    )
    return out.find((o) => o.error)?.error
  } catch (err) {
    return (err as Error).message
  }
}

t.test("issue 14: the registry answers only the platform's credentials; a build cannot read it; the platform still pushes, pulls and deploys", async (t) => {
  const docker = testDocker()
  const login = testRegistryLogin()
  const { ref, repo, marker } = await pushMarked(t, docker, login)
  const base = `http://${testRegistry()}`

  // Without credentials, or with wrong ones: 401 for the API, the catalog and an app's image.
  const wrong = registryHeaders({ username: login.username, password: `${login.password}x` })
  for (const [what, headers] of [
    ['no credentials', {}],
    ['a wrong password', wrong],
  ] as const) {
    for (const path of ['/v2/', '/v2/_catalog', `/v2/${repo}/manifests/v1`, `/v2/${repo}/tags/list`]) {
      const res = await request(`${base}${path}`, { headers })
      await res.body.dump()
      t.equal(res.statusCode, 401, `GET ${path} with ${what}: 401`)
    }
  }
  const catalog = await request(`${base}/v2/_catalog`, { headers: testRegistryHeaders() })
  t.equal(catalog.statusCode, 200, `with the credentials the catalog answers (${catalog.statusCode})`)
  t.ok(((await catalog.body.json()) as { repositories: string[] }).repositories.includes(repo), '... and lists the image')

  // The engine pulling without credentials (what `docker pull` on the host does) is refused; nothing arrives.
  await removeImage(docker, ref)
  t.match(await pullError(docker, ref, {}), /unauthorized|no basic auth credentials|authentication required/i, 'a pull without credentials is refused')
  t.match(await pullError(docker, ref, { ...login, password: 'nope' }), /unauthorized|authentication required|incorrect/i, 'and with a wrong password')
  await t.rejects(docker.getImage(ref).inspect(), 'the image did not arrive')

  // A Dockerfile ADD of the registry's URL, built by the engine itself (the builder refuses it before
  // this; here the engine is asked directly): the engine fetches it with no credentials and fails.
  const tag = `wharf-test-add-${process.pid}-${Date.now()}:1`
  const stream = await docker.buildImage(tarOf({ Dockerfile: `FROM busybox\nADD ${base}/v2/_catalog /catalog\nCMD ["cat", "/catalog"]\n` }), {
    t: tag,
    labels: { 'wharf.test': 'true' },
    rm: true,
    forcerm: true,
  })
  const out = await new Promise<{ error?: string }[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))),
  )
  t.teardown(() => removeImage(docker, tag))
  t.match(out.find((o) => o.error)?.error, /401|Unauthorized/i, `the ADD fails: ${out.find((o) => o.error)?.error}`)
  await t.rejects(docker.getImage(tag).inspect(), 'no image was made (nothing was fetched into one)')

  // With the credentials: a pull, and a Swarm service whose task pulls the image (X-Registry-Auth on create).
  await pullImage(docker, ref)
  t.match(await runOnce(t, docker, ref), marker, 'the platform pulls it with its credentials')
  await removeImage(docker, ref)
  const engine = new DockerEngine(docker, login)
  const name = `wharf-test-regauth-${process.pid}`
  const id = await engine.createService({
    Name: name,
    Labels: { 'wharf.test': 'true' },
    TaskTemplate: { ContainerSpec: { Image: ref, Labels: { 'wharf.test': 'true' } }, RestartPolicy: { Condition: 'none' } },
    Mode: { Replicated: { Replicas: 1 } },
  } as never)
  t.teardown(() =>
    docker
      .getService(id)
      .remove()
      .catch(() => {}),
  )
  let state = ''
  for (let i = 0; i < 100 && !['running', 'complete'].includes(state); i++) {
    const tasks = (await docker.listTasks({ filters: { service: [name] } })) as { Status?: { State?: string; Err?: string } }[]
    state = tasks[0]?.Status?.State ?? ''
    if (['rejected', 'failed'].includes(state)) t.fail(`the task did not start: ${tasks[0]?.Status?.Err}`)
    if (['rejected', 'failed'].includes(state)) break
    await new Promise((r) => setTimeout(r, 200))
  }
  t.ok(['running', 'complete'].includes(state), `the service's task pulled the image and ran (${state})`)

  // The secrets: files of mode 600, never in the registry's config or log, nor in `make status`.
  const home = process.env.WHARF_TEST_HOME!
  for (const f of ['registry-password', 'registry.htpasswd']) t.equal(statSync(join(home, 'secrets', f)).mode & 0o777, 0o600, `secrets/${f} is mode 600`)
  t.match(readFileSync(join(home, 'secrets', 'registry.htpasswd'), 'utf8'), new RegExp(`^${login.username}:\\$2y\\$`), 'bcrypt')
  for (const f of [join(home, 'registry', 'config.yml'), join(home, 'logs', 'registry.log')])
    t.notOk(readFileSync(f, 'utf8').includes(login.password), `the password is not in ${f}`)
  const ctx = contextFor(loadConfig({ WHARF_HOME: home, WHARF_REGISTRY_PORT: testRegistry().split(':')[1] }))
  const status = await registry.status(ctx)
  t.ok(status.up, 'infra sees the registry up (its probe has the credentials)')
  t.notOk(JSON.stringify(status).includes(login.password), 'its status line does not show the password')
})
