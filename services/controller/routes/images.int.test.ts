/**
 * Issue 14, finding 1 through the API: bob's `builds:create` cannot release alice's image, by its
 * reference in the platform's registry or by a prefix of its id; each is refused with a clear error
 * and nothing is recorded. His own image, and a bare name of the engine's, still work.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildTestImage, removeImage, testDocker, testRegistry } from '../../builder/testing.js'
import { refused, registerAndLogin, startEngineController } from '../testing.js'

const docker = testDocker()

t.test("bob cannot release alice's image", async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wharf-images-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const c = await startEngineController(t, { WHARF_HOME: home })
  await registerAndLogin(c, 'root')
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  const suffix = Date.now().toString(36).slice(-6)
  const [shop, bobapp] = [`shop${suffix}`, `bobapp${suffix}`]
  for (const [token, name] of [
    [alice, shop],
    [bob, bobapp],
  ] as const)
    t.equal((await c.call('POST', '/v1/apps', { token, body: { name } })).status, 201)
  const source = await buildTestImage(t, docker, `FROM busybox\nRUN echo ${Date.now()} > /secret\nCMD ["sleep", "1000"]\n`)
  const built = await c.call('POST', `/v1/apps/${shop}/builds`, { token: alice, body: { image: source } })
  t.equal(built.status, 201, 'alice releases her image')
  const image: string = built.body.image
  t.teardown(() => removeImage(docker, image))
  const id = (await docker.getImage(image).inspect()).Id.replace(/^sha256:/, '')
  const path = `/v1/apps/${bobapp}/builds`

  const byRef = await refused(t, c, 403, 'WHARF_FORBIDDEN', 'POST', path, { token: bob, body: { image } })
  t.match(byRef.body.message, "is in the platform's registry, and not an image of an app you may deploy")
  const port = testRegistry().split(':')[1]
  await refused(t, c, 403, 'WHARF_FORBIDDEN', 'POST', path, { token: bob, body: { image: `localhost:${port}/${shop}@${built.body.digest}` } })
  for (const prefix of [id.slice(0, 1), id.slice(0, 12), `sha256:${id}`]) {
    const res = await refused(t, c, 400, 'WHARF_INVALID', 'POST', path, { token: bob, body: { image: prefix } })
    t.match(res.body.message, 'an image id; name the image by repository and tag')
  }
  // A bare name is never looked up in another app's repository of the platform registry.
  const bare = await c.call('POST', path, { token: bob, body: { image: `${shop}:${image.split(':').at(-1)}` } })
  t.equal(bare.status, 404, `a bare name of alice's repository is not found for bob: ${bare.body.message}`)
  const releases = await c.call('GET', `/v1/apps/${bobapp}/releases`, { token: bob })
  t.same(
    releases.body.releases.map((r: { version: number; image: string | null }) => [r.version, r.image]),
    [[1, null]],
    'bob has no release with an image',
  )

  const own = await c.call('POST', path, { token: bob, body: { image: source } })
  t.equal(own.status, 201, 'an image of the engine by name is fine')
  t.teardown(() => removeImage(docker, own.body.image))
  t.equal((await c.call('POST', path, { token: bob, body: { image: own.body.image } })).status, 201, 'and so is his own in the registry')
})
