/**
 * Issue 14 on the builder: finding 1 (a Dockerfile cannot build on another app's image, an image id,
 * or fetch from the platform's ports), findings 4 and 7 with a real `git push` over SSH: bob's push cannot
 * grow the services' memory without bound (a 300 MB line of build output), nor send a pack larger
 * than `WHARF_PUSH_MAX_MB`, nor fill the disk with build output beyond `WHARF_BUILD_LOG_MAX_MB`;
 * alice's API answers all along.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { freePort } from '../../infra/test-env.js'
import { gitPush, makeRepo, makeSshKey, type SshKey } from '../../test/git.js'
import { provenKey, registerAndLogin, startEngineController, type TestController } from '../controller/testing.js'
import { startTestBuilder, testDocker } from './testing.js'

interface Kit {
  c: TestController
  home: string
  url(app: string): string
  alice: string
  bob: { token: string; key: SshKey }
  dir: string
}

async function setup(t: Test, env: Record<string, string> = {}): Promise<Kit> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bounds-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const home = join(dir, 'home')
  const port = await freePort()
  const c = await startEngineController(t, { WHARF_HOME: home, WHARF_BUILDER_PORT: String(port), ...env })
  await startTestBuilder(t, c)
  await registerAndLogin(c, 'admin')
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  const key = makeSshKey(join(dir, 'bob'))
  const res = await c.call('POST', '/v1/keys', { token: bob, body: await provenKey(c, bob, key) })
  if (res.status !== 201) throw new Error(`keys:add: ${res.status} ${JSON.stringify(res.body)}`)
  for (const [token, name] of [
    [alice, 'shop'],
    [bob, 'bobapp'],
  ] as const) {
    const r = await c.call('POST', '/v1/apps', { token, body: { name } })
    if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${JSON.stringify(r.body)}`)
  }
  t.teardown(async () => {
    const docker = testDocker()
    for (const img of await docker.listImages({ filters: { label: ['wharf.app=bobapp'] } }))
      await docker
        .getImage(img.Id)
        .remove({ force: true })
        .catch(() => {})
  })
  return { c, home, url: (app) => `ssh://git@127.0.0.1:${port}/${app}.git`, alice, bob: { token: bob, key }, dir }
}

t.test("bob's Dockerfile cannot build on alice's image, an image id, or ADD from the platform's ports", async (t) => {
  const k = await setup(t)
  const registry = process.env.WHARF_TEST_REGISTRY!
  const cases: [string, RegExp][] = [
    [`FROM ${registry}/shop:git-1234567\n`, /line 1: .*shop:git-1234567 is in the platform's registry, and not an image of an app you may deploy/],
    [`FROM busybox AS base\nFROM localhost:${registry.split(':')[1]}/shop:latest\n`, /line 2: .* is in the platform's registry/],
    ['FROM fa1f\n', /line 1: fa1f is \(or could be taken for\) an image id/],
    [`FROM busybox\nCOPY --from=${registry}/shop:x /www /www\n`, /line 2: .* is in the platform's registry/],
    [
      `FROM busybox\nADD http://${registry}/v2/_catalog /catalog\n`,
      /line 2: ADD http:\/\/.*refused target 127\.0\.0\.1:\d+: port \d+ of 127\.0\.0\.1 is one of the platform's own/,
    ],
    ['FROM busybox\nADD \\\n  http://169.254.169.254/latest/meta-data/ /m\n', /line 2: ADD .*169\.254\.169\.254 is a link-local address/],
    ['FROM busybox\nARG U=http://127.0.0.1:1/\nADD ${U} /x\n', /line 3: ADD \$\{U\}/],
  ]
  for (const [i, [dockerfile, message]] of cases.entries()) {
    const repo = join(k.dir, `evil${i}`)
    makeRepo(repo, { Dockerfile: `${dockerfile}CMD ["sh"]\n` })
    const before = await k.c.deps.store.lastSeq()
    const push = await gitPush(repo, k.url('bobapp'), k.bob.key.path)
    t.not(push.code, 0, `refused: ${dockerfile.split('\n').join(' | ')}`)
    t.match(push.output, message, '... saying why')
    t.match(push.output, /nothing was built or recorded/)
    t.equal(await k.c.deps.store.lastSeq(), before, '... and nothing is recorded')
  }
  t.same((await k.c.call('GET', '/v1/apps/bobapp/builds', { token: k.bob.token })).body.builds, [], 'bob has no build')
})
