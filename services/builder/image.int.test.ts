/**
 * Images against the real Docker engine and registry: the EXPOSEd port, a push that answers the
 * digest the registry serves, importing an image from the engine or from the registry, refusals.
 */
import t from 'tap'
import { request } from 'undici'
import { uniqueName } from '../../test/harness.js'
import { imagePort, importImage, pushImage } from '../../core/engine/images.js'
import { buildTestImage, removeImage, testDocker, testEngine, testRegistry, testRegistryHeaders } from './testing.js'

const docker = testDocker()
const engine = testEngine()
const registry = testRegistry()

/** A lower-case name unique to this run that is also an app name. */
function appName(): string {
  return `t${uniqueName('img')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '')}`.slice(0, 30)
}

/** The digest the registry answers for `<name>:<tag>` (schema 2 manifest). */
async function registryDigest(name: string, tag: string): Promise<string | undefined> {
  const res = await request(`http://${registry}/v2/${name}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json', ...testRegistryHeaders() },
  })
  await res.body.dump()
  return res.statusCode === 200 ? (res.headers['docker-content-digest'] as string) : undefined
}

t.test('imagePort: the one EXPOSEd TCP port, else 5000', async (t) => {
  const one = await buildTestImage(t, docker, 'FROM busybox\nEXPOSE 8080\n')
  t.equal(await imagePort(engine, one), 8080)
  const none = await buildTestImage(t, docker, 'FROM busybox\nLABEL none=1\n')
  t.equal(await imagePort(engine, none), 5000, 'none exposed')
  const two = await buildTestImage(t, docker, 'FROM busybox\nEXPOSE 8080 9090\n')
  t.equal(await imagePort(engine, two), 5000, 'two exposed')
  const udp = await buildTestImage(t, docker, 'FROM busybox\nEXPOSE 53/udp 7000/tcp\n')
  t.equal(await imagePort(engine, udp), 7000, 'the TCP one of a TCP and a UDP port')
})

t.test('pushImage: progress lines and the digest the registry serves', async (t) => {
  const built = await buildTestImage(t, docker, `FROM busybox\nRUN echo ${Date.now()} > /stamp\n`)
  const name = appName()
  const ref = `${registry}/${name}:v1`
  await engine.tagImage(built, `${registry}/${name}`, 'v1')
  t.teardown(() => removeImage(docker, ref))
  const lines: string[] = []
  const digest = await pushImage(engine, ref, (l) => lines.push(l))
  t.match(digest, /^sha256:[0-9a-f]{64}$/)
  t.equal(await registryDigest(name, 'v1'), digest, 'the registry serves the manifest under that digest')
  t.ok(lines.length > 0, 'some progress')
  t.ok(
    lines.some((l) => /Pushed|already exists/.test(l)),
    'layer outcomes',
  )
  t.notOk(
    lines.some((l) => /\[=*>?\s*\]/.test(l)),
    'no byte ticks',
  )
})

t.test('pushImage: an unreachable registry or a missing image', async (t) => {
  const built = await buildTestImage(t, docker, 'FROM busybox\nLABEL unreachable=1\n')
  // A port nothing listens on (the engine answers connection refused).
  const ref = '127.0.0.1:1/nowhere:v1'
  await engine.tagImage(built, '127.0.0.1:1/nowhere', 'v1')
  t.teardown(() => removeImage(docker, ref))
  await t.rejects(pushImage(engine, ref), { code: 'WHARF_UNAVAILABLE', message: /^the registry at 127\.0\.0\.1:1 refused the image: / })
  await t.rejects(pushImage(engine, `${registry}/${appName()}:missing`), { code: 'WHARF_NOT_FOUND' })
})

t.test('importImage: from the engine, tagged per image id, pushed, with its port', async (t) => {
  const source = await buildTestImage(t, docker, `FROM busybox\nEXPOSE 8080\nRUN echo ${Date.now()} > /stamp\n`)
  const app = appName()
  const id = (await engine.inspectImage(source)).id.replace(/^sha256:/, '').slice(0, 12)
  const lines: string[] = []
  const out = await importImage(engine, { source, app, registry, onLine: (l) => lines.push(l) })
  t.teardown(() => removeImage(docker, out.image))
  t.same(out, { image: `${registry}/${app}:image-${id}`, digest: out.digest, port: 8080 })
  t.equal(await registryDigest(app, `image-${id}`), out.digest)
  t.ok(lines.includes(`tagged ${out.image}`))
})

t.test('importImage: from the platform registry when the engine does not have it', async (t) => {
  const built = await buildTestImage(t, docker, `FROM busybox\nEXPOSE 3000\nRUN echo ${Date.now()} > /stamp\n`)
  const name = appName()
  const inRegistry = `${registry}/${name}:1`
  await engine.tagImage(built, `${registry}/${name}`, '1')
  await pushImage(engine, inRegistry)
  const id = (await engine.inspectImage(built)).id.replace(/^sha256:/, '').slice(0, 12)
  // Gone from the engine: only the registry has it now.
  await removeImage(docker, inRegistry)
  await removeImage(docker, built)
  t.equal(
    await engine.inspectImage(inRegistry).then(
      () => 200,
      (e: { statusCode?: number }) => e.statusCode,
    ),
    404,
    'not in the engine',
  )

  const app = appName()
  // A bare name is looked up in the platform registry only for a repository the caller may use.
  await t.rejects(importImage(engine, { source: `${name}:1`, app, registry }), { code: 'WHARF_NOT_FOUND' }, 'not for a repository the caller may not use')
  const out = await importImage(engine, { source: `${name}:1`, app, registry, mayUseRepo: async (repo) => repo === name })
  t.teardown(() => removeImage(docker, out.image))
  t.teardown(() => removeImage(docker, inRegistry))
  t.equal(out.image, `${registry}/${app}:image-${id}`, 'the same image id')
  t.equal(out.port, 3000)
  t.equal(await registryDigest(app, `image-${id}`), out.digest)
})

t.test('importImage: an image in neither place', async (t) => {
  const app = appName()
  for (const source of [`${appName()}:nope`, `${registry}/${appName()}:nope`, 'example.com/library/nginx:1.25']) {
    await t.rejects(importImage(engine, { source, app, registry }), {
      code: 'WHARF_NOT_FOUND',
      message: `no image ${source} in the Docker engine or the registry (images cannot be pulled from the internet here)`,
    })
  }
})
