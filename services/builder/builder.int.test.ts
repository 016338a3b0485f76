/**
 * The builder end to end with a real `git push` over SSH: a test controller (API, projector, release
 * manager), the builder's SSH server, the Docker engine and the registry `make test` started.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { dockerClient } from '../../core/engine/docker.js'
import { streamId } from '../../events/index.js'
import { freePort } from '../../infra/test-env.js'
import { commit, gitPush, makeRepo, makeSshKey, run, sshCommand, sshRun, type SshKey } from '../../test/git.js'
import { provenKey, registerAndLogin, startEngineController, type TestController } from '../controller/testing.js'
import { startTestBuilder, testDocker, testRegistry, testRegistryEnv, testRegistryHeaders } from './testing.js'

interface Kit {
  c: TestController
  home: string
  port: number
  url(app: string): string
  alice: { token: string; key: SshKey }
  bob: { token: string; key: SshKey }
  stranger: SshKey
  dir: string
}

const BUSYBOX_APP = { Dockerfile: 'FROM busybox\nEXPOSE 8000\nCMD ["httpd", "-f", "-p", "8000"]\n' }

async function setup(t: Test, opts: { buildTimeoutMs?: number } = {}): Promise<Kit> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-builder-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const home = join(dir, 'home')
  const port = await freePort()
  const c = await startEngineController(t, {
    WHARF_HOME: home,
    WHARF_BUILDER_PORT: String(port),
  })
  await startTestBuilder(t, c, opts)
  const users = {} as { alice: Kit['alice']; bob: Kit['bob'] }
  for (const name of ['alice', 'bob'] as const) {
    const token = await registerAndLogin(c, name)
    const key = makeSshKey(join(dir, name))
    const res = await c.call('POST', '/v1/keys', { token, body: await provenKey(c, token, key) })
    if (res.status !== 201) throw new Error(`keys:add ${name}: ${res.status} ${JSON.stringify(res.body)}`)
    users[name] = { token, key }
  }
  return { c, home, port, url: (app) => `ssh://git@127.0.0.1:${port}/${app}.git`, ...users, stranger: makeSshKey(join(dir, 'stranger')), dir }
}

async function createApp(k: Kit, name: string): Promise<void> {
  const res = await k.c.call('POST', '/v1/apps', { token: k.alice.token, body: { name } })
  if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${JSON.stringify(res.body)}`)
}

async function releases(k: Kit, app: string): Promise<{ version: number; image: string | null }[]> {
  const res = await k.c.call('GET', `/v1/apps/${app}/releases`, { token: k.alice.token })
  return res.body.releases
}

async function registryTags(app: string): Promise<string[]> {
  const res = await request(`http://${testRegistry()}/v2/${app}/tags/list`, { headers: testRegistryHeaders() })
  if (res.statusCode !== 200) return []
  return ((await res.body.json()) as { tags: string[] | null }).tags ?? []
}

function appName(prefix: string): string {
  return `${prefix}${Date.now().toString(36).slice(-5)}${Math.floor(Math.random() * 1e4)}`
}

async function removeAppImages(app: string): Promise<void> {
  const docker = testDocker()
  const images = await docker.listImages({ filters: { label: [`wharf.app=${app}`] } })
  for (const img of images)
    await docker
      .getImage(img.Id)
      .remove({ force: true })
      .catch(() => {})
}

t.test('git push builds, pushes to the registry and releases; refusals are one clear line', async (t) => {
  const k = await setup(t)
  const app = appName('push')
  await createApp(k, app)
  t.teardown(() => removeAppImages(app))
  const repo = join(k.dir, 'repo')
  const sha = makeRepo(repo, { ...BUSYBOX_APP, Procfile: 'web: httpd -f -p $PORT\nworker: sleep 1000\n' })

  const push = await gitPush(repo, k.url(app), k.alice.key.path)
  t.equal(push.code, 0, `push exits 0\n${push.output}`)
  t.match(push.output, /remote: -----> Building .* \(Dockerfile\)/, 'the build is shown')
  t.match(push.output, /remote:\s+Step 1\/\d+ : FROM busybox/, 'docker build lines reach the pusher')
  t.match(push.output, /remote: -----> Released v2/, 'ends with the release')
  t.match(push.output, new RegExp(`http://${app}\\.wharf\\.localhost:`), 'and the URL')
  const rel = await releases(k, app)
  t.equal(rel[0]?.version, 2)
  t.equal(rel[0]?.image, `${testRegistry()}/${app}:git-${sha.slice(0, 7)}`)
  t.same(await registryTags(app), [`git-${sha.slice(0, 7)}`], 'the image is in the registry')
  const builds = await k.c.call('GET', `/v1/apps/${app}/builds`, { token: k.alice.token })
  t.equal(builds.body.builds[0].status, 'succeeded')
  t.equal(builds.body.builds[0].port, 8000, 'the one EXPOSEd port')
  t.same(builds.body.builds[0].procfile, { web: 'httpd -f -p $PORT', worker: 'sleep 1000' })
  const info = await k.c.call('GET', `/v1/apps/${app}/builds/latest`, { token: k.alice.token })
  t.match(info.body.log, /Step 1\/\d+ : FROM busybox/, 'builds:info has the whole output')

  // A second push of the same commit changes nothing; a new commit makes v3.
  const again = await gitPush(repo, k.url(app), k.alice.key.path)
  t.equal(again.code, 0)
  t.match(again.output, /Everything up-to-date/)
  commit(repo, { 'README.md': 'hello\n' })
  const second = await gitPush(repo, k.url(app), k.alice.key.path)
  t.equal(second.code, 0, second.output)
  t.match(second.output, /Released v3/)

  // Clone and fetch work for users who may see the app.
  const clone = await run('git', ['clone', '-q', k.url(app), join(k.dir, 'clone')], { env: { GIT_SSH_COMMAND: sshCommand(k.alice.key.path) } })
  t.equal(clone.code, 0, `clone works: ${clone.output}`)

  // Refusals: each one line, a non-zero exit, nothing released.
  const refusals: [string, Promise<{ code: number; output: string }>, RegExp][] = [
    ['unknown key', gitPush(repo, k.url(app), k.stranger.path), /Permission denied \(publickey\)/],
    ['user without access', gitPush(repo, k.url(app), k.bob.key.path), new RegExp(`wharf: no app ${app} that bob may push to`)],
    ['no such app', gitPush(repo, k.url('nosuchapp'), k.alice.key.path), /wharf: no app nosuchapp that alice may push to/],
    ['path outside the repo root', gitPush(repo, `ssh://git@127.0.0.1:${k.port}/../x.git`, k.alice.key.path), /wharf: .* is not an app repository/],
    ['absolute path', gitPush(repo, `ssh://git@127.0.0.1:${k.port}/etc/passwd`, k.alice.key.path), /wharf: .* is not an app repository/],
    ['a shell command', sshRun(k.port, k.alice.key.path, 'ls -la /'), /wharf: Wharf only takes git pushes and fetches here/],
    ['a shell', sshRun(k.port, k.alice.key.path), /Hi alice! .* no shell/],
    [
      'clone by a user without access',
      run('git', ['clone', '-q', k.url(app), join(k.dir, 'clone-bob')], { env: { GIT_SSH_COMMAND: sshCommand(k.bob.key.path) } }),
      /wharf: no app .* that bob may fetch/,
    ],
  ]
  for (const [what, p, re] of refusals) {
    const r = await p
    t.not(r.code, 0, `${what}: non-zero exit`)
    t.match(r.output, re, `${what}: ${r.output.trim().split('\n')[0]}`)
  }
  t.equal((await releases(k, app))[0]?.version, 3, 'no refusal released anything')
})

t.test('bad pushes: failing Dockerfile, bad Procfile, unsupported stack, a branch that is not main', async (t) => {
  const k = await setup(t)
  const app = appName('bad')
  await createApp(k, app)
  t.teardown(() => removeAppImages(app))
  const repo = join(k.dir, 'repo')
  makeRepo(repo, BUSYBOX_APP)
  t.equal((await gitPush(repo, k.url(app), k.alice.key.path)).code, 0, 'a good first push (v2)')

  const cases: [string, Record<string, string>, RegExp][] = [
    ['failing Dockerfile', { Dockerfile: 'FROM busybox\nRUN echo about to fail && false\n' }, /the build failed: The command .* returned a non-zero code: 1/],
    ['invalid Procfile', { ...BUSYBOX_APP, Procfile: 'web httpd\n' }, /Procfile line 1/],
    ['unsupported stack', { 'main.go': 'package main\n' }, /no Dockerfile/],
    ['empty Dockerfile', { Dockerfile: '' }, /the build failed: .*cannot be empty/],
  ]
  for (const [what, files, re] of cases) {
    const dir = join(k.dir, what.replace(/ /g, '-'))
    makeRepo(dir, files)
    const r = await gitPush(dir, k.url(app), k.alice.key.path, 'main', ['--force'])
    t.not(r.code, 0, `${what}: push exits non-zero`)
    t.match(r.output, re, `${what}: says why`)
    t.match(r.output, /pre-receive hook declined/, `${what}: git rejected the ref`)
  }
  const failed = await k.c.call('GET', `/v1/apps/${app}/builds`, { token: k.alice.token })
  t.same(
    failed.body.builds.map((b: { status: string }) => b.status),
    ['failed', 'failed', 'failed', 'failed', 'succeeded'],
    'failed builds are recorded',
  )
  t.match(failed.body.builds[3].lastLines.join('\n'), /about to fail/, 'with their last lines')

  const branch = join(k.dir, 'branch')
  makeRepo(branch, BUSYBOX_APP, { branch: 'feature' })
  const r = await gitPush(branch, k.url(app), k.alice.key.path, 'feature')
  t.not(r.code, 0)
  t.match(r.output, /only main \(or master\) is built and released; you pushed feature/)
  t.equal((await releases(k, app))[0]?.version, 2, 'nothing was released; v2 stays')

  const master = join(k.dir, 'master')
  makeRepo(master, BUSYBOX_APP, { branch: 'master' })
  const m = await gitPush(master, k.url(app), k.alice.key.path, 'master', ['--force'])
  t.equal(m.code, 0, `master is built too\n${m.output}`)
})

t.test('two concurrent pushes to one app are serialized', async (t) => {
  const k = await setup(t)
  const app = appName('conc')
  await createApp(k, app)
  t.teardown(() => removeAppImages(app))
  const a = join(k.dir, 'a')
  const b = join(k.dir, 'b')
  makeRepo(a, { Dockerfile: 'FROM busybox\nRUN sleep 2\nCMD ["sleep", "1000"]\n' })
  makeRepo(b, { Dockerfile: 'FROM busybox\nRUN echo b\nCMD ["sleep", "1000"]\n' })
  const first = gitPush(a, k.url(app), k.alice.key.path)
  await new Promise((r) => setTimeout(r, 700))
  const second = await gitPush(b, k.url(app), k.alice.key.path, 'main', ['--force'])
  const one = await first
  t.equal(one.code, 0, one.output)
  t.equal(second.code, 0, second.output)
  t.match(second.output, /another push to .* is running; waiting for it to finish/)
  t.same((await releases(k, app)).map((r) => r.version).slice(0, 2), [3, 2], 'one release each, one after the other')
})

t.test('a builder killed mid-build: on restart the build is marked failed and the next push works', async (t) => {
  const k = await setup(t)
  const app = appName('kill')
  await createApp(k, app)
  t.teardown(() => removeAppImages(app))
  // A builder in a process of its own, on the same event store and database.
  const port = await freePort()
  const env = {
    PATH: process.env.PATH,
    WHARF_HOME: k.home,
    WHARF_NATS_URL: process.env.WHARF_TEST_NATS_URL,
    WHARF_DATABASE_URL: (k.c.deps.pool as unknown as { options: { connectionString: string } }).options.connectionString,
    WHARF_NAMESPACE: k.c.deps.cfg.namespace,
    WHARF_BUILDER_PORT: String(port),
    ...testRegistryEnv(),
    WHARF_DOCKER_HOST: process.env.WHARF_TEST_DOCKER_HOST,
    WHARF_LOG_LEVEL: 'warn',
  }
  const main = new URL('../main.ts', import.meta.url).pathname
  let stderr = ''
  const start = () => {
    const p = spawn(process.execPath, ['--import', 'tsx', main, '--only', 'builder'], { env, stdio: ['ignore', 'ignore', 'pipe'] })
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    return p
  }
  const waitPort = async () => {
    for (let i = 0; i < 100; i++) {
      const r = await run('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`])
      if (r.code === 0) return
      await new Promise((r) => setTimeout(r, 200))
    }
    throw new Error(`the builder did not listen: ${stderr.trim()}`)
  }
  let child = start()
  t.teardown(() => void child.kill('SIGKILL'))
  await waitPort()
  const url = `ssh://git@127.0.0.1:${port}/${app}.git`
  const repo = join(k.dir, 'slow')
  makeRepo(repo, { Dockerfile: 'FROM busybox\nRUN echo building slowly && sleep 30\nCMD ["sleep", "1000"]\n' })
  let seen = ''
  const push = gitPush(repo, url, k.alice.key.path, 'main', [], (text) => (seen += text))
  for (let i = 0; i < 100 && !/building slowly/.test(seen); i++) await new Promise((r) => setTimeout(r, 100))
  t.match(seen, /building slowly/, 'the build is running')
  child.kill('SIGKILL')
  const killed = await push
  t.not(killed.code, 0, 'the push fails')
  t.match(killed.output, /hung up|closed by remote host|Connection reset|stopped during this push/, 'and the connection ended')

  child = start()
  await waitPort()
  const builds = async () => (await k.c.call('GET', `/v1/apps/${app}/builds`, { token: k.alice.token })).body.builds
  let marked
  for (let i = 0; i < 100; i++) {
    marked = (await builds())[0]
    if (marked?.status === 'failed') break
    await new Promise((r) => setTimeout(r, 100))
  }
  t.equal(marked?.status, 'failed', 'the interrupted build is marked failed on restart')
  t.match(marked?.reason, /stopped during the build/)
  const events = await k.c.deps.store.readStream(streamId('build', marked.id))
  t.same(
    events.events.map((e) => e.type),
    ['PushReceived', 'BuildStarted', 'BuildFailed'],
  )

  const fast = join(k.dir, 'fast')
  makeRepo(fast, BUSYBOX_APP)
  const next = await gitPush(fast, url, k.alice.key.path, 'main', ['--force'])
  t.equal(next.code, 0, `the next push works (the lock was released)\n${next.output}`)
  t.match(next.output, /Released v2/)
  void dockerClient
})

t.test('a Node app without a Dockerfile builds on node:26; a recreated app starts from a fresh repo', async (t) => {
  const k = await setup(t)
  const app = appName('node')
  await createApp(k, app)
  t.teardown(() => removeAppImages(app))
  const repo = join(k.dir, 'node')
  makeRepo(repo, {
    'package.json': JSON.stringify({ name: 'hello', version: '1.0.0', scripts: { start: 'node server.js' } }),
    'server.js': "require('http').createServer((q, s) => s.end('hi')).listen(process.env.PORT)\n",
  })
  const push = await gitPush(repo, k.url(app), k.alice.key.path)
  t.equal(push.code, 0, push.output)
  t.match(push.output, /Node app, no Dockerfile: built on node:26/)
  t.match(push.output, /Released v2/)
  const inspect = await testDocker()
    .getImage(`${testRegistry()}/${app}:git-${push.output.match(/Building \S+ ([0-9a-f]{7})/)![1]}`)
    .inspect()
  t.same(inspect.Config.Cmd, ['npm', 'start'], 'runs npm start')

  // Destroy and create the app again: the old history is not the new app's.
  t.equal((await k.c.call('DELETE', `/v1/apps/${app}`, { token: k.alice.token, body: { confirm: app } })).status, 200)
  await createApp(k, app)
  const fresh = join(k.dir, 'fresh')
  makeRepo(fresh, BUSYBOX_APP)
  const again = await gitPush(fresh, k.url(app), k.alice.key.path)
  t.equal(again.code, 0, `an unrelated history pushes without --force\n${again.output}`)
  t.match(again.output, /\* \[new branch\]\s+main -> main/)
})

t.test('a build that takes too long is stopped and fails clearly', async (t) => {
  const k = await setup(t, { buildTimeoutMs: 2_000 })
  const app = appName('slow')
  await createApp(k, app)
  t.teardown(() => removeAppImages(app))
  const repo = join(k.dir, 'slow')
  makeRepo(repo, { Dockerfile: 'FROM busybox\nRUN sleep 20\n' })
  const r = await gitPush(repo, k.url(app), k.alice.key.path)
  t.not(r.code, 0)
  t.match(r.output, /the build took longer than 2 s and was stopped/)
  t.ok(r.ms < 15_000, `the push ends soon after the limit (${r.ms} ms)`)
})
