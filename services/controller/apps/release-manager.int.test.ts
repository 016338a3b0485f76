/**
 * The release manager through the real controller: a BuildSucceeded on a build stream becomes a
 * release of the app (once, even when the event is seen again), and the API shows it.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { newEventId, streamId, type RecordedEvent } from '../../../events/index.js'
import { startTestController, type TestController } from '../testing.js'
import { releaseBuild } from './release-manager.js'

async function login(c: TestController, username: string): Promise<string> {
  const password = 'correct horse'
  await c.call('POST', '/v1/auth/register', { body: { username, password, email: `${username}@example.com` } })
  return (await c.call('POST', '/v1/auth/login', { body: { username, password } })).body.token
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

t.test('BuildSucceeded -> ReleaseCreated, once per build', async (t) => {
  const c = await startTestController(t)
  const alice = await login(c, 'alice')
  t.equal((await c.call('POST', '/v1/apps', { token: alice, body: { name: 'shop' } })).status, 201)
  await c.call('POST', '/v1/apps/shop/config', { token: alice, body: { values: { FOO: 'bar' } } })

  const build = newEventId()
  const stream = streamId('build', build)
  await c.deps.store.append(stream, [{ type: 'PushReceived', data: { app: 'shop', sha: 'a'.repeat(40), user: 'alice', fingerprint: 'SHA256:x' } }], {
    expectedVersion: 0,
    actor: 'system:builder',
  })
  await c.deps.store.append(
    stream,
    [
      {
        type: 'BuildSucceeded',
        data: {
          app: 'shop',
          image: '127.0.0.1:5000/shop:git-aaaaaaa',
          digest: 'sha256:abc',
          procfile: { web: 'node server.js', worker: 'node worker.js' },
          port: 5000,
        },
      },
    ],
    { expectedVersion: 'any', actor: 'system:builder' },
  )

  const release = await until('release v3', async () => {
    const r = await c.call('GET', '/v1/apps/shop/releases/v3', { token: alice })
    return r.status === 200 ? r.body : undefined
  })
  t.match(release, {
    version: 3,
    image: '127.0.0.1:5000/shop:git-aaaaaaa',
    digest: 'sha256:abc',
    port: 5000,
    build,
    by: 'alice',
    summary: 'alice deployed 127.0.0.1:5000/shop:git-aaaaaaa',
  })
  t.same(release.config, { FOO: 'bar' }, 'with the config of the moment')
  t.same(
    await until('formation', async () => {
      const f = (await c.call('GET', '/v1/apps/shop/formation', { token: alice })).body.formation
      return Object.keys(f).length ? f : undefined
    }),
    { web: 1 },
    'the first build runs one web process',
  )

  // ReleaseBuild's events are one commit: the log holds both or neither, so a retry never finds the
  // build released and its first formation missing.
  const released: RecordedEvent[] = []
  for await (const e of c.deps.store.readAll()) if (e.stream === 'app.shop' && (e.type === 'ReleaseCreated' || e.type === 'FormationScaled')) released.push(e)
  const ofBuild = released.filter(
    (e) => e.correlationId === released.find((r) => r.type === 'ReleaseCreated' && (r.data as { build?: string }).build === build)?.correlationId,
  )
  t.same(
    ofBuild.map((e) => [e.type, e.seq, e.index, e.commitSize]),
    [
      ['ReleaseCreated', ofBuild[0]?.seq, 0, 2],
      ['FormationScaled', ofBuild[0]?.seq, 1, 2],
    ],
    'ReleaseCreated and FormationScaled were written as one commit',
  )

  // Seen again (a redelivery): nothing new.
  const events = []
  for await (const e of c.deps.store.readAll()) if (e.type === 'BuildSucceeded') events.push(e)
  t.equal(await releaseBuild(c.deps, events[0]!), 'duplicate')
  t.equal((await c.call('GET', '/v1/apps/shop/releases', { token: alice })).body.releases.length, 3)

  // The Procfile now names the types that may be scaled.
  t.equal((await c.call('POST', '/v1/apps/shop/formation', { token: alice, body: { worker: 2 } })).status, 200)
  const bad = await c.call('POST', '/v1/apps/shop/formation', { token: alice, body: { clock: 1 } })
  t.equal(bad.status, 400)
  t.equal(bad.body.code, 'WHARF_INVALID')

  // A config change keeps the image; a rollback to v2, from before the build, is refused (it would stop the app).
  t.equal((await c.call('POST', '/v1/apps/shop/config', { token: alice, body: { values: { FOO: 'baz' } } })).status, 200)
  const v4 = (await c.call('GET', '/v1/apps/shop/releases/v4', { token: alice })).body
  t.equal(v4.image, '127.0.0.1:5000/shop:git-aaaaaaa')
  const refused = await c.call('POST', '/v1/apps/shop/releases/rollback', { token: alice, body: { version: 2 } })
  t.equal(refused.status, 400)
  t.match(refused.body, { code: 'WHARF_INVALID', message: /v2 of shop has no image/ })
  t.equal((await c.call('GET', '/v1/apps/shop/releases', { token: alice })).body.releases.length, 4, 'no release made')
  const back = (await c.call('POST', '/v1/apps/shop/releases/rollback', { token: alice, body: { version: 3 } })).body
  t.match(back, { version: 5, image: '127.0.0.1:5000/shop:git-aaaaaaa', config: { FOO: 'bar' } })

  // A build of an app that does not exist is skipped.
  const orphan = streamId('build', newEventId())
  await c.deps.store.append(orphan, [{ type: 'BuildSucceeded', data: { app: 'nosuchapp', image: 'x', procfile: {}, port: 5000 } }], {
    expectedVersion: 0,
    actor: 'system:builder',
  })
  const last = []
  for await (const e of c.deps.store.readAll()) if (e.stream === orphan) last.push(e)
  t.equal(await releaseBuild(c.deps, last[0]!), 'skipped')
})
