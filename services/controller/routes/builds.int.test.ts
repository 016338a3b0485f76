/**
 * Builds through the real API, Docker engine and registry: `builds:create` of an image makes a
 * build and a release; the builds read model follows pushes, failures and releases; logs; refusals
 * append nothing.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { newEventId, streamId } from '../../../events/index.js'
import { waitFor } from '../../../projections/index.js'
import { uniqueName } from '../../../test/harness.js'
import { removeImage, buildTestImage, testDocker, testRegistry } from '../../builder/testing.js'
import { refused, registerAndLogin, startEngineController, type TestController } from '../testing.js'

const docker = testDocker()

interface World {
  c: TestController
  home: string
  app: string
  /** alice owns `app`, bob collaborates on it, carol is a stranger. */
  alice: string
  bob: string
  carol: string
}

/** A controller with the test Docker engine and registry, a WHARF_HOME of its own, and an app. */
async function world(t: Test): Promise<World> {
  const home = mkdtempSync(join(tmpdir(), 'wharf-builds-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const c = await startEngineController(t, { WHARF_HOME: home })
  await registerAndLogin(c, 'root')
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  const carol = await registerAndLogin(c, 'carol')
  // An app name of its own: its images go to the shared registry.
  const app = `shop-${uniqueName('b')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(-12)}`
  const created = await c.call('POST', '/v1/apps', { token: alice, body: { name: app } })
  if (created.status !== 201) throw new Error(`create ${app}: ${created.status} ${JSON.stringify(created.body)}`)
  const shared = await c.call('POST', `/v1/apps/${app}/perms`, { token: alice, body: { username: 'bob' } })
  if (shared.status !== 201) throw new Error(`share ${app}: ${shared.status} ${JSON.stringify(shared.body)}`)
  return { c, home, app, alice, bob, carol }
}

t.test('builds:create of an image: a build, a release, listed, with a log', async (t) => {
  const { c, app, alice, bob, carol } = await world(t)
  const source = await buildTestImage(t, docker, `FROM busybox\nEXPOSE 8080\nRUN echo ${Date.now()} > /stamp\nCMD ["httpd", "-f", "-p", "8080"]\n`)

  // The tag it gets, removed even when the request fails.
  const id12 = (await docker.getImage(source).inspect()).Id.replace(/^sha256:/, '').slice(0, 12)
  t.teardown(() => removeImage(docker, `${testRegistry()}/${app}:image-${id12}`))
  const res = await c.call('POST', `/v1/apps/${app}/builds`, { token: alice, body: { image: source } })
  t.equal(res.status, 201, JSON.stringify(res.body))
  t.equal(res.body.image, `${testRegistry()}/${app}:image-${id12}`)
  t.match(res.body, {
    build: /^[0-9a-f]{8}-[0-9a-f]{4}-7/,
    release: 2,
    image: new RegExp(`^${testRegistry()}/${app}:image-[0-9a-f]{12}$`),
    digest: /^sha256:[0-9a-f]{64}$/,
    port: 8080,
  })
  t.match(res.body.url, new RegExp(`^http://${app}\\.`))

  const releases = (await c.call('GET', `/v1/apps/${app}/releases`, { token: alice })).body.releases
  t.same(
    releases.map((r: { version: number }) => r.version),
    [2, 1],
    'v1 is the creation, v2 the build',
  )
  t.match(releases[0], { image: res.body.image, digest: res.body.digest, port: 8080, procfile: {}, build: res.body.build })

  const list = await c.call('GET', `/v1/apps/${app}/builds`, { token: bob })
  t.equal(list.status, 200, 'a collaborator sees the builds')
  t.equal(list.body.builds.length, 1)
  t.match(list.body.builds[0], {
    id: res.body.build,
    app,
    kind: 'image',
    sha: null,
    source,
    stack: 'image',
    by: 'alice',
    status: 'succeeded',
    image: res.body.image,
    digest: res.body.digest,
    procfile: {},
    port: 8080,
    reason: null,
    lastLines: [],
    release: 2,
    finished: /^\d{4}-/,
  })

  const info = await c.call('GET', `/v1/apps/${app}/builds/latest`, { token: alice })
  t.equal(info.status, 200)
  t.equal(info.body.id, res.body.build)
  t.match(info.body.log, new RegExp(`^importing ${source}\\.\\.\\.\n[\\s\\S]*tagged ${res.body.image}\n[\\s\\S]*pushed ${res.body.image}`), 'the build log')
  t.equal((await c.call('GET', `/v1/apps/${app}/builds/${res.body.build}`, { token: alice })).body.id, res.body.build, 'by id')
  t.equal((await c.call('GET', `/v1/apps/${app}/builds/${res.body.build.slice(0, 13)}`, { token: alice })).body.id, res.body.build, 'by a prefix')

  // A Procfile and a port given with the image; a collaborator may deploy.
  const second = await c.call('POST', `/v1/apps/${app}/builds`, {
    token: bob,
    body: { image: source, procfile: { web: 'httpd -f -p $PORT', worker: 'sleep 1000' }, port: 9000 },
  })
  t.equal(second.status, 201, JSON.stringify(second.body))
  t.match(second.body, { release: 3, image: res.body.image, digest: res.body.digest, port: 9000 }, 'the same image again: same tag and digest')
  t.match((await c.call('GET', `/v1/apps/${app}/releases/v3`, { token: alice })).body, {
    procfile: { web: 'httpd -f -p $PORT', worker: 'sleep 1000' },
    port: 9000,
  })
  const both = (await c.call('GET', `/v1/apps/${app}/builds`, { token: alice })).body.builds
  t.same(
    both.map((b: { id: string; release: number; by: string }) => [b.id, b.release, b.by]),
    [
      [second.body.build, 3, 'bob'],
      [res.body.build, 2, 'alice'],
    ],
    'newest first',
  )
  t.equal((await c.call('GET', `/v1/apps/${app}/builds?limit=1`, { token: alice })).body.builds.length, 1, 'limit')

  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', `/v1/apps/${app}/builds`, { token: carol })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', `/v1/apps/${app}/builds/latest`, { token: carol })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', `/v1/apps/${app}/builds/${newEventId()}`, { token: alice })

  const openapi = await c.call('GET', '/v1/openapi.json')
  for (const path of ['/v1/apps/{app}/builds', '/v1/apps/{app}/builds/{build}']) t.ok(openapi.body.paths[path], `openapi documents ${path}`)
  t.ok(openapi.body.paths['/v1/apps/{app}/builds'].post, 'and the POST')
})

t.test('builds:create of an unknown image: 404, a failed build, no release', async (t) => {
  const { c, home, app, alice } = await world(t)
  const source = `${uniqueName('nope').toLowerCase()}:1`
  const res = await c.call('POST', `/v1/apps/${app}/builds`, { token: alice, body: { image: source } })
  t.equal(res.status, 404)
  t.match(res.body, {
    code: 'WHARF_NOT_FOUND',
    message: `no image ${source} in the Docker engine or the registry (images cannot be pulled from the internet here)`,
  })
  // The release manager would have released by now if it were going to.
  await new Promise((r) => setTimeout(r, 300))
  t.same(
    (await c.call('GET', `/v1/apps/${app}/releases`, { token: alice })).body.releases.map((r: { version: number }) => r.version),
    [1],
    'no release',
  )
  const [build] = (await c.call('GET', `/v1/apps/${app}/builds`, { token: alice })).body.builds
  t.match(build, {
    kind: 'image',
    source,
    status: 'failed',
    reason: res.body.message,
    release: null,
    image: null,
    // A bare name is looked up in the platform registry only for an app the caller may use (issue 14): not pulled.
    lastLines: [`importing ${source}...`, /^failed: no image/],
  })

  // The log: the file when there is one (its last 1 MiB, from a line start), else the last lines.
  const info = await c.call('GET', `/v1/apps/${app}/builds/${build.id}`, { token: alice })
  t.match(info.body.log, new RegExp(`^importing ${source}\\.\\.\\.\n`))
  rmSync(join(home, 'builds', `${build.id}.log`))
  t.equal(
    (await c.call('GET', `/v1/apps/${app}/builds/${build.id}`, { token: alice })).body.log,
    build.lastLines.map((l: string) => `${l}\n`).join(''),
    'no file: the last lines',
  )
  mkdirSync(join(home, 'builds'), { recursive: true })
  const line = `${'x'.repeat(99)}\n`
  writeFileSync(join(home, 'builds', `${build.id}.log`), `first line\n${line.repeat(15_000)}last line\n`)
  const big = (await c.call('GET', `/v1/apps/${app}/builds/${build.id}`, { token: alice })).body.log as string
  t.ok(Buffer.byteLength(big) <= 1024 * 1024, 'at most 1 MiB')
  t.ok(Buffer.byteLength(big) > 1024 * 1024 - 200, 'about 1 MiB')
  t.ok(big.startsWith(line) && big.endsWith('last line\n'), 'whole lines, to the end')
})

t.test('refusals: no access, bad input; nothing appended', async (t) => {
  const { c, app, alice, carol } = await world(t)
  const path = `/v1/apps/${app}/builds`
  await refused(t, c, 401, 'WHARF_UNAUTHORIZED', 'POST', path, { body: { image: 'busybox:latest' } })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'POST', path, { token: carol, body: { image: 'busybox:latest' } })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'POST', '/v1/apps/nosuchapp/builds', { token: alice, body: { image: 'busybox:latest' } })
  const token = alice
  for (const body of [
    {},
    { image: 'busybox:latest', extra: 1 },
    { image: 'Bad Image!' },
    { image: '-busybox' },
    { image: '' },
    { image: 'x'.repeat(513) },
    { image: 42 },
    { image: 'busybox:latest', procfile: { Web: 'x' } },
    { image: 'busybox:latest', procfile: { web: '' } },
    { image: 'busybox:latest', procfile: 'web: x' },
    { image: 'busybox:latest', port: 0 },
    { image: 'busybox:latest', port: 70000 },
    { image: 'busybox:latest', port: '8080' },
  ]) {
    await refused(t, c, 400, 'WHARF_INVALID', 'POST', path, { token, body })
  }
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', path, { token, rawBody: '{"image": ' })
  await refused(t, c, 400, 'WHARF_INVALID', 'GET', `${path}/not-a-build`, { token })
  await refused(t, c, 400, 'WHARF_INVALID', 'GET', `${path}?limit=0`, { token })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', `${path}/latest`, { token })
})

t.test('the builds read model follows a push: received, building, failed; succeeded and released; dropped with the app', async (t) => {
  const { c, app, alice } = await world(t)
  const sha = 'a'.repeat(40)
  const ctx = { actor: 'system:test' }
  const settle = async () => waitFor(c.deps.pool, await c.deps.store.lastSeq(), { projections: ['builds', 'releases'] })
  const get = async (id: string) => (await c.call('GET', `/v1/apps/${app}/builds/${id}`, { token: alice })).body

  const failed = newEventId()
  const fs = streamId('build', failed)
  let v = (
    await c.deps.store.append(fs, [{ type: 'PushReceived', data: { app, sha, user: 'alice', fingerprint: 'SHA256:x' } }], { ...ctx, expectedVersion: 0 })
  ).lastSeq
  await settle()
  t.match(await get(failed), { kind: 'git', sha, source: null, stack: null, by: 'alice', status: 'received', finished: null })
  v = (
    await c.deps.store.append(fs, [{ type: 'BuildStarted', data: { app, user: 'alice', kind: 'git', sha, stack: 'dockerfile', builder: 'test:1' } }], {
      ...ctx,
      expectedVersion: v,
    })
  ).lastSeq
  await settle()
  t.match(await get(failed), { status: 'building', stack: 'dockerfile' })
  await c.deps.store.append(fs, [{ type: 'BuildFailed', data: { app, reason: 'RUN false: exit 1', lastLines: ['Step 2/2 : RUN false', 'exit 1'] } }], {
    ...ctx,
    expectedVersion: v,
  })
  await settle()
  t.match(await get(failed), {
    status: 'failed',
    reason: 'RUN false: exit 1',
    lastLines: ['Step 2/2 : RUN false', 'exit 1'],
    log: 'Step 2/2 : RUN false\nexit 1\n',
    finished: /^\d{4}-/,
    release: null,
  })

  // A succeeded push: the release manager releases it, and the build learns its release.
  const ok = newEventId()
  const os = streamId('build', ok)
  const image = `${testRegistry()}/${app}:git-aaaaaaa`
  await c.deps.store.append(
    os,
    [
      { type: 'PushReceived', data: { app, sha, user: 'alice', fingerprint: 'SHA256:x' } },
      { type: 'BuildStarted', data: { app, user: 'alice', kind: 'git', sha, stack: 'dockerfile', builder: 'test:1' } },
      { type: 'BuildSucceeded', data: { app, image, digest: `sha256:${'b'.repeat(64)}`, procfile: { web: 'run' }, port: 5000 } },
    ],
    { ...ctx, expectedVersion: 0 },
  )
  const deadline = Date.now() + 10_000
  while (typeof (await get(ok)).release !== 'number' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  t.match(await get(ok), { status: 'succeeded', image, procfile: { web: 'run' }, port: 5000, release: 2 })
  t.same(
    (await c.call('GET', `/v1/apps/${app}/builds`, { token: alice })).body.builds.map((b: { id: string }) => b.id),
    [ok, failed],
  )

  // A release that names no build (config:set) leaves the builds alone.
  await c.call('POST', `/v1/apps/${app}/config`, { token: alice, body: { values: { A: '1' } } })
  t.equal((await get(ok)).release, 2)

  await c.call('DELETE', `/v1/apps/${app}`, { token: alice, body: { confirm: app } })
  await c.call('POST', '/v1/apps', { token: alice, body: { name: app } })
  await settle()
  t.same((await c.call('GET', `/v1/apps/${app}/builds`, { token: alice })).body.builds, [], 'a new app of the same name has no builds')
  const rows = await c.deps.pool.query('SELECT count(*)::int AS n FROM rm_builds.builds WHERE app = $1', [app])
  t.equal(rows.rows[0].n, 0, 'the rows are gone')
})
