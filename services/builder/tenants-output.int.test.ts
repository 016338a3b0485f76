/**
 * Issue 14 on the builder: finding 1 (a Dockerfile cannot build on another app's image, an image id,
 * or fetch from the platform's ports), findings 4 and 7 with a real `git push` over SSH: bob's push cannot
 * grow the services' memory without bound (a 300 MB line of build output), nor send a pack larger
 * than `WHARF_PUSH_MAX_MB`, nor fill the disk with build output beyond `WHARF_BUILD_LOG_MAX_MB`;
 * alice's API answers all along.
 */
import { randomBytes } from 'node:crypto'
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

t.test('a 300 MB line of build output: memory stays bounded, the line is cut at 16 KiB, alice is served', async (t) => {
  const k = await setup(t)
  const repo = join(k.dir, 'repo')
  // A unique first step: the engine's cache never answers this build from an earlier run.
  makeRepo(repo, { Dockerfile: `FROM busybox\nRUN echo ${randomBytes(6).toString('hex')}\nRUN head -c 300000000 /dev/zero | tr '\\0' a\nCMD ["sh"]\n` })
  global.gc?.()
  const base = process.memoryUsage().rss
  let peak = base
  let slowest = 0
  let answered = 0
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 50)
  let pushing = true
  const probes = (async () => {
    while (pushing) {
      const t0 = Date.now()
      const res = await k.c.call('GET', '/v1/apps/shop', { token: k.alice })
      if (res.status === 200) answered++
      slowest = Math.max(slowest, Date.now() - t0)
      await new Promise((r) => setTimeout(r, 200))
    }
  })()
  const push = await gitPush(repo, k.url('bobapp'), k.bob.key.path)
  pushing = false
  await probes
  clearInterval(sampler)
  const grew = (peak - base) / 1024 / 1024
  t.comment(
    `rss ${Math.round(base / 1048576)} MiB -> peak ${Math.round(peak / 1048576)} MiB (+${grew.toFixed(0)}); alice's slowest answer ${slowest} ms (${answered} answers)`,
  )
  t.equal(push.code, 0, `the push itself succeeds: ${push.output.slice(-400)}`)
  t.ok(grew < 150, `the process grew by ${grew.toFixed(0)} MiB, far less than the 300 MB line`)
  t.ok(answered > 0, 'alice was answered during the push')
  t.ok(slowest < 5000, `alice's slowest answer: ${slowest} ms`)
  t.match(push.output, /a{100}[^\n]* \[truncated \d+ bytes\]/, 'the pusher sees the line cut')
  const info = await k.c.call('GET', '/v1/apps/bobapp/builds/latest', { token: k.bob.token })
  const line = (info.body.log as string).split('\n').find((l) => l.includes('[truncated'))
  t.ok(line, 'the build log has the cut line')
  t.ok(line!.length < 17 * 1024, `the kept line is ${line!.length} characters`)
  const cut = Number(/\[truncated (\d+) bytes\]/.exec(line!)?.[1])
  // The engine's next message (no newline came before it) ends the same line: a few bytes more.
  const counted = cut + (line!.length - '       '.length - ` [truncated ${cut} bytes]`.length)
  t.ok(counted >= 300_000_000 && counted < 300_000_000 + 1000, `every byte of the line was counted (${counted})`)
})
