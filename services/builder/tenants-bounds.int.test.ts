/**
 * Issue 14 on the builder: finding 1 (a Dockerfile cannot build on another app's image, an image id,
 * or fetch from the platform's ports), findings 4 and 7 with a real `git push` over SSH: bob's push cannot
 * grow the services' memory without bound (a 300 MB line of build output), nor send a pack larger
 * than `WHARF_PUSH_MAX_MB`, nor fill the disk with build output beyond `WHARF_BUILD_LOG_MAX_MB`;
 * alice's API answers all along.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { buildLogPath } from '../../core/paths.js'
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

t.test('WHARF_PUSH_MAX_MB: a larger pack is refused before anything is recorded; WHARF_BUILD_LOG_MAX_MB bounds the log', async (t) => {
  const k = await setup(t, { WHARF_PUSH_MAX_MB: '1', WHARF_BUILD_LOG_MAX_MB: '1' })
  const big = join(k.dir, 'big')
  makeRepo(big, { Dockerfile: 'FROM busybox\nCMD ["sh"]\n', 'blob.bin': randomBytes(3 * 1024 * 1024).toString('base64') })
  const before = await k.c.deps.store.lastSeq()
  const refused = await gitPush(big, k.url('bobapp'), k.bob.key.path)
  t.not(refused.code, 0, 'the push fails')
  t.match(refused.output, /too large|maxInputSize|exceeds maximum/i, `git says the pack is too large: ${refused.output.slice(-300)}`)
  t.equal(await k.c.deps.store.lastSeq(), before, 'nothing is recorded')
  t.same((await k.c.call('GET', '/v1/apps/bobapp/builds', { token: k.bob.token })).body.builds, [], 'no build')

  const chatty = join(k.dir, 'chatty')
  makeRepo(chatty, { Dockerfile: `FROM busybox\nRUN echo ${randomBytes(6).toString('hex')}\nRUN yes 'a line of build output' | head -n 200000\nCMD ["sh"]\n` })
  const pushed = await gitPush(chatty, k.url('bobapp'), k.bob.key.path)
  t.equal(pushed.code, 0, `a push with 4.6 MB of output still builds: ${pushed.output.slice(-300)}`)
  t.match(pushed.output, /the build's output passed 1 MiB: the rest is not shown or kept \(WHARF_BUILD_LOG_MAX\)/)
  const info = await k.c.call('GET', '/v1/apps/bobapp/builds/latest', { token: k.bob.token })
  const size = statSync(buildLogPath(k.home, info.body.id)).size
  t.ok(size < 1.1 * 1024 * 1024, `the build log is ${size} bytes`)
})
