/**
 * A CLI that follows events, as a user runs it (`node bin/wharf`, compiled) against a whole
 * platform of the test's own: controller, publisher, scheduler (Swarm), router (the test nginx) and
 * builder. `config:set`, `ps:scale`, `builds:create`, `releases:rollback` and `ps:restart` return once
 * every new request reaches the new release (proved with requests through the router right after),
 * with progress on stderr; a failed deploy exits 1 with the reason; `--no-wait` returns at once;
 * `events:trace` prints the chain; `git push` ends with it.
 */
import { execFileSync } from 'node:child_process'
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { freePort } from '../infra/test-env.js'
import { buildTestImage, removeImage, startTestBuilder, testDocker, testEngine, testRegistry } from '../services/builder/testing.js'
import { registerAndLogin, startEngineController, type TestController } from '../services/controller/testing.js'
import { Publisher } from '../services/publisher/publisher.js'
import { startTestRouter, testRouterPort } from '../services/router/testing.js'
import { removeNamespaceServices, startTestScheduler } from '../services/scheduler/testing.js'
import { run as runCmd } from '../test/git.js'
import { get } from '../test/http.js'
import { cliUser, requireBuilt, type Run } from './testing.js'

t.setTimeout(600_000)

/** The figures measured here, as TAP comments and, with WHARF_FIGURES=<file>, appended to that file (make test prints only failing files' TAP). */
function figure(t: Test, text: string): void {
  t.comment(text)
  if (process.env.WHARF_FIGURES) appendFileSync(process.env.WHARF_FIGURES, `${text}\n`)
}

const docker = testDocker()
const DOMAIN = 'wharf.localhost'
/** Writes $X into the web root, then serves it: what the release serving a request sees is one GET away. */
const PROCFILE = 'web: echo "$X" > /www/x.txt; exec httpd -f -p $PORT -h /www'

interface Platform {
  c: TestController
  home: string
  builderPort: number
  token: string
}

async function platform(t: Test): Promise<Platform> {
  requireBuilt()
  const builderPort = await freePort()
  const user = cliUser(t, {})
  const c = await startEngineController(t, { WHARF_HOME: join(user.home, 'platform'), WHARF_DOMAIN: DOMAIN, WHARF_BUILDER_PORT: String(builderPort) })
  t.teardown(() => removeNamespaceServices(c.deps.cfg.namespace))
  const publisher = await Publisher.start({ docker: testEngine(), store: c.deps.store, pool: c.deps.pool, log: c.deps.log, namespace: c.deps.cfg.namespace })
  t.teardown(() => publisher.stop())
  await startTestScheduler(t, c, { deployTimeoutMs: 60_000, spec: { stopGraceMs: 2_000, updateMonitorMs: 1_000 } })
  await startTestRouter(t, c, { domain: DOMAIN })
  await startTestBuilder(t, c, { deployTimeoutMs: 120_000, serveTimeoutMs: 30_000 })
  return { c, home: user.home, builderPort, token: await registerAndLogin(c, 'alice') }
}

function appName(prefix: string): string {
  return `${prefix}${Date.now().toString(36).slice(-6)}`
}

/** Removes the app's images from the test registry's tags in the engine. */
function cleanImages(t: Test, app: string): void {
  t.teardown(async () => {
    for (const img of await docker.listImages({ filters: { reference: [`${testRegistry()}/${app}`] } }))
      for (const tag of img.RepoTags ?? []) await removeImage(docker, tag)
    for (const img of await docker.listImages({ filters: { label: [`wharf.app=${app}`] } })) await removeImage(docker, img.Id)
  })
}

/** `n` GETs of /x.txt through the router, each on a new connection: the bodies seen. */
async function bodies(app: string, n: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const r = await get(testRouterPort(), `${app}.${DOMAIN}`, '/x.txt')
    out.push(r.status === 200 ? r.body.trim() : `HTTP ${r.status}`)
  }
  return out
}

async function timed(p: Promise<Run>): Promise<Run & { ms: number }> {
  const t0 = Date.now()
  const r = await p
  return { ...r, ms: Date.now() - t0 }
}

/** Exit 1 and, as the last line of stderr (progress lines come before it), `wharf: ... (CODE)`. */
function failedWith(t: Test, r: Run, code: string, what: string): void {
  t.equal(r.code, 1, `${what}: exit 1`)
  const last = r.stderr.trimEnd().split('\n').at(-1) ?? ''
  t.match(last, new RegExp(`^wharf: .+ \\(${code}\\)$`), `${what}: ends with one line with ${code}: ${last}`)
  t.notMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`)
}

t.test('the changing commands wait until the router serves the new release; --no-wait; a failed deploy; events:trace', async (t) => {
  const p = await platform(t)
  const alice = cliUser(t, { WHARF_URL: p.c.url, WHARF_TOKEN: p.token })
  const app = appName('fw')
  cleanImages(t, app)
  const wharf = (...args: string[]) => alice.run([...args, '-a', app])
  t.equal((await alice.run(['apps:create', app, '--no-remote'])).code, 0)
  const image = await buildTestImage(t, docker, 'FROM busybox\nRUN mkdir -p /www\nCMD ["httpd", "-f", "-p", "5000", "-h", "/www"]\n')
  const figures: string[] = []

  // builds:create waits for the deploy and the router: the first request after it answers.
  const created = await timed(wharf('builds:create', image, '--procfile', PROCFILE, '--port', '5000'))
  t.equal(created.code, 0, created.stderr)
  t.match(created.stdout, /Released v2 of /)
  t.match(created.stderr, /^v2: web 1\/1 started; served by the router$/m, 'progress and the end on stderr')
  t.same(await bodies(app, 5), ['', '', '', '', ''], 'served at once (X unset)')

  // config:set X=2 (web=1): every request right after it returns sees X=2.
  const set2 = await timed(wharf('config:set', 'X=2'))
  t.equal(set2.code, 0, set2.stderr)
  t.equal(set2.stdout, 'Set X.\n', 'stdout as before')
  t.match(set2.stderr, /^v3: web 1\/1 started; served by the router$/m)
  t.same(await bodies(app, 30), Array(30).fill('2'), 'all 30 requests right after config:set see X=2')
  figures.push(`config:set X=2 with web=1: ${set2.ms} ms`)

  const scaled = await timed(wharf('ps:scale', 'web=3'))
  t.equal(scaled.code, 0, scaled.stderr)
  t.match(scaled.stdout, /Scaled: web=3/)
  t.match(scaled.stderr, /^v3: web \d\/3 started/m)
  figures.push(`ps:scale web=3: ${scaled.ms} ms`)
  const ps = JSON.parse((await wharf('ps:list', '--json')).stdout) as { processes: { type: string; state: string }[] }
  t.equal(ps.processes.filter((x) => x.type === 'web' && x.state === 'up').length, 3, 'three web processes up when ps:scale returns')

  const set3 = await timed(wharf('config:set', 'X=3'))
  t.equal(set3.code, 0, set3.stderr)
  t.match(set3.stderr, /^v4: web 3\/3 started; served by the router$/m)
  t.same(await bodies(app, 60), Array(60).fill('3'), 'all 60 requests right after config:set (web=3) see X=3')
  figures.push(`config:set X=3 with web=3: ${set3.ms} ms`)

  // events:trace, human and JSON.
  const human = await wharf('events:trace', 'v4')
  t.equal(human.code, 0, human.stderr)
  const lines = human.stdout.trimEnd().split('\n')
  t.match(lines[0], new RegExp(`^${app} v4: served \\d+\\.\\d\\d s after the first event$`))
  for (const type of ['ConfigSet', 'ReleaseCreated', 'DeployStarted', 'ContainerStarted', 'DeployCompleted', 'RouteServed']) {
    t.match(human.stdout, new RegExp(`^\\s*\\+\\d+\\.\\d\\d s\\s+\\(\\d+\\.\\d\\d s\\)\\s+${type}\\b`, 'm'), `a ${type} line with its offset and step time`)
  }
  t.equal(lines.filter((l) => /ContainerStarted/.test(l)).length, 3, 'each container')
  t.match(human.stdout, /ConfigSet\s+set X$/m, 'keys, no values')
  const json = JSON.parse((await wharf('events:trace', 'v4', '--json')).stdout)
  t.match(json, { app, release: 4, status: 'served', progress: [{ type: 'web', started: 3, wanted: 3 }] })
  t.equal(json.steps.find((s: { type: string }) => s.type === 'ReleaseCreated').data.config.X, '[redacted]', 'config values never leave')
  t.same((await wharf('events:trace', json.correlationId, '--json')).stdout, (await wharf('events:trace', 'v4', '--json')).stdout, 'by correlation id')
  failedWith(t, await wharf('events:trace', 'v99'), 'WHARF_NOT_FOUND', 'an unknown release')
  failedWith(t, await wharf('events:trace', '%%'), 'WHARF_INVALID', 'a ref that is none')

  // --no-wait: returns at once, as before; nothing on stderr.
  const quick = await timed(wharf('config:set', 'X=4', '--no-wait'))
  t.equal(quick.code, 0, quick.stderr)
  t.equal(quick.stderr, '', 'no progress')
  t.ok(quick.ms < set3.ms, `--no-wait returns before the deploy (${quick.ms} ms)`)
  failedWith(t, await wharf('config:set', 'X=5', '--wait-timeout', 'soon'), 'WHARF_INVALID', 'a bad --wait-timeout')

  // releases:rollback and ps:restart wait too.
  const back = await timed(wharf('releases:rollback', 'v4'))
  t.equal(back.code, 0, back.stderr)
  t.match(back.stdout, /Rolled back to v4: now v6\./)
  t.same(await bodies(app, 30), Array(30).fill('3'), 'every request right after the rollback sees v4 config (X=3)')
  const restart = await timed(wharf('ps:restart', 'web'))
  t.equal(restart.code, 0, restart.stderr)
  t.match(restart.stderr, /^v6: web 3\/3 started; served by the router$/m, 'three new containers')
  figures.push(`releases:rollback (web=3): ${back.ms} ms`, `ps:restart web (web=3): ${restart.ms} ms`)

  // A deploy that fails (a health check that never passes): exit 1 with the reason; the old release keeps serving.
  const broken = await wharf('config:set', 'HEALTHCHECK_URL=/nope', '--wait-timeout', '120')
  failedWith(t, broken, 'WHARF_DEPLOY_FAILED', 'a failed deploy')
  t.match(broken.stderr, /the deploy of v7 failed: .+v6 keeps running/)
  t.same(await bodies(app, 10), Array(10).fill('3'), 'v6 keeps serving')
  // A wait that runs out: a clear error with a code (the deploy of three containers takes longer than a second).
  failedWith(t, await wharf('config:unset', 'HEALTHCHECK_URL', '--wait-timeout', '1'), 'WHARF_TIMEOUT', 'a wait that runs out')

  // Changes that deploy nothing do not hang; scale to 0 neither.
  const none = await timed(wharf('config:unset', 'NOT_SET'))
  t.equal(none.code, 0, none.stderr)
  t.ok(none.ms < 15_000, `config:unset of a key not set returns (${none.ms} ms)`)
  const zero = await timed(wharf('ps:scale', 'web=0'))
  t.equal(zero.code, 0, zero.stderr)
  t.same(await bodies(app, 3), Array(3).fill('HTTP 503'), 'nothing served right after scale to 0')
  figures.push(`ps:scale web=0: ${zero.ms} ms`)
  figure(t, figures.join('; '))
})

t.test('git push ends with the trace from the push to the live route', async (t) => {
  const p = await platform(t)
  const alice = cliUser(t, { WHARF_URL: p.c.url, WHARF_TOKEN: p.token })
  const ssh = join(alice.home, '.ssh')
  mkdirSync(ssh, { recursive: true, mode: 0o700 })
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'alice@laptop', '-f', join(ssh, 'id_ed25519')])
  t.equal((await alice.run(['keys:add'])).code, 0)
  const repo = join(alice.home, 'hello')
  mkdirSync(repo)
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=Alice', '-c', 'user.email=alice@example.com', ...args], { cwd: repo })
  git('init', '-q', '--initial-branch=main')
  writeFileSync(join(repo, 'Dockerfile'), 'FROM busybox\nRUN mkdir -p /www && echo hello > /www/x.txt\nCMD ["httpd", "-f", "-p", "5000", "-h", "/www"]\n')
  git('add', '-A')
  git('commit', '-q', '-m', 'hello')
  const app = appName('fp')
  cleanImages(t, app)
  t.equal((await alice.run(['create', app], repo)).code, 0)
  const sshCmd = `ssh -F /dev/null -i ${join(ssh, 'id_ed25519')} -o UserKnownHostsFile=${join(ssh, 'known_hosts')} -o StrictHostKeyChecking=yes -o BatchMode=yes`
  const push = await runCmd('git', ['push', 'wharf', 'main'], { cwd: repo, env: { HOME: alice.home, GIT_SSH_COMMAND: sshCmd } })
  t.equal(push.code, 0, `git push wharf main\n${push.output}`)
  t.match(push.output, /remote: -----> Served by the router: every new request reaches v2/)
  t.match(push.output, /remote: -----> Trace: from the push to the live route\s*\n/)
  const trace = push.output.slice(push.output.indexOf('Trace: from the push'))
  const steps = ['PushReceived', 'BuildStarted', 'BuildSucceeded', 'ReleaseCreated', 'DeployStarted', 'ContainerStarted', 'DeployCompleted', 'RouteServed']
  for (const type of steps)
    t.match(trace, new RegExp(`remote: +\\+\\d+\\.\\d\\d s +\\(\\d+\\.\\d\\d s\\) +${type}\\b`), `${type} with its offset and step time`)
  t.match(trace, new RegExp(`remote: +${app} v2: served \\d+\\.\\d\\d s after the push`))
  t.match(push.output, /, route \d+\.\d\d s\)/, 'the phases line has the route wait')
  t.same(await bodies(app, 10), Array(10).fill('hello'), 'served when the push returns')
  figure(
    t,
    `push breakdown: ${trace
      .split('\n')
      .filter((l) => /\+\d/.test(l))
      .map((l) => l.replace(/^remote:\s+/, '').replace(/\s+/g, ' '))
      .join(' | ')}`,
  )
  // The same trace through the CLI.
  const cliTrace = await alice.run(['events:trace', 'v2'], repo)
  t.equal(cliTrace.code, 0, cliTrace.stderr)
  t.match(cliTrace.stdout, /PushReceived/)
})
